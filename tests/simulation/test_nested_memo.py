"""Nested states known to pass: at the last crash depth, a nested state whose image, continuation history,
windows and damage another top-level state already recovered and passed is not recovered again
(`_recover._nested_passed`). Every state's result must be the one of recovering every nested state live."""

import os

import pytest

from tests.simulation.planned_sweep import planned_sweep, state_results

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FS_ENGINES = os.path.join(ROOT, "tests", "engines", "fs_engines.py")


def _results_with_and_without(argv: list[str]):
    """(every state's result with nested states known to pass skipped, the same recovering every one live,
    how many nested states were skipped)."""
    recording, units = planned_sweep(argv)
    live = state_results(units, memo=False)
    recording.context.nested_passed.clear()
    answered_before = recording.context.nested_answered
    known = state_results(units)
    return known, live, recording.context.nested_answered - answered_before


@pytest.mark.parametrize("engine", [
    "AtomicReplace", "StaleAfterRecovery", "MissingDirectoryFsync", "RenameWithoutFsync",
    pytest.param("ChecksummedLog", marks=pytest.mark.long), pytest.param("InPlaceUpdate", marks=pytest.mark.long),
    pytest.param("TornAppendNoChecksum", marks=pytest.mark.long)])
def test_nested_states_known_to_pass_change_no_result(engine):
    """File engines at crash depth 1, correct and buggy (violations in the continuation and in nested states;
    MissingDirectoryFsync's differ by their windows alone): every result, nested state counts and findings
    included, equals the all-live one, and nested states were answered without recovering them again."""
    known, live, answered = _results_with_and_without(
        ["--engine", f"{FS_ENGINES}:{engine}", "--ops", "16", "--crash-depth", "1"])
    nested = sum(result.get("nested_states", 0) for result in live)
    assert nested > 30 and answered > 0, (answered, nested)
    if not any(result["kind"] for result in live):     # a correct engine: most nested states repeat
        assert answered > nested / 2, (answered, nested)
    assert known == live


@pytest.mark.parametrize("engine", ["AtomicReplace", "MissingDirectoryFsync"])
def test_at_crash_depth_2_only_the_deepest_states_are_skipped_and_results_are_equal(engine):
    known, live, answered = _results_with_and_without(
        ["--engine", f"{FS_ENGINES}:{engine}", "--ops", "8", "--crash-depth", "2"])
    assert answered > 100 and sum(result.get("nested_states", 0) for result in live) > 500
    assert known == live


def test_nested_findings_are_the_same_when_known_states_are_skipped():
    """A buggy engine whose nested states fail (a rename not made durable before the directory is synced):
    the same nested violations, at the same nested points and choices."""
    known, live, answered = _results_with_and_without(
        ["--engine", f"{FS_ENGINES}:RenameWithoutFsync", "--ops", "16", "--crash-depth", "1"])
    assert any(result.get("nested") for result in live), "no nested violation to compare"
    assert answered > 0
    assert [result.get("nested") for result in known] == [result.get("nested") for result in live]
    assert known == live


def test_nested_states_are_known_per_continuation_history_at_the_last_depth_only():
    """The states known to pass belong to one continuation history (its operations and base map, by content):
    equal histories share them, another base or other operations do not; none are kept for a state that crashes
    again deeper, with the memo off, or on the block device."""
    from crashsweep import cli
    from crashsweep.crash_explorer._recover import _nested_passed
    from crashsweep.crash_explorer._recording import state_context
    from crashsweep.reference import History, get, put, sync

    def context_of(engine):
        return state_context(cli.spec_from_args(cli.parse_with_settings(["sweep", "--engine", engine])))

    context = context_of(f"{FS_ENGINES}:AtomicReplace")
    ops = [put(b"a", b"1"), get(b"a"), sync()]
    first = _nested_passed(context, History(ops, base={b"k": b"v"}), 1)
    first.add("known")
    assert _nested_passed(context, History(list(ops), base={b"k": b"v"}), 1) is first
    assert not _nested_passed(context, History(ops, base={b"k": b"w"}), 1)
    assert not _nested_passed(context, History([put(b"a", b"2"), get(b"a"), sync()], base={b"k": b"v"}), 1)
    assert _nested_passed(context, History(ops, base={b"k": b"v"}), 2) is None
    context.memo = False
    assert _nested_passed(context, History(ops, base={b"k": b"v"}), 1) is None
    assert _nested_passed(context_of("betree"), History(ops), 1) is None


