"""Plan a sweep: enumerate every crash point's states, merge states with the same image,
order them for fair coverage under a budget, and cut them into work units.

A state whose image equals another's is recovered once, and checked against the
crash windows of every point that can leave the disk in that image (the engine
sees the same bytes, so it must satisfy all of them).

Invariants:
- the plan depends only on the spec (and the state budget), never on jobs or shards;
- state ids are positions in round-robin order over points, so a budget keeps a
  prefix of them and every point gets its first states before any gets its tenth;
- a work unit is plain JSON data: the spec and a list of states.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from crashsweep.crash_explorer._image import is_zero
from crashsweep.crash_explorer._medium import durable_of
from crashsweep.crash_explorer._recording import Recording
from crashsweep.crash_explorer._strategies import choice_key, corruption_variants, point_states

UNIT_STATES_MAX = 64


@dataclass
class PlannedState:
    state_id: int
    point: int
    choice: dict
    windows: list[tuple[int, int]]
    image: int
    points: int = 1   # how many crash points lead to this image


@dataclass
class Plan:
    states: list[PlannedState]
    crash_points: int
    states_enumerated: int          # before merging equal images
    distinct_total: int             # after merging, before any budget
    space_total: int                # the true size of the state space of all points
    exhausted: bool                 # every point's space enumerated, and no budget cut
    per_point: list[dict] = field(default_factory=list)


def approximate(number: int) -> str:
    if number < 100_000:
        return f"{number:,}"
    return f"~2^{number.bit_length() - 1}"


def plan_states(recording: Recording, budget_states: int | None = None, first_states: int | None = None) -> Plan:
    """The distinct states to explore. `budget_states`: keep that many, spread over all points (round
    robin); `first_states`: stop enumerating once the earliest points gave that many (for minimization,
    which wants the earliest crash points and must not pay for planning the rest). With `first_states`
    a state's windows come only from the points planned: a later point with the same image could only
    widen them towards operations after the crash, whose data the image cannot hold."""
    spec, walk = recording.spec, recording.walk
    durable = durable_of(recording.context, walk, recording.log)
    by_image: dict[int, PlannedState] = {}
    image_of_landings: dict[str, int] = {}     # at the current durable count (points never go back)
    landings_durable_count = -1
    per_point_states: list[list[PlannedState]] = []
    per_point, enumerated, space_total, exhausted = [], 0, 0, True
    found = 0
    for point in walk.points:
        if first_states is not None and found >= first_states:
            exhausted = False
            break
        durable.advance(point.durable_count)
        if point.durable_count != landings_durable_count:
            image_of_landings, landings_durable_count = {}, point.durable_count
        rng = random.Random(f"{spec.seed}:states:{point.index}")
        counts = [walk.writes[rid][1] for rid in point.pending]
        choices, space, point_exhausted = point_states(point, counts, spec.faults, spec.strategy, spec.bound,
                                                       spec.samples, spec.states_per_point_max, rng)
        choices = [durable.normalize(point, choice) for choice in choices]
        durable_sectors = sorted(s for s, data in durable.data.items() if not is_zero(data))
        choices += corruption_variants(
            point, choices, spec.faults, durable_sectors, spec.sector_size, spec.sector_count, walk.writes, rng,
            lambda sector, rid, offset: durable.get(sector) if rid is None else durable.sector_data(rid, offset))
        space_total += space
        exhausted = exhausted and point_exhausted and not spec.faults.corruption_kinds
        fresh = []
        for choice in choices:
            # The same landings over the same durable image are the same state: hash it once.
            landings = choice_key(choice)
            image = image_of_landings.get(landings)
            if image is None:
                image = image_of_landings[landings] = durable.state_hash(durable.overlay(choice), choice)
            existing = by_image.get(image)
            if existing is None:
                planned = by_image[image] = PlannedState(-1, point.index, choice, list(point.windows), image)
                fresh.append(planned)
            else:
                existing.points += existing.point != point.index
                existing.windows.extend(w for w in point.windows if w not in existing.windows)
        enumerated += len(choices)
        found += len(fresh)
        per_point_states.append(fresh)
        per_point.append({"point": point.index, "op": point.op_index, "position": point.position,
                          "pending": len(point.pending), "space": space, "enumerated": len(choices),
                          "distinct": len(fresh), "exhausted": point_exhausted})
    ordered = _round_robin(per_point_states)
    for state_id, planned in enumerate(ordered):
        planned.state_id = state_id
    distinct_total = len(ordered)
    if budget_states is not None and budget_states < distinct_total:
        ordered = ordered[:budget_states]
        exhausted = False
    return Plan(ordered, len(walk.points), enumerated, distinct_total, space_total, exhausted, per_point)


def _round_robin(groups: list[list[PlannedState]]) -> list[PlannedState]:
    ordered, depth = [], 0
    remaining = sum(len(group) for group in groups)
    while remaining:
        for group in groups:
            if depth < len(group):
                ordered.append(group[depth])
                remaining -= 1
        depth += 1
    return ordered


def make_units(spec_json: dict, states: list[PlannedState], shard: tuple[int, int] = (0, 1),
               done: set[int] | None = None, spec_id: str | None = None) -> list[dict]:
    """Cut states into units of at most UNIT_STATES_MAX, ascending by point; keep this shard's units."""
    index, count = shard
    assert 0 <= index < count, shard
    by_point = sorted(states, key=lambda planned: (planned.point, planned.state_id))
    units = []
    for number, start in enumerate(range(0, len(by_point), UNIT_STATES_MAX)):
        if number % count != index:
            continue
        chunk = [planned for planned in by_point[start:start + UNIT_STATES_MAX]
                 if done is None or planned.state_id not in done]
        if chunk:
            units.append({"unit": number, "spec": spec_json, "spec_id": spec_id,
                          "states": [[p.state_id, p.point, p.choice, p.windows, format(p.image, "032x"), p.points]
                                     for p in chunk]})
    return units
