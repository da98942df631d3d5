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

import multiprocessing
import os
import random
import signal
import time
from collections import deque
from dataclasses import dataclass, field

from crashsweep.crash_explorer._collector import collector_paused
from crashsweep.crash_explorer._image import is_zero
from crashsweep.crash_explorer._medium import durable_of
from crashsweep.crash_explorer._recording import Recording
from crashsweep.crash_explorer._strategies import (LANDED, choice_key, corruption_variants, point_states,
                                                   sparse_choice, sparse_packed, sparse_point_states)

UNIT_STATES_MAX = 64
PARALLEL_POINTS_MIN = 400      # fewer crash points than this are planned in this process,
PARALLEL_WEIGHT_MIN = 2_000_000   # unless their `point_weights` say planning them takes seconds
SLICES_PER_JOB = 4             # slices of points per planning process (an even spread of uneven points)
SAMPLED_STATES_MIN = 16        # states a point keeps however short the planning time
LANDINGS_CACHED_MAX = 16384    # landings -> image remembered while the durable image stays (memory stays bounded)
NAMED_CACHED_MAX = 65536       # sparse combinations named along a chain of points -> image (`_enumerate`)
SPARSE_POINTS = True           # bounded points drawn as (base, deviations) (`_enumerate`); the same plan
SETTLE_EPOCHS = 2              # a state is checked while planning goes on once its point is more syncs behind than this


class PlannedState:
    """One distinct state to recover. Its choice is kept packed against its point's pending writes (a bit
    mask of the landed ones and the torn ones' units: ~100 bytes where the choice's lists of request ids
    take kilobytes), so that a plan of a million states fits in memory; `choice` unpacks it."""

    __slots__ = ("state_id", "point", "pending", "packed", "windows", "image", "points")

    def __init__(self, state_id: int, point: int, choice: dict, windows, image: int, points: int = 1,
                 pending: tuple = ()):
        self.state_id, self.point, self.image, self.points = state_id, point, image, points
        self.windows = windows          # shared with the point's until a later point widens them
        self.pending = pending
        # (a choice planning made packed already: `sparse_packed`)
        self.packed = choice if type(choice) is tuple else pack_choice(pending, choice)

    @property
    def choice(self) -> dict:
        return unpack_choice(self.pending, self.packed)

    def as_data(self) -> tuple:
        """(state id, point, choice, windows, image, points): what a unit carries of it (two plans compare so)."""
        return self.state_id, self.point, self.choice, [list(window) for window in self.windows], self.image, self.points

    def unit_row(self, state_id: int | None = None) -> list:
        """The state as a unit carries it: [id (this one's, or `state_id`), point, choice, windows, image, points]."""
        return [self.state_id if state_id is None else state_id, self.point, self.choice,
                [list(window) for window in self.windows], format(self.image, "032x"), self.points]

    def widen(self, windows) -> None:
        added = [window for window in windows if window not in self.windows]
        if added:
            self.windows = [*self.windows, *added]


def pack_choice(pending: tuple, choice: dict):
    """(mask of landed pending writes, ((index, units), ...) of torn ones), or the choice itself when it is
    not of that shape (faults, writes not pending, lists out of pending order). Invariant:
    `unpack_choice(pending, pack_choice(pending, c)) == c`, list and tuple types included (checked here
    as the choice is packed, without unpacking it)."""
    if not pending or not set(choice) <= {"persist", "torn"}:
        return choice
    position = {rid: index for index, rid in enumerate(pending)}
    mask, torn = 0, ()
    persist = choice.get("persist")
    if persist is not None:
        if type(persist) is not list or not persist:
            return choice
        last = -1
        for rid in persist:
            index = position.get(rid, -1) if isinstance(rid, int) and type(rid) is not bool else -1
            if index <= last:               # not pending, repeated or out of order: unpacking would differ
                return choice
            mask |= 1 << index
            last = index
    tears = choice.get("torn")
    if tears is not None:
        if type(tears) is not list or not tears:
            return choice
        packed_tears = []
        for entry in tears:
            if type(entry) is not list or len(entry) != 2 or type(entry[1]) is not list:
                return choice
            rid, units = entry
            index = position.get(rid, -1) if isinstance(rid, int) and type(rid) is not bool else -1
            if index < 0:
                return choice
            packed_tears.append((index, tuple(units)))
        torn = tuple(packed_tears)
    return mask, torn


