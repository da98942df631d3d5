"""The I/O event log: every request and completion, tagged with the client operation.

A log is a list of `Event`s in the order they happened, plus the payload of
every write kept apart (`payloads[request_id]`), and op boundaries as events of
their own. The crash explorer reads durability from it; the device never does.

Invariants:
- request ids are 0, 1, 2, … in submission order;
- every `complete` follows the `submit` of the same request, and happens once;
- a `flush` completes only after every write submitted before it completed.
"""

from __future__ import annotations

from typing import NamedTuple

from crashsweep.disk_model._sites import engine_site

SUBMIT = "submit"
COMPLETE = "complete"
OP_BEGIN = "op-begin"
OP_END = "op-end"
READ, WRITE, FLUSH = "read", "write", "flush"
OP_SETUP = -1  # the op index of I/O issued while an engine opens, before the first operation


class Event(NamedTuple):
    kind: str            # SUBMIT, COMPLETE, OP_BEGIN or OP_END
    request_id: int      # -1 for op boundaries
    request_type: str    # READ, WRITE, FLUSH; "" for op boundaries
    sector: int
    sector_count: int
    fua: bool
    op_index: int        # the client operation that issued it (OP_SETUP while opening)


class EventLog:
    """Append-only log of device events. Example: `log.begin_op(3); ...; log.end_op(3)`."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.payloads: dict[int, bytes] = {}
        self.current_op = OP_SETUP
        self.track_sites = False            # note the engine's source line of every request (a recording does)
        self.sites: dict[int, str] = {}     # request id -> "file.py:line" of the engine code that submitted it

    def begin_op(self, op_index: int) -> None:
        self.current_op = op_index
        self.events.append(Event(OP_BEGIN, -1, "", 0, 0, False, op_index))

    def end_op(self, op_index: int) -> None:
        assert op_index == self.current_op, (op_index, self.current_op)
        self.events.append(Event(OP_END, -1, "", 0, 0, False, op_index))

    def submitted(self, request_id: int, request_type: str, sector: int, sector_count: int,
                  fua: bool, payload: bytes | None) -> None:
        self.events.append(Event(SUBMIT, request_id, request_type, sector, sector_count, fua, self.current_op))
        if self.track_sites:
            self.sites[request_id] = engine_site(2)
        if payload is not None:
            self.payloads[request_id] = payload

    def completed(self, request_id: int, request_type: str) -> None:
        self.events.append(Event(COMPLETE, request_id, request_type, 0, 0, False, self.current_op))

    def writes(self) -> list[Event]:
        return [event for event in self.events if event.kind == SUBMIT and event.request_type == WRITE]
