"""The SQLite engine on the file-system model: reproducible bytes, and the observation memo."""

import contextlib
import json
import os
import subprocess
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytest.importorskip("apsw")

from crashsweep.crash_explorer._plan import plan_states   # noqa: E402
from crashsweep.crash_explorer._recording import record   # noqa: E402
from crashsweep.crash_explorer._spec import SweepSpec     # noqa: E402
from crashsweep.reference import put, sync                # noqa: E402

PLAN_DIGEST = """
import hashlib, sys
from crashsweep.crash_explorer._plan import plan_states
from crashsweep.crash_explorer._recording import record
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.reference import put, sync
spec = SweepSpec(engine="sqlite", options=(("journal_mode", sys.argv[1]),),
                 ops=tuple(op for n in range(4) for op in (put(b"k%d" % n, b"v" * 300), sync())))
print(hashlib.sha256(repr([p.image for p in plan_states(record(spec)).states]).encode()).hexdigest())
"""


def sqlite_spec(journal_mode: str, transactions: int = 4, **settings) -> SweepSpec:
    ops = tuple(op for n in range(transactions) for op in (put(b"k%d" % n, b"v" * 300), sync()))
    return SweepSpec(engine="sqlite", options=(("journal_mode", journal_mode),), ops=ops, **settings)


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_sqlite_writes_the_same_bytes_every_run(journal_mode):
    """Journal nonces and WAL salts come from the seed: two recordings, in this process and in a fresh
    one, give the same crash states (they once differed on every run: SQLite drew from /dev/urandom)."""
    first = [p.image for p in plan_states(record(sqlite_spec(journal_mode))).states]
    again = [p.image for p in plan_states(record(sqlite_spec(journal_mode))).states]
    assert first == again and len(first) > 20
    import hashlib
    out = subprocess.run([sys.executable, "-c", PLAN_DIGEST, journal_mode], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == hashlib.sha256(repr(first).encode()).hexdigest()


def _results_without_timing(out_dir) -> dict:
    results = {}
    with open(out_dir / "results.jsonl") as handle:
        for line in handle:
            record_ = json.loads(line)
            if "state" not in record_:
                continue
            for name in ("engine_s", "total_s", "memo"):
                record_.pop(name, None)
            results[record_["state"]] = record_
    return results


@pytest.mark.parametrize("journal_mode,synchronous", [("delete", "full"), ("truncate", "normal"),
                                                      ("persist", "full"),
                                                      pytest.param("wal", "normal", marks=pytest.mark.long)])
def test_the_memo_gives_every_state_the_result_of_a_live_run(tmp_path, journal_mode, synchronous):
    """Every state's result, with and without the observation memo, is the same: same verdicts, windows,
    read-outs, continuations (a lost commit under synchronous=normal included)."""
    from crashsweep.api import sweep
    from crashsweep.reference import delete, encode_ops
    ops = []
    for number in range(4):
        ops += [put(b"k%d" % number, b"v%d" % number * 200), sync()]
    ops += [delete(b"k2"), put(b"k0", b"new"), sync()]
    scenario = tmp_path / "ops.json"
    scenario.write_text(json.dumps({"ops": encode_ops(ops)}))
    settings = dict(options={"journal_mode": journal_mode, "synchronous": synchronous}, scenario=str(scenario),
                    jobs=1, crash_depth=0, minimize=0, budget_states=500)
    live = sweep("sqlite", out=tmp_path / "live", no_memo=True, **settings)
    memo = sweep("sqlite", out=tmp_path / "memo", **settings)
    assert live.summary["distinct_states"] == memo.summary["distinct_states"] >= 400
    assert _results_without_timing(tmp_path / "live") == _results_without_timing(tmp_path / "memo")
    answered = sum(1 for line in open(tmp_path / "memo" / "results.jsonl") if json.loads(line).get("memo"))
    if journal_mode != "wal":      # a WAL state reads the whole log: few states look alike to SQLite
        assert answered > memo.summary["distinct_states"] / 4


def _planned(journal_mode: str):
    from crashsweep.crash_explorer._medium import durable_of
    recording = record(sqlite_spec(journal_mode, transactions=3))
    plan = plan_states(recording)
    durable = durable_of(recording.context, recording.walk, recording.log, hashed=False)
    for planned in sorted(plan.states, key=lambda p: p.point):
        point = recording.walk.points[planned.point]
        durable.advance(point.durable_count)
        yield recording, planned, durable.snapshot(durable.overlay(planned.choice))


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_tree_files_answer_every_call_as_the_live_file_system_did(journal_mode):
    """A live run records its calls; walking them on the same state's tree, without SQLite and without the
    live file system, gives the same responses up to the same outcome, on every state of a sweep."""
    from crashsweep.crash_explorer._recover import recover_state
    from crashsweep.disk_model import CallMemo
    states = 0
    for recording, planned, tree in _planned(journal_mode):
        context = recording.context
        memo = CallMemo()
        context.memo_of_history[(id(recording.history), 0)] = (recording.history, memo)
        live = recover_state(context, tree, planned.choice, planned.windows, recording.history, planned.point, 0)
        assert "memo" not in live and memo.nodes > 1
        walk = memo.walk(tree)
        assert walk is not None, planned.choice
        assert walk.outcome[0] in ("read", "refused")
        if live.get("continued"):
            assert walk.go_on() and walk.outcome[0] == ("done",)     # (the continuation's outcome, its events)
        again = recover_state(context, tree, planned.choice, planned.windows, recording.history, planned.point, 0)
        assert again.pop("memo") is True
        assert again == live
        states += 1
    assert states > 20


def test_a_state_that_differs_in_bytes_sqlite_reads_is_not_answered():
    from crashsweep.disk_model import CallMemo
    from crashsweep.crash_explorer._recover import recover_state
    for recording, planned, tree in _planned("delete"):
        inode = tree.entries[4].get("db.sqlite", (None,))[0]
        if inode is not None and tree.sizes.get(inode, 0) > 1000 and "db.sqlite-journal" not in tree.entries[4]:
            break
    context = recording.context
    memo = CallMemo()
    context.memo_of_history[(id(recording.history), 0)] = (recording.history, memo)
    recover_state(context, tree, planned.choice, planned.windows, recording.history, planned.point, 0)
    assert memo.walk(tree) is not None
    changed = tree.copy()
    data = bytearray(changed.data[inode])
    data[28] ^= 0xFF               # the database size in the header: SQLite reads it on open
    changed.data[inode] = data
    assert memo.walk(changed) is None


def test_a_memo_turns_itself_off_when_the_engine_is_not_a_function_of_its_responses():
    from crashsweep.disk_model import CallMemo, FsTree
    memo = CallMemo()
    for call in (("exists", "/a"), ("exists", "/b")):
        memo.begin()
        memo.note(call, False)
        memo.stop(("read", {}, {}, (), {}))
        with pytest.warns(UserWarning) if call[1] == "/b" else _nothing():
            memo.end()
    assert memo.off and memo.walk(FsTree.initial()) is None


def test_a_memo_that_answers_too_few_states_turns_itself_off():
    from crashsweep.disk_model import CallMemo
    from crashsweep.disk_model._memo import ANSWERED_MIN, TRIAL_STATES
    memo = CallMemo()
    for number in range(TRIAL_STATES):
        memo.count(number < ANSWERED_MIN * TRIAL_STATES - 1)
    assert memo.off
    kept = CallMemo()
    for number in range(TRIAL_STATES):
        kept.count(number < ANSWERED_MIN * TRIAL_STATES)
    assert not kept.off


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_the_memo_gives_the_same_results_with_second_crashes(tmp_path):
    """At crash depth 1 the memo answers nested states (each continuation's own history, its own memo);
    every result, nested state counts and violations included, equals the live sweep's."""
    from crashsweep.api import sweep
    settings = dict(options={"journal_mode": "delete", "synchronous": "full"}, scenario="default", ops=12,
                    jobs=1, crash_depth=1, minimize=0, budget_states=120)
    live = sweep("sqlite", out=tmp_path / "live", no_memo=True, **settings)
    memo = sweep("sqlite", out=tmp_path / "memo", **settings)
    assert live.summary["nested_states"] == memo.summary["nested_states"] > 500
    assert _results_without_timing(tmp_path / "live") == _results_without_timing(tmp_path / "memo")


def test_memos_forget_what_they_hold_past_the_memory_bound(monkeypatch):
    """Memory is bounded, results are not: past the process-wide bound a memo starts afresh (its states
    are then run live again), and a memo that is dropped gives its share back."""
    from crashsweep.disk_model import CallMemo
    from crashsweep.disk_model import _memo as _memos
    monkeypatch.setattr(_memos, "MEMORY_MAX_BYTES", _memos._held[0] + 50_000)
    memo = CallMemo()
    for number in range(40):
        memo.begin()
        memo.note(("size", 0), number)                       # a new response: a new path
        memo.note(("pwrite", 0, bytes(4096), 0), None)       # that holds a page
        memo.stop(("read", {}, {}, (), {}))
        memo.end()
    assert memo.nodes < 3 * 40 // 2 and _memos._held[0] <= _memos.MEMORY_MAX_BYTES + 10_000   # 3 nodes a path
    before = _memos._held[0]
    held = memo.held
    del memo
    assert _memos._held[0] == before - held


PATHS = ["/crashsweep/store/a", "/crashsweep/store/b", "/crashsweep/store", "/crashsweep/none/x", "/tmp/t"]
FLAGS = [os.O_RDWR, os.O_RDWR | os.O_CREAT, os.O_RDWR | os.O_CREAT | os.O_EXCL, os.O_RDWR | os.O_CREAT | os.O_TRUNC,
         os.O_RDONLY]
_calls_strategy = st.one_of(
    st.tuples(st.just("exists"), st.sampled_from(PATHS)),
    st.tuples(st.just("open"), st.sampled_from(PATHS), st.sampled_from(FLAGS)),
    st.tuples(st.just("pread"), st.integers(0, 2), st.integers(0, 9000), st.integers(0, 9000)),
    st.tuples(st.just("pwrite"), st.integers(0, 2), st.binary(min_size=0, max_size=5000), st.integers(0, 9000)),
    st.tuples(st.just("ftruncate"), st.integers(0, 2), st.integers(0, 9000)),
    st.tuples(st.just("size"), st.integers(0, 2)),
    st.tuples(st.just("fsync"), st.integers(0, 3)),
    st.tuples(st.just("close"), st.integers(0, 3)),
    st.tuples(st.just("unlink"), st.sampled_from(PATHS)),
    st.tuples(st.just("fsync_directory_of"), st.sampled_from(PATHS)),
)


@settings(max_examples=300, deadline=None)
@given(calls=st.lists(_calls_strategy, max_size=25), existing=st.binary(max_size=6000))
@example(calls=[("open", "/crashsweep/store/a", os.O_RDONLY), ("pwrite", 0, b"x", 0)], existing=b"")  # EBADF
@example(calls=[("open", "/crashsweep/store/a", os.O_RDONLY), ("pread", 0, 20, 1)], existing=b"abc")  # zeros
@example(calls=[("open", "/crashsweep/store/a", os.O_RDWR | os.O_CREAT | os.O_TRUNC), ("size", 0),
                ("pread", 0, 10, 0), ("open", "/crashsweep/store/b", os.O_RDWR | os.O_CREAT | os.O_EXCL),
                ("open", "/crashsweep/store/b", os.O_RDWR | os.O_CREAT | os.O_EXCL), ("ftruncate", 1, 5000),
                ("pread", 1, 9000, 4000)], existing=b"abc")
def test_tree_files_answer_any_call_sequence_as_the_live_session(calls, existing):
    """Beyond what SQLite asks: any sequence of calls (creating, excluding, truncating, reading past the
    end, writing past it, unlinking, bad handles) gets from TreeFiles, wherever it answers, exactly the
    live session's response; where it does not answer, a walk would miss (and the state run live)."""
    from crashsweep.disk_model import FsLog, FsTree, SessionCalls, TreeFiles, shared_session
    from crashsweep.disk_model.fs._log import FILE
    from crashsweep.disk_model.fs._tree_files import UNANSWERED
    tree = FsTree.initial()
    tree.apply(FsLog().add("link", 40, directory=4, name="a", entry_kind=FILE))
    tree.data[40], tree.sizes[40] = bytearray(existing), len(existing) + 7     # a size past its data: zeros
    shared_session(tree.copy(), FsLog())
    live, answered = SessionCalls(), TreeFiles(tree)
    live.restart()
    for call in calls:
        expected = answered.answer(call)
        if expected == UNANSWERED:       # not answered (a bad handle, a directory): the live call changes nothing
            with contextlib.suppress(Exception):
                getattr(live, call[0])(*call[1:])
            continue
        try:
            actual = getattr(live, call[0])(*call[1:])
            if call[0] == "open":
                actual = None
        except OSError as error:
            actual = ("error", error.errno)
        except KeyError:
            actual = UNANSWERED
        assert actual == expected, call
    assert tree.sizes[40] == len(existing) + 7      # the tree itself is never changed
