"""Replay: rebuild exactly the crash state a trace names, recover it, and check it again.

Invariants: the recording is rebuilt from the trace's spec alone; the crash point
must sit at the same event position as when the trace was written, and every
write the choice names must be pending there, or the trace is refused as not
matching (the engine or crashsweep changed since).
"""

from __future__ import annotations

from crashsweep.crash_explorer._image import choice_problem
from crashsweep.crash_explorer._io_view import unit_names
from crashsweep.crash_explorer._medium import durable_of
from crashsweep.crash_explorer._recording import Recording, record
from crashsweep.crash_explorer._recover import recover_state
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._sandbox import run_contained
from crashsweep.crash_explorer.errors import ExplorerError, TraceError
from crashsweep.engines import EngineError


def replay_state(recording: Recording, point_index: int, choice: dict, windows: list, chain: list | None) -> dict:
    """Recover and check one state of a recording. Raises TraceError when the state does not exist.
    `chain`: the further crashes to take; None explores them as the sweep did (a state whose worker died
    does not say in which further crash it died)."""
    walk = recording.walk
    problem = choice_problem(walk, point_index, choice, recording.spec.sector_count)
    if problem is not None:
        raise TraceError(problem)
    for synced, started in windows:
        if started > recording.history.mutation_count:
            raise TraceError(f"crash window [{synced}, {started}] is beyond the history's "
                             f"{recording.history.mutation_count} mutations")
    point = walk.points[point_index]
    durable = durable_of(recording.context, walk, recording.log, hashed=False)
    durable.advance(point.durable_count)
    overlay = durable.overlay(choice)
    depth = max(recording.spec.crash_depth, len(chain or ()))
    try:
        result = recover_state(recording.context, durable.view(overlay), choice, [tuple(w) for w in windows],
                               recording.history, point_index, depth, None, None if chain is None else list(chain))
    except IndexError as error:
        raise TraceError(str(error)) from None
    result["op"] = point.op_index
    result["windows"] = [list(w) for w in windows]
    return result


def replay_trace(spec: SweepSpec, trace: dict) -> tuple[dict, Recording]:
    """(the replayed result, the recording). A trace without a crash replays the un-crashed run."""
    recording = record(spec)
    crash = trace.get("crash")
    if crash is None:
        failure = recording.failure or {"kind": None, "outcome": "ok", "detail": "the workload ran without error"}
        return dict(failure), recording
    if crash["point"] < len(recording.walk.points):
        position = recording.walk.points[crash["point"]].position
        if crash.get("position") is not None and position != crash["position"]:
            raise TraceError(f"crash point {crash['point']} is at event {position} now but at event "
                             f"{crash['position']} in the trace: the engine's I/O changed since it was written")
        _check_pending(recording, crash["point"], trace.get("fates"))
    result = replay_state(recording, crash["point"], trace["choice"], crash["windows"], trace.get("nested", []))
    return result, recording


def _check_pending(recording: Recording, point_index: int, fates) -> None:
    """The crash point's pending units must be the calls the trace names (same ids could be other calls: a fix
    that adds a call before a rename shifts what id 3 is). Raises TraceError when they differ."""
    if not isinstance(fates, list) or not fates:
        return
    names = unit_names(recording.log)
    pending = recording.walk.points[point_index].pending
    recorded = [entry.get("call") for entry in fates if isinstance(entry, dict)]
    now = [names.get(unit) for unit in pending[:len(recorded)]]
    if recorded != now or len(pending) < len(recorded):
        raise TraceError(f"the writes pending at crash point {point_index} are not the ones the trace names: the "
                         "engine's I/O changed since it was written")


CONTAINED_SLACK_S = 30.0


def contained_timeout_s(spec: SweepSpec, extra_s: float = 0.0) -> float:
    """How long a contained replay or minimization may take before its process is killed."""
    return (spec.state_timeout_s * (max(1, len(spec.ops) // 100) + spec.crash_depth + 2) + CONTAINED_SLACK_S
            + extra_s)


def replay_contained(spec: SweepSpec, trace: dict, memory_limit_bytes: int | None = None) -> dict:
    """`replay_trace` in a contained process: the replayed result as data. An engine that kills, hangs or
    exhausts that process gives the result it would give in a sweep (`recovery-error`, `hang`,
    `resource-exhausted`). Raises TraceError when the trace does not name a state of the recording."""
    outcome = run_contained(_replay_as_data, spec.to_json(), trace, timeout_s=contained_timeout_s(spec),
                            memory_limit_bytes=memory_limit_bytes)
    if outcome.ok and isinstance(outcome.value, dict):
        if "trace_error" in outcome.value:
            raise TraceError(str(outcome.value["trace_error"]))
        result = outcome.value.get("result")
        if isinstance(result, dict):
            if outcome.output:
                result["output"] = outcome.output
            return result
    kind = {"hang": "hang", "resource-exhausted": "resource-exhausted"}.get(
        outcome.status, "recovery-error" if trace.get("crash") is not None else "engine-error")
    return {"kind": kind, "outcome": kind, "detail": f"the replay's engine process {outcome.detail or 'failed'}",
            "output": outcome.output}


def _replay_as_data(spec_json: dict, trace: dict) -> dict:
    try:
        result, _ = replay_trace(SweepSpec.from_json(spec_json).validate(), trace)
    except ExplorerError as error:
        return {"trace_error": str(error)}
    except EngineError as error:
        return {"trace_error": str(error)}
    return {"result": result}
