"""Minimize a failing trace: fewer operations, fewer persisted writes, fewer faults,
while a violation of the same kind still holds.

1. Operations: delta debugging over the op list (drop chunks of halving size).
   Each candidate history is recorded again and searched for a state with the
   same violation kind, earliest crash point first, up to a per-candidate budget.
2. The crash state: drop each landed write (when `lost` is on), make torn writes
   whole or lost, and drop faults, keeping each change that still fails.

A minimized trace is a normal trace plus a "minimized" record of what shrank.
Invariants: the result replays to the same violation kind; minimization is
deterministic for a given trace and budget of states (a time budget can only
stop it earlier, leaving a valid, less-minimized trace).
"""

from __future__ import annotations

import time
from dataclasses import replace

from crashsweep.crash_explorer._plan import make_units, plan_states
from crashsweep.crash_explorer._executor import LocalExecutor
from crashsweep.crash_explorer._explain import explanation
from crashsweep.crash_explorer._worker import remember
from crashsweep.crash_explorer._image import choice_problem
from crashsweep.crash_explorer._recording import record_contained
from crashsweep.crash_explorer._replay import _check_pending, contained_timeout_s, replay_contained
from crashsweep.crash_explorer._sandbox import run_contained
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._classes import ClassNamer
from crashsweep.crash_explorer._trace import make_trace, pending_fates
from crashsweep.crash_explorer.errors import ExplorerError, TraceError
from crashsweep.engines import EngineError

STATES_PER_CANDIDATE_DEFAULT = 3000
BUDGET_SECONDS_DEFAULT = 300.0


class _Search:
    def __init__(self, kind: str, crashed: bool, states_max: int, deadline: float,
                 memory_limit_bytes: int | None = None):
        self.kind, self.crashed, self.states_max, self.deadline = kind, crashed, states_max, deadline
        self.memory_limit_bytes = memory_limit_bytes
        self.candidates = 0
        self.executor: LocalExecutor | None = None      # kept across checks of one spec: one fork, not one each
        self.executor_spec: str | None = None

    def expired(self) -> bool:
        return time.monotonic() > self.deadline

    def find(self, spec: SweepSpec) -> tuple[dict, int] | None:
        """A result of the same kind for this spec, and the crash point's event position, or None."""
        self.candidates += 1
        recording = record_contained(spec, self.memory_limit_bytes)
        remember(recording)      # the workers forked from here use it instead of recording again
        if not self.crashed:
            failure = recording.failure
            return (failure, None) if failure is not None and failure["kind"] == self.kind else None
        if recording.failure is not None:
            return None
        plan = plan_states(recording, first_states=self.states_max)
        states = sorted(plan.states, key=lambda planned: (planned.point, planned.state_id))[:self.states_max]
        found = self.first_of_kind(spec, make_units(spec.to_json(), states))
        return None if found is None else (found, recording.walk.points[found["point"]].position)

    def checker(self, spec: SweepSpec, result: dict, recording):
        """check(choice): does the state of `result`'s point with this choice still fail with the searched kind.
        An invalid choice does not (it is no state of that point)."""

        def check(choice: dict) -> bool:
            if choice_problem(recording.walk, result["point"], choice, spec.sector_count) is not None:
                return False
            unit = {"unit": 0, "spec": spec.to_json(), "spec_id": spec.spec_id,
                    "states": [[result.get("state", 0), result["point"], choice, result["windows"], "", 1]]}
            return self.first_of_kind(spec, [unit], ignore_deadline=True) is not None
        return check

    def first_of_kind(self, spec: SweepSpec, units: list[dict], ignore_deadline: bool = False) -> dict | None:
        """The first result of the searched kind, in unit order; states run in a worker process (an engine that
        kills it costs that state, as in a sweep)."""
        found: list[dict] = []
        one_state = len(units) == 1 and len(units[0]["states"]) == 1
        if self.executor is None or self.executor_spec != spec.spec_id:
            self.close()
            self.executor = LocalExecutor(1, spec.state_timeout_s, self.memory_limit_bytes, keep_workers=True)
            self.executor_spec = spec.spec_id

        def take(result: dict) -> None:
            if result["kind"] == self.kind and not found:
                found.append(result)

        # a one-state unit runs to its end (its worker is then kept for the next check); others stop early
        stop = (lambda: False) if one_state else (lambda: bool(found) or (self.expired() and not ignore_deadline))
        self.executor.run(units, take, stop)
        return found[0] if found else None

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None