def unpack_choice(pending: tuple, packed) -> dict:
    if isinstance(packed, dict):
        return packed
    mask, torn = packed
    choice: dict = {}
    if mask:
        bits = bin(mask)[:1:-1]            # bit i of the mask at position i
        choice["persist"] = [rid for rid, bit in zip(pending, bits) if bit == "1"]
    if torn:
        choice["torn"] = [[pending[index], list(units)] for index, units in torn]
    return choice


@dataclass
class Plan:
    states: list[PlannedState]
    crash_points: int
    states_enumerated: int          # before merging equal images
    distinct_total: int             # after merging, before any budget
    space_total: int                # the true size of the state space of all points
    exhausted: bool                 # every point's space enumerated, and no budget cut
    per_point: list[dict] = field(default_factory=list)
    sampled_points: int = 0         # points whose states were sampled to keep planning within a deadline


def approximate(number: int) -> str:
    if number < 100_000:
        return f"{number:,}"
    return f"~2^{number.bit_length() - 1}"


def plan_states(recording: Recording, budget_states: int | None = None, first_states: int | None = None,
                jobs: int = 1, point_range: tuple[int, int] | None = None, deadline: float | None = None,
                on_point=lambda done, total: None, slices=None) -> Plan:
    """The distinct states to explore. `budget_states`: keep that many, spread over all points (round
    robin); `first_states`: stop enumerating once the earliest points gave that many (for minimization,
    which wants the earliest crash points and must not pay for planning the rest). With `first_states`
    a state's windows come only from the points planned: a later point with the same image could only
    widen them towards operations after the crash, whose data the image cannot hold.
    `jobs` > 1 enumerates and hashes slices of the points in that many processes; the plan is the same.
    `point_range`: plan only the points [start, stop) (one operation's crash window, for a re-check).
    `slices(recording, bounds, deadline)`: enumerate slices of points elsewhere (a Dask cluster,
    `DaskExecutor.plan_slices`), giving each slice's `enumerate_slice` result in order (an iterable, or an
    object whose `next(wait_s)` gives the next one or raises TimeoutError, and StopIteration at the end, and
    whose `close()` stops the rest); the plan is the same.
    `deadline` (time.monotonic()): sample each point's states down to what the time left affords, so that
    planning ends by then and every point keeps at least `SAMPLED_STATES_MIN` states (the plan then depends on
    the machine's speed, and says so: `Plan.sampled_points`). `on_point(done, total)` reports progress."""
    planner = Planner(recording, budget_states, first_states, jobs, point_range, deadline, on_point, slices)
    try:
        while not planner.done:
            planner.step()
        return planner.finish()
    finally:
        planner.close()


