"""Replay: rebuild exactly the crash state a trace names, recover it, and check it again.

Invariants: the recording is rebuilt from the trace's spec alone; the crash point
must sit at the same event position as when the trace was written, and every
write the choice names must be pending there, or the trace is refused as not
matching (the engine or crashsweep changed since).
"""

from __future__ import annotations

from crashsweep.crash_explorer._image import choice_problem
from crashsweep.crash_explorer._medium import durable_of
from crashsweep.crash_explorer._recording import Recording, record
from crashsweep.crash_explorer._recover import recover_state
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer.errors import TraceError


def replay_state(recording: Recording, point_index: int, choice: dict, windows: list, chain: list) -> dict:
    """Recover and check one state of a recording. Raises TraceError when the state does not exist."""
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
    depth = max(recording.spec.crash_depth, len(chain))
    try:
        result = recover_state(recording.context, durable.view(overlay), choice, [tuple(w) for w in windows],
                               recording.history, point_index, depth, None, list(chain))
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
    result = replay_state(recording, crash["point"], trace["choice"], crash["windows"], trace.get("nested", []))
    return result, recording