def minimize_trace(spec: SweepSpec, trace: dict, budget_seconds: float = BUDGET_SECONDS_DEFAULT,
                   states_per_candidate: int = STATES_PER_CANDIDATE_DEFAULT,
                   memory_limit_bytes: int | None = None) -> tuple[SweepSpec, dict]:
    """(smaller spec, smaller trace). Requires: the trace reproduces (see replay_trace).
    Engine code runs only in contained processes (recordings) and worker processes (states)."""
    started = time.monotonic()
    kind = trace["violation"]["kind"]
    crashed = trace.get("crash") is not None
    if crashed and trace.get("nested", []) == []:
        spec = replace(spec, crash_depth=0)   # the violation is at the first crash: no need to crash again
    search = _Search(kind, crashed, states_per_candidate, started + budget_seconds, memory_limit_bytes)
    try:
        original_ops = len(spec.ops)
        found = search.find(spec)
        if found is None:   # the search budget misses it: keep the original state as the witness
            result = replay_contained(spec, trace, memory_limit_bytes)
            found = (result, trace["crash"]["position"] if crashed else None)
        spec, found = _shrink_ops(spec, found, search)
        result, position = found
        original_landed = _landed(result.get("choice", {}))
        recording = None
        if crashed:
            result, recording = _shrink_choice(spec, result, kind, search)
        shrunk = make_trace(spec, result, position)
        if recording is not None and result.get("point") is not None:
            point = recording.walk.points[result["point"]]
            shrunk["fates"] = pending_fates(ClassNamer(recording), point.pending, result.get("choice") or {})
            if not result.get("nested"):
                shrunk["explanation"] = explanation(recording, result, search.checker(spec, result, recording),
                                                    lambda other: search.checker(spec, other, recording))
        shrunk["minimized"] = {"ops_before": original_ops, "ops_after": len(spec.ops),
                               "landed_writes_before": original_landed, "landed_writes_after": _landed(shrunk["choice"]),
                               "candidates_tried": search.candidates, "seconds": round(time.monotonic() - started, 3),
                               "complete": not search.expired()}
    finally:
        search.close()
    return spec, shrunk


def _landed(choice: dict) -> int:
    return len(choice.get("persist", ())) + len(choice.get("torn", ()))


