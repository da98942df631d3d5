"""Run a work unit: rebuild (or reuse) the recording, then recover and check each state.

A unit is plain data (`{"unit": n, "spec": {...}, "states": [[id, point, choice,
windows, image, points], ...]}`, `"memo": false` to recover every state live, `"lean": true`
to leave each result's choice and windows out: its sender has them), so
any process, local or remote, can run it and get the same results. `"spec": null` is
allowed where this process already holds the spec's recording (the local executor sends
each worker a spec once; its workers serve one sweep, well under RECORDINGS_CACHED_MAX).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from crashsweep.crash_explorer._medium import ahead, durable_of, forget_ahead, hold, prepares_ahead
from crashsweep.crash_explorer._recording import Recording, record, state_context
from crashsweep.crash_explorer._recover import recover_state
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._time_limit import alarm_held
from crashsweep.disk_model._sites import directory_read_once

RECORDINGS_CACHED_MAX = 4
_recordings: dict[str, Recording] = {}
_durables: dict[int, tuple] = {}      # id(recording) -> (recording, its durable image advanced by earlier units)


def remember(recording: Recording) -> None:
    """Keep a recording so units of its spec in this process need not record again."""
    if len(_recordings) >= RECORDINGS_CACHED_MAX:
        _durables.pop(id(_recordings.pop(next(iter(_recordings)))), None)
    _recordings[recording.spec.spec_id] = recording


def recording_for(spec_json: dict | None, spec_id: str | None = None) -> Recording:
    """The recording of a spec: cached by its id (given by the unit, so a cache hit costs no parsing).
    `spec_json` may be None when this process was sent the spec before (and so keeps its recording)."""
    recording = _recordings.get(spec_id) if spec_id is not None else None
    if recording is None:
        assert spec_json is not None, f"a unit without its spec, of spec {spec_id} this process does not hold"
        spec = SweepSpec.from_json(spec_json)
        recording = _recordings.get(spec.spec_id)
        if recording is None:
            recording = record(spec)
            remember(recording)
    if not recording.live:      # made by crashsweep's own process (its context only knows the engine's profile)
        recording = replace(recording, context=state_context(recording.spec), live=True)
        remember(recording)
    return recording


def run_unit(unit: dict, after_state: Callable[[dict], None] | None = None) -> Iterator[dict]:
    """Yield one result per state, in the unit's order.

    `after_state(result)`, if given, is called right after each state, before its result is yielded; the
    caller then does no file I/O of its own while it runs and promises so for itself (a worker's output capture
    and reaping: crashsweep's modules keep the real `os`, and it calls no `open`): the medium's scope is then
    held over runs of states (`HELD_STATES_MAX`, `HELD_SECONDS_MAX`), whose results are yielded once it is let
    go. Without it, each state holds its own."""
    if after_state is None:
        yield from _states(unit)
        return
    recording = recording_for(unit["spec"], unit.get("spec_id"))
    results = _states(unit)
    finished = False
    while not finished:
        held, began = [], time.monotonic()
        with hold(recording.context):
            while len(held) < HELD_STATES_MAX and time.monotonic() - began < HELD_SECONDS_MAX:
                result = next(results, None)
                if result is None:
                    finished = True
                    break
                after_state(result)
                held.append(result)
        yield from held


HELD_STATES_MAX = 32          # as a worker batches its results (`_executor.BATCH_STATES_MAX`, its seconds)
HELD_SECONDS_MAX = 0.05


def _states(unit: dict) -> Iterator[dict]:
    recording = recording_for(unit["spec"], unit.get("spec_id"))
    walk, spec, context = recording.walk, recording.spec, recording.context
    context.memo = unit.get("memo", True)
    lean = unit.get("lean", False)
    states = unit["states"]
    durable = _durable_for(recording, states)
    look_ahead = prepares_ahead(context)        # the medium prepares state k+1 while state k's engine works

    def image_of(state) -> object:
        durable.advance(walk.points[state[1]].durable_count)
        return durable.state_of(state[2])

    upcoming = Upcoming(image_of, states[0]) if look_ahead and states else None
    held = alarm_held().__enter__()     # the states' time limits share one timer (`_time_limit`)
    # The objects alive before the unit (the recording, its plan, the durable image) are left out of the cyclic
    # collector's passes while it runs (its collections cost a JSON-store state 0.74 µs on average with them,
    # 0.29 without; more where plans are larger). Objects made in the unit (an engine's) are collected as ever;
    # those before join the oldest generation again when it ends (`gc.unfreeze`): nothing is kept for good.
    gc.freeze()
    directory = directory_read_once()
    directory.__enter__()
    try:
        for position, (state_id, point_index, choice, windows, image, points) in enumerate(states):
            started = time.perf_counter()
            point = walk.points[point_index]
            if look_ahead:                  # a snapshot stays valid after `advance` (FsDurableImage.view)
                state_image = upcoming.get()
                upcoming = Upcoming(image_of, states[position + 1]) if position + 1 < len(states) else None
                if upcoming is not None:
                    ahead(context, upcoming)
            else:
                state_image = image_of(states[position])
            timing: dict = {}
            result = recover_state(context, state_image, choice, [tuple(w) for w in windows],
                                   recording.history, point_index, spec.crash_depth, timing)
            result["state"] = state_id
            result["image"] = image
            result["op"] = point.op_index
            if lean:           # the sweep knows the state's choice and windows: do not send them back
                result.pop("choice", None)
            else:
                result["windows"] = [list(w) for w in windows]
            if points > 1:
                result["points"] = points
            result["engine_s"] = round(timing.get("engine_s", 0.0), 6)
            result["total_s"] = round(time.perf_counter() - started, 6)
            yield result
    finally:
        gc.unfreeze()
        directory.__exit__()
        held.__exit__()
        if look_ahead:
            forget_ahead(context)


class Upcoming:
    """The next state's image, built when first asked for: by the medium while an engine works (`ahead`), or
    by the unit when the state comes. States' images are built in the unit's order either way (`advance`
    only moves forward): the next one is only made once this one was asked for."""

    def __init__(self, build, state):
        self._build, self._state, self._image = build, state, None

    def built(self):
        """The image if it was built, else None (never builds it)."""
        return self._image

    def get(self):
        if self._image is None:
            self._image = self._build(self._state)
            self._build = self._state = None
        return self._image


def _durable_for(recording: Recording, states: list):
    """The recording's durable image, reused from the last unit when this one starts no earlier (units
    come in ascending point order, so a worker rarely rebuilds it from the start)."""
    first = min((recording.walk.points[state[1]].durable_count for state in states), default=0)
    kept = _durables.get(id(recording))
    if kept is not None and kept[0] is recording and kept[1].applied <= first:
        return kept[1]
    durable = durable_of(recording.context, recording.walk, recording.log, hashed=False)
    if any(cached is recording for cached in _recordings.values()):
        _durables[id(recording)] = (recording, durable)
    return durable