class Planner:
    """`plan_states` a step at a time, so that checking can start while planning goes on (`_sweep.execute`):
    each `step` folds the points planned since (blocking at most `wait_s` for a planning process) and returns
    the states it *settled*: planned, and by now unlikely to gain windows (their point is `SETTLE_EPOCHS`
    syncs behind the points folded; every state is settled once the last point is). A state checked early
    whose windows still widen must be checked again (`_sweep._StreamFeed` does). `finish` gives the plan
    `plan_states` gives. Requires: `close` is called (it ends the planning processes and the collector's
    pause), `finish` only once `done`."""

    def __init__(self, recording: Recording, budget_states: int | None = None, first_states: int | None = None,
                 jobs: int = 1, point_range: tuple[int, int] | None = None, deadline: float | None = None,
                 on_point=lambda done, total: None, slices=None, slices_per_job: int = SLICES_PER_JOB,
                 niceness: int = 0):
        points = recording.walk.points
        self.recording, self.budget_states, self.first_states = recording, budget_states, first_states
        self.start, self.stop = point_range or (0, len(points))
        self.on_point = on_point
        self.merger = _Merger()
        self.done = False
        self._unsettled: deque[PlannedState] = deque()   # planned, in point order, not yet handed out by `step`
        self._epoch_of_count: dict[int, int] = {}    # a durable count -> its epoch (syncs so far), in point order
        self._epoch_of_state: dict[int, int] = {}    # id(state) -> its point's epoch
        self._pool = None
        self._slices = None     # planned elsewhere: `.next(wait_s)` gives a slice's points in order (or times out)
        self._paused = collector_paused(len(points) * 100)   # ~100 choices a point (none kept for long when few)
        self._paused.__enter__()
        weights = point_weights(recording)
        sliced = first_states is None and point_range is None and (
            len(points) >= PARALLEL_POINTS_MIN or sum(weights) >= PARALLEL_WEIGHT_MIN)
        self._chunks = None
        if sliced and slices is not None:
            made = slices(recording, slice_bounds(len(points), jobs, weights, slices_per_job), deadline)
            self._slices = made if hasattr(made, "next") else _Blocking(made)
        elif sliced and jobs > 1 and os.name == "posix":
            _forked[:] = [recording, deadline]
            self._pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_planning_process,
                                                                  initargs=(niceness,))
            self._slices = self._pool.imap(_enumerate_slice,
                                           slice_bounds(len(points), jobs, weights, slices_per_job))
        else:
            self._chunks = _enumerate(recording, self.start, self.stop, first_states, deadline)

    def step(self, wait_s: float | None = None) -> list[PlannedState]:
        """Fold what is planned (at least one point, unless `wait_s` passed first) and return the states
        settled since the last step, in point order."""
        chunks = self._next_chunks(wait_s)
        if chunks is None:
            self.done = True
        else:
            for chunk in chunks:
                self._fold(chunk)
        return self._settled()

    def _next_chunks(self, wait_s: float | None):
        """A list of enumerated points ([] if none came within `wait_s`), None when planning is over."""
        if self._slices is not None:
            try:
                slice_result = self._slices.next(wait_s)
            except (multiprocessing.TimeoutError, TimeoutError):
                return []
            except StopIteration:
                return None
            points = self.recording.walk.points
            return [(points[index], stats, images, exhausted) for index, stats, images, exhausted in slice_result]
        chunk = next(self._chunks, None)
        return None if chunk is None else [chunk]

    def _fold(self, chunk) -> None:
        point = chunk[0]
        epoch = self._epoch_of_count.get(point.durable_count)
        if epoch is None:
            epoch = self._epoch_of_count[point.durable_count] = len(self._epoch_of_count)
        self.merger.add(chunk)
        for state in self.merger.per_point_states[-1]:
            self._epoch_of_state[id(state)] = epoch
            self._unsettled.append(state)
        self.on_point(len(self.merger.per_point), self.stop - self.start)

    def _settled(self) -> list[PlannedState]:
        unsettled = self._unsettled
        if self.done:
            settled = list(unsettled)
            unsettled.clear()
            return settled
        current, settled = len(self._epoch_of_count) - 1, []
        while unsettled and current - self._epoch_of_state[id(unsettled[0])] > SETTLE_EPOCHS:
            settled.append(unsettled.popleft())
            del self._epoch_of_state[id(settled[-1])]
        return settled

    def finish(self) -> Plan:
        """The plan (state ids assigned): the same as `plan_states` gives."""
        assert self.done, "finish once every point is folded"
        self._end_pool()      # the collector stays paused until `close`: checking goes on with the plan alive
        merger = self.merger
        ordered = _round_robin(merger.per_point_states)
        for state_id, planned in enumerate(ordered):
            planned.state_id = state_id
        distinct_total = len(ordered)
        exhausted = merger.exhausted and (self.first_states is None or len(merger.per_point) == self.stop - self.start)
        if self.budget_states is not None and self.budget_states < distinct_total:
            ordered = ordered[:self.budget_states]
            exhausted = False
        sampled = sum(1 for entry in merger.per_point if entry.get("sampled"))
        return Plan(ordered, len(self.recording.walk.points), merger.enumerated, distinct_total, merger.space_total,
                    exhausted and not sampled, merger.per_point, sampled)

    def _end_pool(self) -> None:
        slices, self._slices = self._slices, None
        if slices is not None and hasattr(slices, "close"):
            slices.close()        # a cluster's planning tasks not collected are cancelled
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            _forked.clear()

    def close(self) -> None:
        """End the planning processes (if any) and the collector's pause. Safe to call twice."""
        self._end_pool()
        if self._paused is not None:
            paused, self._paused = self._paused, None
            paused.__exit__(None, None, None)