def _shrink_ops(spec: SweepSpec, found, search: _Search):
    ops = list(spec.ops)
    chunk = max(1, len(ops) // 2)
    while chunk >= 1 and not search.expired():
        index, changed = 0, False
        while index < len(ops) and not search.expired():
            candidate = ops[:index] + ops[index + chunk:]
            result = search.find(spec.with_ops(candidate)) if candidate else None
            if result is not None:
                ops, found, changed = candidate, result, True
            else:
                index += chunk
        if not changed:
            chunk //= 2
    return spec.with_ops(ops), found


def _shrink_choice(spec: SweepSpec, result: dict, kind: str, search: _Search) -> tuple[dict, object]:
    recording = record_contained(spec, search.memory_limit_bytes)
    remember(recording)
    lost_allowed = spec.faults.has("lost")
    improved = True
    while improved and not search.expired():
        improved = False
        for candidate in _simpler_choices(result["choice"], lost_allowed):
            search.candidates += 1
            if choice_problem(recording.walk, result["point"], candidate, spec.sector_count) is not None:
                continue
            unit = {"unit": 0, "spec": spec.to_json(), "spec_id": spec.spec_id,
                    "states": [[result.get("state", 0), result["point"], candidate, result["windows"],
                                result.get("image", ""), 1]]}
            attempt = search.first_of_kind(spec, [unit])
            if attempt is not None:
                result, improved = {**attempt, "state": result.get("state")}, True
                break
    return result, recording


def _simpler_choices(choice: dict, lost_allowed: bool):
    persist = list(choice.get("persist", ()))
    torn = [list(item) for item in choice.get("torn", ())]
    faults = list(choice.get("faults", ()))

    def build(persist_, torn_, faults_):
        made = {}
        if persist_:
            made["persist"] = sorted(persist_)
        if torn_:
            made["torn"] = sorted(torn_)
        if faults_:
            made["faults"] = faults_
        return made

    for index in range(len(faults)):
        yield build(persist, torn, faults[:index] + faults[index + 1:])
    for index, (request_id, _) in enumerate(torn):
        rest = torn[:index] + torn[index + 1:]
        if lost_allowed:
            yield build(persist, rest, faults)
        yield build(persist + [request_id], rest, faults)
    if lost_allowed:
        misdirected = {fault.get("request") for fault in faults}
        for request_id in persist:
            if request_id not in misdirected:
                yield build([rid for rid in persist if rid != request_id], torn, faults)


def minimize_contained(spec: SweepSpec, trace: dict, budget_seconds: float = BUDGET_SECONDS_DEFAULT,
                       states_per_candidate: int = STATES_PER_CANDIDATE_DEFAULT,
                       memory_limit_bytes: int | None = None) -> dict:
    """`minimize_trace` in a contained process: the smaller trace as data. Raises ExplorerError (one line)
    when the engine kills, hangs or exhausts that process, or the trace does not fit the recording."""
    timeout_s = contained_timeout_s(spec, budget_seconds)
    outcome = run_contained(_minimize_as_data, spec.to_json(), trace, budget_seconds, states_per_candidate,
                            memory_limit_bytes, timeout_s=timeout_s, memory_limit_bytes=memory_limit_bytes)
    if outcome.ok and isinstance(outcome.value, dict):
        if "error" in outcome.value:
            raise TraceError(str(outcome.value["error"]))
        smaller = outcome.value.get("trace")
        if isinstance(smaller, dict) and isinstance(smaller.get("spec"), dict):
            return smaller
    raise ExplorerError(f"minimization stopped: its engine process {outcome.detail or 'sent no trace'}")


def _minimize_as_data(spec_json: dict, trace: dict, budget_seconds: float, states_per_candidate: int,
                      memory_limit_bytes: int | None) -> dict:
    try:
        _, smaller = minimize_trace(SweepSpec.from_json(spec_json).validate(), trace, budget_seconds,
                                    states_per_candidate, memory_limit_bytes)
    except (ExplorerError, EngineError) as error:
        return {"error": str(error)}
    return {"trace": smaller}


EXPLAIN_SECONDS_DEFAULT = 120.0


def explain_contained(spec: SweepSpec, trace: dict, memory_limit_bytes: int | None = None,
                      budget_seconds: float = EXPLAIN_SECONDS_DEFAULT) -> dict:
    """The explanation (`_explain.explanation`) of a trace's state, computed in a contained process. Raises
    TraceError when the trace no longer names a state of the engine's recording (its I/O changed)."""
    outcome = run_contained(_explain_as_data, spec.to_json(), trace, budget_seconds, memory_limit_bytes,
                            timeout_s=contained_timeout_s(spec, budget_seconds), memory_limit_bytes=memory_limit_bytes)
    if outcome.ok and isinstance(outcome.value, dict):
        if "error" in outcome.value:
            raise TraceError(str(outcome.value["error"]))
        if isinstance(outcome.value.get("explanation"), dict):
            return outcome.value["explanation"]
    raise ExplorerError(f"explaining stopped: its engine process {outcome.detail or 'sent no explanation'}")


def _explain_as_data(spec_json: dict, trace: dict, budget_seconds: float, memory_limit_bytes: int | None) -> dict:
    spec = SweepSpec.from_json(spec_json).validate()
    crash = trace.get("crash")
    if crash is None:
        return {"error": "the trace has no crash (the workload itself failed): nothing to explain"}
    try:
        recording = record_contained(spec, memory_limit_bytes)
        remember(recording)
        points = recording.walk.points
        if crash["point"] >= len(points) or (crash.get("position") is not None
                                             and points[crash["point"]].position != crash["position"]):
            return {"error": "the engine's I/O changed since the trace was written: re-check it with "
                             "`crashsweep replay`"}
        _check_pending(recording, crash["point"], trace.get("fates"))
        problem = choice_problem(recording.walk, crash["point"], trace["choice"], spec.sector_count)
        if problem is not None:
            return {"error": f"{problem}: the engine's I/O changed since the trace was written"}
        result = {"point": crash["point"], "choice": trace["choice"], "windows": crash["windows"],
                  "op": points[crash["point"]].op_index, "state": trace.get("state", 0)}
        search = _Search(trace["violation"]["kind"], True, 1, time.monotonic() + budget_seconds, memory_limit_bytes)
        try:
            return {"explanation": explanation(recording, result, search.checker(spec, result, recording),
                                               lambda other: search.checker(spec, other, recording))}
        finally:
            search.close()
    except (ExplorerError, EngineError) as error:
        return {"error": str(error)}
