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


def crash_points(log: EventLog, history: History, volatile_cache: bool, ops_offset: int = 0) -> PointWalk:
    """Every distinct crash point of a recorded log. Example: `crash_points(log, history, True).points`."""
    writes: dict[int, tuple[int, int]] = {}
    fua: set[int] = set()
    pending: set[int] = set()
    volatile: set[int] = set()
    flush_covers: dict[int, set[int]] = {}
    durable_sequence: list[int] = []
    synced = started = 0
    op_index = OP_SETUP
    by_key: dict[tuple, dict] = {}
    order: list[tuple] = []

    def note(position: int) -> None:
        key = (len(durable_sequence), tuple(sorted(pending)))
        entry = by_key.get(key)
        if entry is None:
            entry = by_key[key] = {"position": position, "windows": [], "op": op_index}
            order.append(key)
        if (synced, started) not in entry["windows"]:
            entry["windows"].append((synced, started))

    note(0)
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
            op_index = event.op_index
            local = event.op_index - ops_offset
            started = history.mutations_before[local] + (1 if history.ops[local].mutating else 0)
        elif event.kind == OP_END and event.op_index >= 0:
            local = event.op_index - ops_offset
            if history.ops[local].kind == "sync":
                synced = history.mutations_before[local]
        note(position)
    points = [CrashPoint(index, by_key[key]["position"], key[0], key[1], tuple(by_key[key]["windows"]),
                         by_key[key]["op"]) for index, key in enumerate(order)]
    assert all(point.durable_count <= len(durable_sequence) for point in points)
    return PointWalk(points, durable_sequence, writes)