def test_a_block_device_s_nested_states_are_all_recovered():
    """The simulated block device completes in-flight requests in the order of the state's own rng: a nested
    state's result may depend on which top-level state reached it, so none is answered from another's."""
    known, live, answered = _results_with_and_without(["--engine", "betree", "--ops", "16", "--crash-depth", "1"])
    assert answered == 0
    assert known == live and sum(result.get("nested_states", 0) for result in live) > 50


@pytest.mark.long
def test_a_native_engine_s_nested_states_known_to_pass_change_no_result():
    pytest.importorskip("lmdb")
    known, live, answered = _results_with_and_without(["--engine", "lmdb", "--ops", "12", "--crash-depth", "1"])
    assert answered > 0
    assert known == live


def test_memory_stays_bounded_and_results_do_not_change_when_known_states_are_forgotten(monkeypatch):
    """Past the bounds (histories kept, states per history) known states are forgotten and recovered again:
    fewer are skipped, every result is the same."""
    from crashsweep.crash_explorer import _recover

    sizes = []
    real = _recover._nested_passed

    def watched(context, history, depth):
        passed = real(context, history, depth)
        sizes.append((len(context.nested_passed), 0 if passed is None else len(passed)))
        return passed

    monkeypatch.setattr(_recover, "NESTED_KNOWN_MAX", 3)
    monkeypatch.setattr(_recover, "NESTED_HISTORIES_KEPT", 2)
    monkeypatch.setattr(_recover, "_nested_passed", watched)
    known, live, answered = _results_with_and_without(
        ["--engine", f"{FS_ENGINES}:AtomicReplace", "--ops", "16", "--crash-depth", "1"])
    assert known == live and answered > 0
    assert max(histories for histories, _ in sizes) <= 2 and max(states for _, states in sizes) <= 3


@pytest.mark.parametrize("argv", [
    ["--engine", f"{FS_ENGINES}:ChecksummedLog", "--ops", "12"],
    ["--engine", f"{FS_ENGINES}:LinkCommit", "--ops", "16", "--fs-model", "ext4-ordered"],
    ["--engine", f"{FS_ENGINES}:MissingDirectoryFsync", "--ops", "16"],
    ["--engine", f"{FS_ENGINES}:AtomicReplace", "--ops", "8", "--crash-depth", "2", "--fs-model", "strict"],
    ["--engine", "sqlite", "--ops", "6"],
])
def test_nested_plans_kept_per_log_shape_change_no_result(monkeypatch, argv):
    """A continuation's crash states planned once per log shape and history (`_recover._nested_plan`): every
    state's result, nested findings included, equals planning each continuation anew — and plans were reused."""
    from crashsweep.crash_explorer import _recover

    planned = []
    plan = _recover._nested_plan
    monkeypatch.setattr(_recover, "_nested_plan", lambda *arguments: planned.append(1) or plan(*arguments))
    recording, units = planned_sweep(argv)
    kept = state_results(units, memo=False)
    plans = len(recording.context.nested_plans)
    assert 0 < plans < len(planned), (plans, len(planned))
    recording.context.nested_plans.clear()
    monkeypatch.setattr(_recover, "NESTED_PLANS_STRATEGIES", ())
    anew = state_results(units, memo=False)
    assert not recording.context.nested_plans
    assert kept == anew


def test_a_log_shape_is_the_log_but_for_the_bytes_written():
    """What a kept plan is found by (`FsLog.shape`): logs alike but for their bytes share it; a write's length
    or offset (its tear units) or a size does not."""
    from crashsweep.disk_model import FsLog
    from crashsweep.disk_model.fs._log import SIZE, WRITE

    def log(data: bytes, offset: int = 0, size: int | None = None) -> FsLog:
        made = FsLog()
        made.next_call()
        made.add(WRITE, 20, offset=offset, data=data)
        made.add(SIZE, 20, size=offset + len(data) if size is None else size)
        made.synced(20, False)
        return made

    assert log(b"a" * 5000).shape() == log(b"b" * 5000).shape()
    assert log(b"a" * 5000).shape() != log(b"a" * 3000).shape()
    assert log(b"a", offset=4095).shape() != log(b"a", offset=4096).shape()
    assert log(b"a", size=7).shape() != log(b"a", size=8).shape()