def _affordable(deadline: float | None, points_left: int, seconds_per_choice: float) -> int | None:
    """How many choices this point may hash so that the points left end by `deadline` (None: no limit)."""
    if deadline is None:
        return None
    left_s = deadline - time.monotonic()
    return max(SAMPLED_STATES_MIN, int(left_s / max(1, points_left) / max(seconds_per_choice, 1e-6)))


def _enumerate(recording: Recording, start: int, stop: int, first_states: int | None = None,
               deadline: float | None = None):
    """Per point in [start, stop): `(stats, [(image, first choice, occurrences), ...] in first-seen order,
    exhausted)`, images new to this run of points with their choice, others with `None` (fewer bytes
    between processes). Stops early once `first_states` distinct images were found."""
    spec, walk = recording.spec, recording.walk
    durable = durable_of(recording.context, walk, recording.log)
    image_of_landings: dict = {}     # landings -> image, at the current durable count (points never go back)
    landings_durable_count = -1
    # Sparse combinations named free of their point (`_chain_name`) -> image, along a chain of points: one durable
    # count, each point's pending writes a prefix of the next one's (most states of a point are an earlier one's).
    image_of_named: dict = {}
    chain, chain_durable_count = (), -1
    seen: set[int] = set()
    planned, planning_s, last_choice_s = 0, 0.0, 0.0

    def landed_image(point, choice: dict) -> int:
        """The same landings over the same durable image are the same state: hash it once."""
        landings = _landings(choice)
        image = image_of_landings.get(landings)
        if image is None:
            if len(image_of_landings) >= LANDINGS_CACHED_MAX:    # keys are as long as the pending list
                image_of_landings.clear()
            image = image_of_landings[landings] = durable.point_hash(point, choice)
        return image
    # Bounded points of more than 2 x bound writes are drawn sparse where nothing rewrites a choice (no
    # persistence model's normalization, no corruption variants drawn from the choices) and the image can be
    # hashed from one: a choice costs O(bound), not O(pending writes).
    sparse_points = (SPARSE_POINTS and spec.strategy == "bounded" and not spec.faults.corruption_kinds
                     and hasattr(durable, "near_hash") and not durable.normalizes)
    for point in walk.points[start:stop]:
        if first_states is not None and len(seen) >= first_states:
            return
        started = time.perf_counter()
        durable.advance(point.durable_count)
        if point.durable_count != landings_durable_count:
            image_of_landings, landings_durable_count = {}, point.durable_count
        rng = random.Random(f"{spec.seed}:states:{point.index}")
        counts = [walk.writes[rid][1] for rid in point.pending]
        # What a choice costs grows with the pending writes: estimate from the dearer of the average and the last.
        affordable = _affordable(deadline, stop - point.index,
                                 max(planning_s / planned if planned else 2e-3, last_choice_s))
        states_max = spec.states_per_point_max if affordable is None else min(spec.states_per_point_max, affordable)
        drawn = None
        if sparse_points:
            drawn = sparse_point_states(point, counts, spec.faults, spec.bound, states_max, rng)
        if drawn is not None:      # sampled: (base, deviations) combinations, a choice made only for a new image
            choices, space, point_exhausted = drawn
        else:
            choices, space, point_exhausted = point_states(point, counts, spec.faults, spec.strategy, spec.bound,
                                                           spec.samples, states_max, rng)
        sampled = states_max < spec.states_per_point_max and len(choices) >= states_max
        if sampled:
            point_exhausted = False
        if drawn is None:
            choices = [durable.normalize(point, choice) for choice in choices]
            durable_sectors = sorted(s for s, data in durable.data.items() if not is_zero(data))
            choices += corruption_variants(
                point, choices, spec.faults, durable_sectors, spec.sector_size, spec.sector_count, walk.writes,
                rng, lambda sector, rid, offset: durable.get(sector) if rid is None else durable.sector_data(rid, offset))
        here: dict[int, list] = {}
        pending = point.pending
        count = len(pending)
        if drawn is not None:
            unseen = durable.unseen_tail(point)
            if point.durable_count != chain_durable_count:
                image_of_named, chain, chain_durable_count = {}, pending, point.durable_count
            elif pending[:len(chain)] == chain:
                chain = pending                             # the chain goes on
            elif chain[:count] != pending:                  # (a prefix of it keeps it)
                image_of_named, chain = {}, pending
        for choice in choices:
            image = None
            if drawn is not None:
                base, deviations = choice
                choice = None
                name = _chain_name(base, deviations, count, unseen)
                image = image_of_named.get(name)
                if image is None:
                    if base == LANDED:
                        image = durable.near_hash(point, {pending[index]: None if fate is None else list(fate)
                                                          for index, fate in deviations})
                    if image is None:
                        choice = sparse_choice(pending, base, deviations)
                        image = landed_image(point, choice)
                    if len(image_of_named) >= NAMED_CACHED_MAX:
                        image_of_named.clear()
                    image_of_named[name] = image
            if image is None:
                image = landed_image(point, choice)
            entry = here.get(image)
            if entry is None:
                if image in seen:
                    choice = None
                elif choice is None:
                    choice = sparse_packed(count, base, deviations)      # (packed: `PlannedState` keeps it so)
                elif drawn is not None:
                    choice = pack_choice(pending, choice)
                here[image] = [image, choice, 1]
                seen.add(image)
            else:
                entry[2] += 1
        point_s = time.perf_counter() - started
        planned, planning_s = planned + len(choices), planning_s + point_s
        last_choice_s = point_s / max(1, len(choices))
        stats = {"point": point.index, "op": point.op_index, "position": point.position,
                 "pending": len(point.pending), "space": space, "enumerated": len(choices), "distinct": 0,
                 "exhausted": point_exhausted}
        if sampled:
            stats["sampled"] = True
        yield point, stats, list(here.values()), point_exhausted and not spec.faults.corruption_kinds


