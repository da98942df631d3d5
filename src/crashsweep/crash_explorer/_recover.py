"""Recover and check one crash state: open a fresh engine on the state's image, read
everything out, check it against the reference; optionally continue (more operations
and a sync, checked) and crash again inside recovery and continuation, to a depth.

Invariants:
- everything random here is seeded by (spec seed, point, choice), so a state's
  result does not depend on which worker ran it or in what order;
- an engine exception is a refusal (allowed only if the state has corruption)
  and a time-out is `hang`; neither escapes this module.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from crashsweep.crash_explorer._image import choice_problem, has_corruption
from crashsweep.crash_explorer._medium import (
    durable_of, engine_scope, hold, let_go, new_log, new_target, points_of,
)
from crashsweep.crash_explorer._strategies import choice_key, point_states
from crashsweep.crash_explorer.media import medium_of
from crashsweep.crash_explorer._time_limit import time_limit
from crashsweep.crash_explorer._limits import cap_text
from crashsweep.crash_explorer.errors import ENGINE_EXCEPTIONS, StateTimeout
from crashsweep.disk_model import InterpositionBypass
from crashsweep.reference._continuation import continuation_rng, continuation_steps, snapshot_hashes, steps_digest
from crashsweep.disk_model._sites import raising_site
from crashsweep.engines import EngineAdapter, NativeEngineError
from crashsweep.reference import (
    Diff, History, Op, Verdict, check_reads, check_recovered_windows, check_refusal, encode_bytes,
)

MEMOS_MAX = 256
READOUT_KEYS_MAX = 1_000_000
HOST_CONTINUATION_MUTATIONS_MAX = 100_000   # a longer history's continuation is sent request by request
HISTORY_TABLES_KEPT = 16
EVENTS_MAX = 32                 # recovery-path notes an engine may append per state (kept)
EVENT_CHARS_MAX = 200
NESTED_HISTORIES_KEPT = 64      # continuation histories whose nested states known to pass are remembered
NESTED_KNOWN_MAX = 4096         # such states remembered per history (then forgotten: at most ~50 MB in all)
NESTED_PASSED = True            # False: recover every nested state live (benchmarks/bench_nested.py compares)


@dataclass
class StateContext:
    """What recovering any state of one sweep needs (built once per worker)."""

    adapter: EngineAdapter
    options: dict
    sector_size: int
    sector_count: int
    volatile_cache: bool
    seed: int
    strategy: str
    bound: int
    samples: int
    faults: object
    crash_depth: int
    nested_states_max: int
    continuation: bool
    state_timeout_s: float
    fs_model: str = "posix"
    ignore_mmap: tuple = ()   # native medium: file globs whose shared writable mmaps are not refused
    memo: bool = True         # let an engine's observation memo answer states (results are the same either way)
    memos: dict = field(default_factory=dict)    # a history's content -> its observation memo
    memo_of_history: dict = field(default_factory=dict)   # (id(history), depth) -> (history, its memo), found fast
    live_runs: int = 0        # engine runs so far (a state answered by a memo whose nested states ran is not "memo")
    nested_passed: dict = field(default_factory=dict)   # a continuation history's content -> nested states that passed
    nested_answered: int = 0        # nested states answered by `nested_passed` (not recovered again)
    nested_plans: dict = field(default_factory=dict)   # a continuation log's shape and history -> its crash states


def encode_map(items: Mapping[bytes, bytes]) -> dict[str, str]:
    return {encode_bytes(key): encode_bytes(value) for key, value in sorted(items.items())}


def encode_diff(diff: Diff | None) -> dict | None:
    if diff is None:
        return None
    return {"missing": encode_map(diff.missing), "extra": encode_map(diff.extra),
            "wrong": {encode_bytes(k): [encode_bytes(e), encode_bytes(a)] for k, (e, a) in sorted(diff.wrong.items())}}


def read_out(store, keys: list[bytes]) -> tuple[dict[bytes, bytes], dict[bytes, bytes | None]]:
    """(the engine's full read-out, get(k) for every key the history touched)."""
    read_all = getattr(store, "read_all", None)     # an engine in another process: both in one round trip
    if callable(read_all):
        pairs, values = read_all(keys)
        reads = dict(zip(keys, values))
    else:
        get_value = store.get
        reads = {key: get_value(key) for key in keys}
        items_method = getattr(store, "items", None)
        pairs = None if items_method is None else items_method()
    if pairs is None:
        return {key: value for key, value in reads.items() if value is not None}, reads
    items = {}
    for key, value in pairs:
        items[bytes(key)] = bytes(value)
        assert len(items) <= READOUT_KEYS_MAX, "engine returned more items than the read-out bound"
    return items, reads


def continuation_ops(rng: random.Random, recovered: Mapping[bytes, bytes]) -> list[Op]:
    """The continuation's operations (`reference/_continuation.py` makes them; a kept native host makes the same)."""
    return [Op(kind, key, value) for kind, key, value in continuation_steps(rng, recovered)]


@dataclass(frozen=True)
class ContinuationPlan:
    """What an engine in another process needs to run this state's continuation itself, as `_continue` would:
    `request` is `history NAME HASH:m,m ...` (which S_m each stable snapshot hash of the history stands for,
    `reference/_continuation.py`), and the continuation's seed, depth and the state's windows."""

    name: str
    request: str
    seed: int
    depth: int
    windows: tuple

    @staticmethod
    def of(history: History, seed: int, depth: int, windows) -> "ContinuationPlan":
        kept = _history_tables.get(id(history))
        if kept is None or kept[0] is not history:
            table: dict[int, list[int]] = {}
            for mutations, value in enumerate(snapshot_hashes(history.base, history.changes)):
                table.setdefault(value, []).append(mutations)
            body = " ".join(f"{value:x}:{','.join(map(str, found))}" for value, found in table.items())
            name = hashlib.blake2b(body.encode(), digest_size=12).hexdigest()
            kept = _history_tables[id(history)] = (history, name, f"history {name} {body}")   # alive: its id is unique
            if len(_history_tables) > HISTORY_TABLES_KEPT:
                _history_tables.pop(next(iter(_history_tables)))
        return ContinuationPlan(kept[1], kept[2], seed, depth, tuple(windows))

    @staticmethod
    def digest(ops: list[Op]) -> str:
        """What the host answers for the operations it ran: equal to this for the ones `_continue` runs."""
        return steps_digest((op.kind, op.key, op.value) for op in ops)


_history_tables: dict[int, tuple] = {}     # id(history) -> (history, its name, its `history` request)


def recover_state(context: StateContext, image: Mapping[int, bytes], choice: dict, windows, history: History,
                  point_index: int, depth: int, timing: dict | None = None, chain: list | None = None,
                  damaged: bool = False) -> dict:
    """Result of one state as a JSON-ready dict (see docs/trace-format.md, results.jsonl).

    `chain`, when given, names the further crashes to take (replay) instead of exploring them.
    `damaged`: the image already holds injected damage (a crash after recovering a corrupted
    state inherits it), so a refusal is allowed even if this choice injects none.
    """
    engine: list = []
    # Nothing but the engine and the explorer's in-memory work (checks, and a deeper state's planning of its
    # continuation's crashes) runs in a state: the medium may hold its scope over all of it, the nested states'
    # recoveries included (their own holds and the engine calls' scopes then cost nothing).
    with hold(context):
        try:
            return _recover(context, image, choice, windows, history, point_index, depth, timing, chain, damaged,
                            engine)
        finally:
            let_go(context, engine)


def _recover(context, image, choice, windows, history, point_index, depth, timing, chain, damaged,
             engine: list) -> dict:
    damaged = damaged or has_corruption(choice)
    memo = _memo_for(context, depth, choice, history)
    if memo is None:
        return _recover_live(context, image, choice, windows, history, point_index, depth, timing, chain,
                             damaged, engine, None)
    answered = _recover_from_memo(context, memo, image, choice, windows, history, point_index, depth, damaged,
                                  timing, chain)
    if answered is not None:
        return answered
    memo.begin(image)
    result = None
    try:
        result = _recover_live(context, image, choice, windows, history, point_index, depth, timing, chain,
                               damaged, engine, memo)
        return result
    finally:
        memo.end(keep=result is not None and result["kind"] != "hang")   # a time-out is no function of the bytes


def _memo_for(context, depth: int, choice: dict, history: History):
    """The observation memo that may answer this state, or None. Only for an engine that is a function of
    its calls' responses (SQLite's file calls, the built-in block engines' device requests), with no
    injected faults, at the last crash depth — or at any depth on a medium whose walks reproduce the run's
    log (`memo_logs`: the nested states are then planned from the walk's log, as from a live run's).
    The harness's own calls (keys read out, continuation ops) and the checks derived from an outcome depend
    on the history and the depth: one memo per history and depth (a nested crash reads out its continuation's
    history; equal continuations share one)."""
    medium = medium_of(context)
    if not (context.memo and context.adapter.memoizable and medium.memoizable and not choice.get("faults")
            and (depth <= 0 or medium.memo_logs)):
        return None
    kept = context.memo_of_history.get((id(history), depth))
    if kept is None or kept[0] is not history:
        # Equal histories (the continuations of two states recovered alike) share one memo.
        content = (depth, tuple(history.ops), frozenset(history.base.items()))
        memo = context.memos.get(content)
        if memo is None:
            memo = context.memos[content] = medium.new_memo()
            if len(context.memos) > MEMOS_MAX:
                context.memos.pop(next(iter(context.memos)))
        kept = context.memo_of_history[(id(history), depth)] = (history, memo)   # kept alive: its id stays unique
        if len(context.memo_of_history) > MEMOS_MAX:
            context.memo_of_history.pop(next(iter(context.memo_of_history)))
    memo = kept[1]
    return None if memo.off else memo


def _state_seed(context, point_index: int, choice: dict, depth: int) -> str:
    """The seed of a state's rng (its target's, e.g. the device's completion order, and its nested crashes')."""
    return f"{context.seed}:{point_index}:{choice_key(choice)}:{depth}"


def _recover_live(context, image, choice, windows, history, point_index, depth, timing, chain, damaged,
                  engine: list, memo) -> dict:
    context.live_runs += 1
    # The state's rng: for its target (a block device's completion order) and its nested crashes; none needed
    # at the last depth of a medium whose targets do not draw on it (seeding one costs ~5 µs a state).
    medium = medium_of(context)
    rng = random.Random(_state_seed(context, point_index, choice, depth)) \
        if depth > 0 or medium.target_draws_on_rng else None
    log = new_log(context, traced=depth > 0)
    # The engine's own randomness depends on the depth only, not on the state: states an engine cannot
    # tell apart behave alike (see _continue), and journals of different depths never share a nonce.
    device = new_target(context, image, rng, log, random_seed=f"{context.seed}:recover:{depth}")
    for fault in choice.get("faults", ()):
        if fault["kind"] == "latent":
            device.unreadable.add(fault["sector"])
        elif fault["kind"] == "read-error":
            device.failing_once.add(fault["sector"])
    events: list[str] = []
    result: dict = {"point": point_index, "choice": choice}
    started = time.perf_counter()
    try:
        with time_limit(context.state_timeout_s), engine_scope(context, device):
            store = context.adapter.open(device, context.options, events)
            engine.append(store)
            plan = getattr(store, "plan_continuation", None)   # an engine in another process may run it ahead
            if callable(plan) and (context.continuation or depth > 0) \
                    and history.mutation_count <= HOST_CONTINUATION_MUTATIONS_MAX:
                plan(ContinuationPlan.of(history, context.seed, depth, windows))
            recovered, reads = read_out(store, history.keys_sorted())
        result["_engine_s"] = time.perf_counter() - started
    except StateTimeout:
        return _finish(result, Verdict("hang", "hang", detail=f"recovery took over {context.state_timeout_s} s"),
                       events, timing, started)
    except InterpositionBypass:
        raise
    except MemoryError:
        return _finish(result, Verdict("resource-exhausted", "resource-exhausted",
                                       detail="recovery ran out of memory (MemoryError under --memory-limit)"),
                       events, timing, started)
    except ENGINE_EXCEPTIONS as error:  # the engine's own exception: a refusal
        reason = cap_text(error_text(error))
        raised = raised_by(error)
        if memo is not None:
            memo.stop(("refused", reason, tuple(events), raised))
        result["raised"] = raised
        return _finish(result, check_refusal(reason, damaged), events, timing, started)
    if memo is not None:
        memo.stop(("read", recovered, reads, tuple(events), {}))   # {}: what hits derive from it, computed once
    matches = history.matching_mutations(recovered)
    verdict = check_recovered_windows(history, windows, recovered, matches)
    if verdict.ok:
        verdict = check_reads(recovered, reads) or verdict
    if verdict.ok and (context.continuation or depth > 0):
        verdict = _continue(context, store, history, verdict, recovered, matches[0], rng, log, image, depth,
                            result, timing, chain, damaged, memo, events)
    return _finish(_with_snapshots(result, verdict, recovered, history), verdict, events, timing, started)


def _recover_from_memo(context, memo, image, choice, windows, history, point_index, depth, damaged, timing,
                       chain=None) -> dict | None:
    """The result of a state whose every call's response the memo knows (same calls, same responses: the
    same recovery, read-out and continuation as the live run it recorded); None if it does not know them."""
    started = time.perf_counter()
    medium = medium_of(context)
    target = medium.memo_target(context, image, _state_seed(context, point_index, choice, depth),
                                traced=depth > 0 and chain != [])
    walk = memo.walk(target)
    if walk is None:
        memo.count(False)
        return None
    result: dict = {"point": point_index, "choice": choice, "memo": True, "_engine_s": 0.0}
    first = walk.outcome
    events = list(first[2] if first[0] == "refused" else first[3])
    if first[0] == "refused":
        memo.count(True)
        result["raised"] = first[3]
        return _finish(result, check_refusal(first[1], damaged), events, timing, started)
    _, recovered, reads, _, derived = first
    if "matches" not in derived:
        derived["matches"] = history.matching_mutations(recovered)
        derived["reads_agree"] = check_reads(recovered, reads) is None
    verdict = check_recovered_windows(history, windows, recovered, derived["matches"])
    if verdict.ok and not derived["reads_agree"]:
        verdict = check_reads(recovered, reads)
    if verdict.ok and (context.continuation or depth > 0):
        if not walk.go_on():
            memo.count(False)
            return None       # no state recovered like this one was continued yet: run it live
        if "ops" not in derived:
            derived["ops"] = _continuation_of(history, context.seed, depth, derived["matches"][0], recovered)
        ops = derived["ops"]
        raw, events_then = walk.outcome
        events = list(events_then)
        problem = _continuation_verdict(raw, ops, recovered, verdict)
        memo.count(True)
        if problem is None:
            result["continued"] = len(ops)
            if depth > 0:             # the walk's target holds the continuation's log, and the rng after it
                log, rng = medium.walked_run(target)
                live_before = context.live_runs
                verdict = _after_continuation(context, result, verdict, log, image, ops, recovered, depth, rng,
                                              timing, chain, damaged)
                if context.live_runs != live_before:   # engine code ran for a nested state: not answered whole
                    del result["memo"]
        else:
            if raw[0] == "error" and len(raw) > 2:
                result["raised"] = raw[2]
            verdict = problem
        return _finish(_with_snapshots(result, verdict, recovered, history), verdict, events, timing, started)
    memo.count(True)
    return _finish(_with_snapshots(result, verdict, recovered, history), verdict, events, timing, started)


def _with_snapshots(result: dict, verdict: Verdict, recovered, history) -> dict:
    if verdict.kind in ("not-a-snapshot", "lost-synced-data") and "nested" not in result:
        result["actual"] = encode_map(recovered)
        result["expected"] = encode_map(history.snapshot(verdict.nearest))
    return result


def _continuation_of(history: History, seed: int, depth: int, snapshot: int, recovered) -> list[Op]:
    """`continuation_ops(continuation_rng(seed, depth, snapshot), recovered)` for a map `recovered` equal to
    S_`snapshot` of `history` (a state is continued only then): a function of (history, seed, depth, snapshot),
    kept — most states of a sweep recover to a few snapshots, and seeding its rng costs ~5 µs."""
    key = (id(history), seed, depth, snapshot)
    kept = _continuations.get(key)
    if kept is None or kept[0] is not history:
        if len(_continuations) >= CONTINUATIONS_KEPT:
            _continuations.clear()
        kept = _continuations[key] = (history, tuple(continuation_ops(continuation_rng(seed, depth, snapshot),
                                                                      recovered)))
    return list(kept[1])


CONTINUATIONS_KEPT = 4096
_continuations: dict[tuple, tuple] = {}   # (id(history), seed, depth, snapshot) -> (history, its operations)


def _continue(context, store, history, verdict, recovered, snapshot, rng, log, image, depth, result, timing,
              chain, damaged, memo=None, events=()):
    """Run more operations and a sync on the recovered engine (which recovered S_`snapshot`); then crash
    inside that I/O, to `depth`."""
    ops = _continuation_of(history, context.seed, depth, snapshot, recovered)
    continued = time.perf_counter()
    raw = _run_continuation(context, store, ops, log, recovered)
    if memo is not None:
        memo.stop((raw, tuple(events)))    # with the events of the whole run so far (the continuation may add some)
    result["_engine_s"] = result.get("_engine_s", 0.0) + time.perf_counter() - continued
    problem = _continuation_verdict(raw, ops, recovered, verdict)
    if problem is not None:
        if raw[0] == "error" and len(raw) > 2:
            result["raised"] = raw[2]
        return problem
    result["continued"] = len(ops)
    return _after_continuation(context, result, verdict, log, image, ops, recovered, depth, rng, timing, chain,
                               damaged)


def _after_continuation(context, result, verdict, log, image, ops, recovered, depth, rng, timing, chain,
                        damaged) -> Verdict:
    """After a continuation that went well: crash again inside its I/O (`log`), to `depth`."""
    if depth <= 0 or chain == []:
        return verdict
    nested = _crash_again(context, log, image, History(ops, base=recovered), depth, rng, timing, chain, damaged)
    result["nested_states"] = nested["states"]
    if nested["violation"] is not None:
        inner = nested["violation"]
        result["nested"] = [{"point": inner["point"], "choice": inner["choice"]}] + inner.get("nested", [])
        for name in ("actual", "expected", "diff", "raised"):
            if name in inner:
                result[name] = inner[name]
        return Verdict(inner["kind"], inner["outcome"], matched=inner.get("matched"), nearest=inner.get("nearest"),
                       detail=f"after recovery to S_{verdict.matched}, crash again during the continuation "
                              f"(C_i: the continuation's snapshots, C_0 = S_{verdict.matched}): "
                              f"{continuation_labels(inner['detail'])}")
    return verdict


def _run_continuation(context, store, ops: list[Op], log, recovered) -> tuple:
    """Run the continuation: ("done",), ("wrong-read", op index, value read), ("hang",) or ("error", text)."""
    reference = dict(recovered)
    run_ops = getattr(store, "run_ops", None)      # an engine in another process runs them pipelined, alike
    try:
        with time_limit(context.state_timeout_s), engine_scope(context, None):
            if callable(run_ops):
                return run_ops(ops, reference, log.begin_op, log.end_op)
            for index, op in enumerate(ops):
                log.begin_op(index)
                if op.kind == "put":
                    store.put(op.key, op.value)
                    reference[op.key] = op.value
                elif op.kind == "delete":
                    store.delete(op.key)
                    reference.pop(op.key, None)
                elif op.kind == "get":
                    actual = store.get(op.key)
                    if actual != reference.get(op.key):
                        return ("wrong-read", index, actual)
                else:
                    store.sync()
                log.end_op(index)
    except StateTimeout:
        return ("hang",)
    except InterpositionBypass:
        raise
    except MemoryError:
        return ("exhausted",)
    except ENGINE_EXCEPTIONS as error:
        return ("error", cap_text(error_text(error)), raised_by(error))
    return ("done",)


def continuation_labels(detail: str) -> str:
    """A nested state's detail with its snapshots named C_i: they index the continuation's history, not the
    workload's S_i. (A detail from a deeper level already names its own histories and is kept.)"""
    return detail if "crash again" in detail else re.sub(r"\bS_(\d+)", r"C_\1", detail)


def raised_by(error: BaseException) -> str:
    """"Type at file.py:line": the exception's type and the engine line that raised it (DESIGN §5, classes).
    An engine in a process of its own that said which exception it raised, and where, is named by that."""
    if isinstance(error, NativeEngineError) and error.reported is not None:
        kind, site = error.reported
    elif isinstance(error, NativeEngineError) and error.death is not None:
        kind, site = error.death, ""          # "killed by SIGSEGV": how the engine's process ended
    else:
        kind, site = type(error).__name__, raising_site(error.__traceback__)
    return cap_text(f"{kind} at {site}" if site else kind, 300)


def error_text(error: BaseException) -> str:
    """"Type: message" of an engine's exception (the engine's own type when a native host reported it)."""
    if isinstance(error, NativeEngineError) and error.reported is not None:
        return f"{error.reported[0]}: {error}"
    if isinstance(error, NativeEngineError) and error.death is not None:
        return str(error)                     # "the engine process was killed by SIGSEGV; its stderr ends: ..."
    return f"{type(error).__name__}: {error}"


def _continuation_verdict(raw: tuple, ops: list[Op], recovered, verdict: Verdict) -> Verdict | None:
    """None if the continuation went well, else the violation it shows."""
    if raw[0] == "done":
        return None
    if raw[0] == "hang":
        return Verdict("hang", "hang", detail="continuation after recovery timed out")
    if raw[0] == "exhausted":
        return Verdict("resource-exhausted", "resource-exhausted",
                       detail="continuation after recovery ran out of memory (MemoryError under --memory-limit)")
    if raw[0] == "error":
        return Verdict("recovery-error", "recovery-error", detail=f"continuation after recovery raised {raw[1]}")
    index, actual = raw[1], raw[2]
    key = ops[index].key
    reference = dict(recovered)
    for op in ops[:index]:
        if op.kind == "put":
            reference[op.key] = op.value
        elif op.kind == "delete":
            reference.pop(op.key, None)
    bad = check_reads(reference, {key: actual})
    bad.detail = f"after recovery to S_{verdict.matched}, continuation: " + bad.detail
    return bad


def _crash_again(context, log, image, history, depth, rng, timing, chain, damaged) -> dict:
    states, seen = 0, set()
    if chain:
        walk = points_of(context, log, history)
        durable = durable_of(context, walk, log, base=image)
        step = chain[0]
        problem = choice_problem(walk, step["point"], step["choice"], context.sector_count)
        if problem is not None:
            raise IndexError(f"crash again: {problem}")
        point = walk.points[step["point"]]
        durable.advance(point.durable_count)
        inner = recover_state(context, durable.snapshot(durable.overlay(step["choice"])), step["choice"],
                              point.windows, history, point.index, depth - 1, timing, chain[1:], damaged)
        return {"states": 1, "violation": inner if inner["kind"] is not None else None}
    walk, durable, planned = _nested_plan(context, log, image, history, rng)
    candidates = [(walk.points[position], choice) for position, choice in planned]
    if len(candidates) > context.nested_states_max:
        picked = sorted(rng.sample(range(len(candidates)), context.nested_states_max))
        candidates = [candidates[index] for index in picked]
    passed = _nested_passed(context, history, depth)
    for point, choice in candidates:
        durable.advance(point.durable_count)
        overlay = durable.overlay(choice)
        key = durable.state_hash(overlay, choice)
        if key in seen:
            continue
        seen.add(key)
        states += 1
        known = None if passed is None or choice.get("faults") else (key, tuple(map(tuple, point.windows)), damaged)
        if known is not None and known in passed:
            context.nested_answered += 1
            continue
        inner = recover_state(context, durable.snapshot(overlay), choice, point.windows, history,
                              point.index, depth - 1, timing, damaged=damaged)
        states += inner.get("nested_states", 0)
        if inner["kind"] is not None:
            return {"states": states, "violation": inner}
        if known is not None:
            if len(passed) >= NESTED_KNOWN_MAX:
                passed.clear()
            passed.add(known)
    return {"states": states, "violation": None}


def _nested_plan(context, log, image, history: History, rng) -> tuple:
    """The crash points of a continuation's log (and its durable image on `image`) and the states planned at
    each, `[(position of the point, choice), ...]`
    (each point's first `nested_states_max` choices, normalized), before they are sampled across points.
    Both are functions of the log's shape (`Medium.log_shape`: its micro-ops and events but for the bytes
    written), the history and the context's settings — not of the bytes or the image — for a strategy that
    plans nested states without drawing on `rng` (bounded, prefix): most continuations of an engine leave
    logs of few shapes (two states recovered to one snapshot run one continuation), so a plan is made once
    per shape and history and kept (`NESTED_PLANS_KEPT`). The states' images and hashes are this log's own."""
    shape = medium_of(context).log_shape(context, log) if context.strategy in NESTED_PLANS_STRATEGIES else None
    if shape is not None:
        key = (shape, tuple(history.ops), frozenset(history.base.items()))
        kept = context.nested_plans.get(key)
        if kept is not None:
            return kept[0], durable_of(context, kept[0], log, base=image), kept[1]
    walk = points_of(context, log, history)
    durable = durable_of(context, walk, log, base=image)
    planned = []
    for position, point in enumerate(walk.points):
        counts = [walk.writes[rid][1] for rid in point.pending]
        choices, _, _ = point_states(point, counts, context.faults, context.strategy, context.bound,
                                     context.samples, context.nested_states_max, rng, sample_past_max=False)
        planned.extend((position, durable.normalize(point, choice)) for choice in choices)
    if shape is not None:
        if len(context.nested_plans) >= NESTED_PLANS_KEPT:
            context.nested_plans.pop(next(iter(context.nested_plans)))
        context.nested_plans[key] = (walk, planned)
    return walk, durable, planned


NESTED_PLANS_KEPT = 256
NESTED_PLANS_STRATEGIES = ("bounded", "prefix")     # (`point_states` draws on the rng for the others)


def _nested_passed(context, history: History, depth: int) -> set | None:
    """The nested states of this continuation history known to pass, or None when a state's result is not a
    function of (image, history, windows): a state at the last crash depth is recovered, read out, checked and
    continued (no further crash, whose sampling draws on the state's rng), so two top-level states recovered
    alike (the same history) whose nested crashes leave the same image with the same windows get the same
    result — unless the medium's target draws on the state's rng (the block device's completion order).
    A passing nested state is recovered once per history, not once per top-level state that reaches it
    (most top-level states of a file engine differ in bytes the recovery rewrites; `--no-memo`: all live)."""
    if depth != 1 or not (context.memo and NESTED_PASSED) or medium_of(context).target_draws_on_rng:
        return None
    content = (tuple(history.ops), frozenset(history.base.items()))
    passed = context.nested_passed.pop(content, None)
    if passed is None:
        passed = set()
        if len(context.nested_passed) >= NESTED_HISTORIES_KEPT:
            context.nested_passed.pop(next(iter(context.nested_passed)))
    context.nested_passed[content] = passed      # the most recently used last
    return passed


def _finish(result: dict, verdict: Verdict, events: list[str], timing: dict | None, started: float) -> dict:
    result.update(kind=verdict.kind, outcome=verdict.outcome, detail=cap_text(verdict.detail))
    if verdict.matched is not None:
        result["matched"] = verdict.matched
        result["latest"] = verdict.latest
    if verdict.nearest is not None:
        result["nearest"] = verdict.nearest
    if verdict.diff is not None and "diff" not in result:
        result["diff"] = encode_diff(verdict.diff)
    if events:
        result["events"] = [cap_text(str(event), EVENT_CHARS_MAX) for event in events[:EVENTS_MAX]]
    engine_s = result.pop("_engine_s", time.perf_counter() - started)
    if timing is not None:
        timing["engine_s"] = timing.get("engine_s", 0.0) + engine_s
    return result
