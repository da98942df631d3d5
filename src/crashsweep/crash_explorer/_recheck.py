"""Replay that survives the fix: when a trace's exact state no longer exists, re-check its operation.

A trace names a crash point by its position in the engine's I/O and the writes
pending there. Fixing the engine (one more `fsync`) changes that I/O, so the state
cannot be rebuilt — which says nothing about whether the bug is gone. Then the
trace's *operation* is re-checked instead: the engine is recorded again on the
trace's own workload, every crash point that falls during the same operation is
planned under the trace's strategy and faults (and crash depth), and every one of
those states is recovered and checked in worker processes:

- no violation: "no longer fails: N states at op K checked" (replay exits 0);
- a violation: "still fails", with a new trace of the first violating state (exit 1).

Invariants: engine code runs only in contained and worker processes; the verdict
depends only on the spec (the first violation is the lowest state id, whatever
--jobs); the number of states is bounded (`RECHECK_STATES_MAX`).
"""

from __future__ import annotations

import os
import time

from crashsweep.crash_explorer._classes import ClassNamer
from crashsweep.crash_explorer._executor import LocalExecutor
from crashsweep.crash_explorer._plan import make_units, plan_states
from crashsweep.crash_explorer._recording import record_contained
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._trace import make_trace, pending_fates
from crashsweep.crash_explorer._worker import remember

RECHECK_STATES_MAX = 20_000


def op_point_range(walk, op_index: int) -> tuple[int, int] | None:
    """[start, stop) of the crash points that fall during operation `op_index` (points are in log order)."""
    indexes = [point.index for point in walk.points if point.op_index == op_index]
    return (indexes[0], indexes[-1] + 1) if indexes else None


def recheck_operation(spec: SweepSpec, trace: dict, memory_limit_bytes: int | None = None, jobs: int = 1,
                      deadline: float | None = None) -> dict:
    """{"op", "checked", "planned", "complete", "violation": first violating result or None, "trace": its trace}.
    Requires: the trace has a crash (an operation to re-check)."""
    op_index = trace["crash"].get("op")
    recording = record_contained(spec, memory_limit_bytes)
    if recording.failure is not None:     # the workload itself fails now: that is the answer
        failure = dict(recording.failure, state=-1, point=None)
        return {"op": op_index, "checked": 0, "planned": 0, "complete": True, "violation": failure,
                "trace": make_trace(spec, failure, None)}
    remember(recording)
    span = op_point_range(recording.walk, op_index) if isinstance(op_index, int) else None
    if span is None:
        return {"op": op_index, "checked": 0, "planned": 0, "complete": True, "violation": None, "trace": None}
    plan = plan_states(recording, budget_states=RECHECK_STATES_MAX, point_range=span)
    found: list[dict] = []
    checked = [0]

    def take(result: dict) -> None:
        checked[0] += 1
        if result.get("kind"):
            found.append(result)

    executor = LocalExecutor(max(1, jobs), spec.state_timeout_s, memory_limit_bytes)
    stop = (lambda: time.monotonic() > deadline) if deadline is not None else (lambda: False)
    complete = executor.run(make_units(spec.to_json(), plan.states, spec_id=spec.spec_id), take, stop)
    first = min(found, key=lambda result: result["state"]) if found else None
    new_trace = None
    if first is not None:
        point = recording.walk.points[first["point"]]
        new_trace = make_trace(spec, first, point.position)
        new_trace["fates"] = pending_fates(ClassNamer(recording), point.pending, first.get("choice") or {})
    return {"op": op_index, "checked": checked[0], "planned": len(plan.states), "violations": len(found),
            "complete": complete and plan.distinct_total <= RECHECK_STATES_MAX,     # every planned state ran
            "violation": first, "trace": new_trace}


def recheck_trace_name(path: str) -> str:
    base = os.path.basename(path)
    for suffix in (".min.json", ".json"):
        if base.endswith(suffix):
            return base[:-len(suffix)] + ".now.json"
    return base + ".now.json"


REPRODUCED, FIXED, STILL_FAILS, CHANGED = "reproduced", "fixed", "still-fails", "fails-differently"


def check_trace(spec: SweepSpec, trace: dict, memory_limit_bytes: int | None = None, jobs: int = 1,
                deadline: float | None = None) -> dict:
    """Does a trace still fail? {"status": reproduced | fixed | still-fails | fails-differently, "result": the
    replayed result (or the re-check's first violation), "recheck": the re-check or None, "message": one line,
    "trace": a new trace when the re-check found a violation}. Raises TraceError for a trace without a crash
    whose workload cannot be replayed."""
    from crashsweep.crash_explorer._replay import replay_contained
    from crashsweep.crash_explorer.errors import TraceError

    kind = trace["violation"]["kind"]
    try:
        result = replay_contained(spec, trace, memory_limit_bytes)
    except TraceError as error:
        if trace.get("crash") is None:
            raise
        recheck = recheck_operation(spec, trace, memory_limit_bytes, jobs, deadline)
        op = "while the engine opens" if recheck["op"] == -1 else f"at op {recheck['op']}"
        if recheck["violation"] is None:
            partial = "" if recheck["complete"] else " (stopped early: not every state was checked)"
            return {"status": FIXED, "result": None, "recheck": recheck, "trace": None,
                    "message": f"no longer fails: {recheck['checked']:,} state(s) {op} checked{partial} (the "
                               f"exact state is gone: {error})"}
        violation = recheck["violation"]
        return {"status": STILL_FAILS, "result": violation, "recheck": recheck, "trace": recheck["trace"],
                "message": f"still fails: {recheck['violations']:,} of {recheck['checked']:,} state(s) {op} "
                           f"violate, first {violation['kind']}: {violation.get('detail', '')} (the engine's I/O "
                           "changed, so the trace's exact state is gone)"}
    if result.get("kind") == kind:
        return {"status": REPRODUCED, "result": result, "recheck": None, "trace": None,
                "message": f"reproduced: {kind}: {result.get('detail', '')}"}
    if result.get("kind"):
        return {"status": CHANGED, "result": result, "recheck": None, "trace": None,
                "message": f"fails differently: the trace recorded {kind}, the replay gave {result['kind']}: "
                           f"{result.get('detail', '')}"}
    return {"status": FIXED, "result": result, "recheck": None, "trace": None,
            "message": f"no longer fails: the trace recorded {kind}; its state now ends {result.get('outcome', 'well')}"
                       + (f" ({result['detail']})" if result.get("detail") else "")}