def _chain_name(base, deviations: tuple, count: int, unseen: int = 0) -> tuple:
    """A sparse combination of a point with `count` pending writes, named so that the same state at another point
    of its chain (the same writes by index, more or fewer after them) has the same name: all lost but
    `deviations` needs no count; all landed but `deviations` loses its lost last writes (a state of the point
    that ends before them). The point's last `unseen` writes change no state (`FsDurableImage.unseen_tail`):
    named as lost, whatever their fate."""
    if unseen:
        count -= unseen
        deviations = tuple(deviation for deviation in deviations if deviation[0] < count)
    if base != LANDED:
        return (None, deviations)
    while deviations and deviations[-1] == (count - 1, None):
        deviations = deviations[:-1]
        count -= 1
    return (count, deviations)


def _landings(choice: dict):
    """A choice as a dict key (what `choice_key` says, without JSON: planning makes a key per choice)."""
    if len(choice) == 1 and "persist" in choice:
        return tuple(choice["persist"])
    return (tuple(choice.get("persist", ())), tuple((rid, tuple(units)) for rid, units in choice.get("torn", ())),
            choice_key(choice) if len(choice) > ("persist" in choice) + ("torn" in choice) else None)


class _Merger:
    """Folds enumerated points, in point order, into planned states: an image's state is its first
    (point, choice); every later occurrence adds its point's windows (DESIGN §5: one recovery, checked
    against every point that can leave the disk so)."""

    def __init__(self) -> None:
        self.by_image: dict[int, PlannedState] = {}
        self.per_point_states: list[list[PlannedState]] = []
        self.per_point: list[dict] = []
        self.enumerated = self.space_total = 0
        self.exhausted = True

    def add(self, enumerated_point) -> None:
        point, stats, images, exhausted = enumerated_point
        fresh = []
        for image, choice, occurrences in images:
            existing = self.by_image.get(image)
            if existing is None:
                assert choice is not None, "a slice sends the choice of every image new to it"
                existing = self.by_image[image] = PlannedState(-1, point.index, choice, point.windows, image,
                                                               pending=tuple(point.pending))
                fresh.append(existing)
                occurrences -= 1            # the others are at this same point: nothing to add
                if not occurrences:
                    continue
            existing.points += occurrences if existing.point != point.index else 0
            existing.widen(point.windows)
        stats["distinct"] = len(fresh)
        self.per_point_states.append(fresh)
        self.per_point.append(stats)
        self.enumerated += stats["enumerated"]
        self.space_total += stats["space"]
        self.exhausted = self.exhausted and exhausted


