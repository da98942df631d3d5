"""A recorded I/O log as plain data, so a recording made in a worker process reaches crashsweep as data.

Block logs (`EventLog`) and file-system logs (`FsLog`) both go out as JSON-shaped
values with `bytes` payloads (`_wire.py` carries those apart), and come back as the
same log, field by field type-checked: a malformed log raises WireError.

Invariant: `log_from_data(log_to_data(log))` has the same events, payloads and ops.
"""

from __future__ import annotations

from crashsweep.crash_explorer._wire import WireError
from crashsweep.disk_model import EventLog, FsLog
from crashsweep.disk_model.block._events import Event
from crashsweep.disk_model.fs._log import FsOp

_FS_OP_FIELDS = ("op_id", "call", "kind", "inode", "directory", "name", "directory2", "name2", "offset", "data",
                 "size", "entry_kind")
_FS_OP_TYPES = (int, int, str, int, int, str, int, str, int, bytes, int, str)
_EVENT_TYPES = (str, int, str, int, int, bool, int)
SITE_CHARS_MAX = 300


def log_to_data(log) -> dict:
    if isinstance(log, FsLog):
        return {"medium": "fs", "call": log.call, "current_op": log.current_op,
                "ops": [[getattr(op, name) for name in _FS_OP_FIELDS] for op in log.ops],
                "events": [list(event) for event in log.events], "sites": _sites_to_data(log)}
    return {"medium": "block", "current_op": log.current_op, "events": [list(event) for event in log.events],
            "payloads": [[request_id, payload] for request_id, payload in log.payloads.items()],
            "sites": _sites_to_data(log)}


def _sites_to_data(log) -> list:
    return [[key, site] for key, site in log.sites.items()]


def _sites_from_data(log, data: dict) -> None:
    for key, site in data.get("sites", []):
        _typed([key, site], (int, str))
        log.sites[key] = site[:SITE_CHARS_MAX]


def log_from_data(data) -> EventLog | FsLog:
    if not isinstance(data, dict) or data.get("medium") not in ("fs", "block"):
        raise WireError("a recorded log must name its medium")
    try:
        return _fs_log(data) if data["medium"] == "fs" else _block_log(data)
    except (KeyError, TypeError, ValueError, AssertionError) as error:
        raise WireError(f"malformed recorded log ({type(error).__name__})") from None


def _typed(values, types) -> tuple:
    if not isinstance(values, list) or len(values) != len(types):
        raise TypeError("wrong length")
    for value, kind in zip(values, types):
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}")
    return tuple(values)


def _block_log(data: dict) -> EventLog:
    log = EventLog()
    log.events = [Event(*_typed(event, _EVENT_TYPES)) for event in data["events"]]
    log.payloads = {}
    for request_id, payload in data["payloads"]:
        _typed([request_id, payload], (int, bytes))
        log.payloads[request_id] = payload
    log.current_op = int(data["current_op"])
    _sites_from_data(log, data)
    return log


def _fs_log(data: dict) -> FsLog:
    log = FsLog(int(data["call"]))
    log.ops = [FsOp(*_typed(op, _FS_OP_TYPES)) for op in data["ops"]]
    events = []
    for event in data["events"]:
        if not isinstance(event, list) or not event or not isinstance(event[0], str):
            raise TypeError("event")
        if not all(isinstance(item, (int, str, bool)) for item in event):
            raise TypeError("event field")
        events.append(tuple(event))
    log.events = events
    log.current_op = int(data["current_op"])
    for index, op in enumerate(log.ops):
        assert op.op_id == index
    _sites_from_data(log, data)
    return log
