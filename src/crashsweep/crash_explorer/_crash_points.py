"""Crash points: every place between two device events, merged when the disk state is the same.

Walking the event log, the disk state after each event is (writes durable so
far, in the order they became durable; writes pending). In the no-cache mode a
completed write is durable; with a volatile cache a completed write stays
pending until a flush submitted after its completion completes, or at once if it
was written with FUA. Points with the same (durable count, pending set) are one
point; it keeps every crash window seen at its positions, and a state must
satisfy all of them (the disk cannot tell them apart, so the engine must not).

Invariants: durability is monotone; point indices are 0, 1, … in log order.
"""

from __future__ import annotations

from dataclasses import dataclass

from crashsweep.disk_model import COMPLETE, FLUSH, OP_BEGIN, OP_END, OP_SETUP, SUBMIT, WRITE, EventLog
from crashsweep.reference import History


@dataclass(frozen=True)
class CrashPoint:
    index: int
    position: int                         # events before the crash (the first such position)
    durable_count: int                    # how many entries of `durable_sequence` are durable
    pending: tuple[int, ...]              # request ids of pending writes, ascending
    windows: tuple[tuple[int, int], ...]  # (synced, started) mutation counts, distinct
    op_index: int                         # the client operation in progress (OP_SETUP while opening)


@dataclass
class PointWalk:
    points: list[CrashPoint]
    durable_sequence: list[int]
    writes: dict[int, tuple[int, int]]    # request id -> (sector, sector_count)


class PointCollector:
    """What a walk over any event log shares: the crash window as operation boundaries pass, and points
    merged by (durable count, pending ids), each keeping its first position and every window seen."""

    def __init__(self, history: History, ops_offset: int, op_index: int):
        self.history, self.ops_offset, self.op_index = history, ops_offset, op_index
        self.synced = self.started = 0
        self.by_key: dict[tuple, dict] = {}
        self.order: list[tuple] = []

    def op_begin(self, op_index: int) -> None:
        self.op_index = op_index
        local = op_index - self.ops_offset
        self.started = self.history.mutations_before[local] + (1 if self.history.ops[local].mutating else 0)

    def op_end(self, op_index: int) -> None:
        local = op_index - self.ops_offset
        if self.history.ops[local].kind == "sync":
            self.synced = self.history.mutations_before[local]

    def note(self, position: int, durable_count: int, pending: tuple[int, ...]) -> None:
        key = (durable_count, pending)
        entry = self.by_key.get(key)
        if entry is None:
            entry = self.by_key[key] = {"position": position, "windows": [], "op": self.op_index}
            self.order.append(key)
        window = (self.synced, self.started)
        if window not in entry["windows"]:
            entry["windows"].append(window)

    def points(self) -> list[CrashPoint]:
        by_key = self.by_key
        return [CrashPoint(index, by_key[key]["position"], key[0], key[1], tuple(by_key[key]["windows"]),
                           by_key[key]["op"]) for index, key in enumerate(self.order)]


def crash_points(log: EventLog, history: History, volatile_cache: bool, ops_offset: int = 0) -> PointWalk:
    """Every distinct crash point of a recorded log. Example: `crash_points(log, history, True).points`."""
    writes: dict[int, tuple[int, int]] = {}
    fua: set[int] = set()
    pending: set[int] = set()
    volatile: set[int] = set()
    flush_covers: dict[int, set[int]] = {}
    durable_sequence: list[int] = []
    collector = PointCollector(history, ops_offset, OP_SETUP)
    collector.note(0, 0, ())
    for position, event in enumerate(log.events, start=1):
        if event.kind == SUBMIT and event.request_type == WRITE:
            writes[event.request_id] = (event.sector, event.sector_count)
            pending.add(event.request_id)
            if event.fua:
                fua.add(event.request_id)
        elif event.kind == SUBMIT and event.request_type == FLUSH:
            flush_covers[event.request_id] = set(volatile)
        elif event.kind == COMPLETE and event.request_type == WRITE:
            if volatile_cache and event.request_id not in fua:
                volatile.add(event.request_id)
            else:
                pending.discard(event.request_id)
                durable_sequence.append(event.request_id)
        elif event.kind == COMPLETE and event.request_type == FLUSH:
            newly = sorted(flush_covers.pop(event.request_id) & volatile)
            volatile.difference_update(newly)
            pending.difference_update(newly)
            durable_sequence.extend(newly)
        elif event.kind == OP_BEGIN and event.op_index >= 0:
            collector.op_begin(event.op_index)
        elif event.kind == OP_END and event.op_index >= 0:
            collector.op_end(event.op_index)
        collector.note(position, len(durable_sequence), tuple(sorted(pending)))
    points = collector.points()
    assert all(point.durable_count <= len(durable_sequence) for point in points)
    return PointWalk(points, durable_sequence, writes)