_forked: list = []     # the recording a forked planning process works on (set before the fork)


def _enumerate_slice(bounds: tuple[int, int]) -> list:
    recording, deadline = _forked
    return enumerate_slice(recording, bounds, deadline)


def enumerate_slice(recording: Recording, bounds: tuple[int, int], deadline: float | None) -> list:
    """The points [start, stop) enumerated as plain data: [(point index, stats, images, exhausted), ...]."""
    return [(point.index, stats, images, exhausted)
            for point, stats, images, exhausted in _enumerate(recording, *bounds, deadline=deadline)]


def point_weights(recording: Recording) -> list[int]:
    """What planning each point is expected to cost, in rough units of a microsecond: its choices (the
    strategy's, up to the per-point maximum; a point with n pending writes has ~(2n+1)^2 within a bound of 2)
    times what one costs to build and hash (growing with n)."""
    states_max = recording.spec.states_per_point_max
    return [min(states_max, (2 * len(point.pending) + 1) ** 2) * (len(point.pending) + 8)
            for point in recording.walk.points]


def slice_bounds(point_count: int, jobs: int, weights: list[int] | None = None,
                 per_job: int = SLICES_PER_JOB) -> list[tuple[int, int]]:
    """Slices of the points for `jobs` planning processes (several each: an even spread of uneven points).
    With `weights` (`point_weights`), slices of about equal weight: late points of a workload that never
    syncs cost a hundred times its first ones."""
    if weights is not None and point_count:
        target = sum(weights) / (jobs * per_job)
        bounds, start, carried = [], 0, 0
        for index, weight in enumerate(weights):
            carried += weight
            if carried >= target and index + 1 < point_count:
                bounds.append((start, index + 1))
                start, carried = index + 1, 0
        return bounds + [(start, point_count)]
    size = max(PARALLEL_POINTS_MIN // 4, point_count // (jobs * per_job) + 1)
    return [(start, min(start + size, point_count)) for start in range(0, point_count, size)]


class _Blocking:
    """Slices from an iterable (a generator of `enumerate_slice` results), as the planner takes them: `next`
    waits for the next one whatever `wait_s` says."""

    def __init__(self, slice_results) -> None:
        self._results = iter(slice_results)

    def next(self, wait_s: float | None = None):
        return next(self._results)

    def close(self) -> None:
        close = getattr(self._results, "close", None)
        if close is not None:
            close()


def _planning_process(niceness: int = 0) -> None:
    """A planning process takes SIGTERM (its pool's way to stop it) even where its parent blocks it.
    `niceness`: planning beside checking yields the processors to the workers (it fills their idle time)."""
    if niceness:
        os.nice(niceness)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
                          "states": [p.unit_row() for p in chunk]})
    return units
