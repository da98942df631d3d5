"""The recorded I/O as the engine issued it: calls in the engine's own terms, with source lines.

A crash state is chosen over *units* — a file-system micro-op (`disk_model/fs/_log.py`) or a
block write request — identified by ids. Users think in calls: `write db.json.tmp
[0, 5120)`, `rename db.json.tmp -> db.json`, `fsync(dir .)`, `write sectors [64, 96)`.
This module turns a recording into those words:

- `unit_names(log)`: id -> a short name of the unit ("write db.json.tmp [0, 5120)");
- `unit_sites(log)`: id -> "file.py:line" of the engine code that issued it;
- `io_calls(log)`: every call in order, with its op, its units and its site
  (what `crashsweep log` prints and a report's I/O view shows).

Paths are relative to the engine's directory (the `path` it was opened with),
shown as "."; files outside it keep their absolute path.

Invariant: data only — reads a log, never runs engine code.
"""

from __future__ import annotations

from crashsweep.disk_model import EventLog, FsLog
from crashsweep.disk_model.block._events import FLUSH, SUBMIT, WRITE as BLOCK_WRITE
from crashsweep.disk_model.fs._image import ROOT_INODE, STORE_PATH, FsTree
from crashsweep.disk_model.fs._log import (
    DIRECTORY, FS_BEGIN, FS_OP, FS_SYNC, LINK, RENAME, SIZE, UNLINK, WRITE, FsOp,
)

CALLS_SHOWN_MAX = 2000
_PART = {WRITE: "data", SIZE: "size", LINK: "entry", UNLINK: "removal", RENAME: "rename"}


class _Names:
    """inode -> its path, following links and renames as the log goes (the initial tree's layout first)."""

    def __init__(self) -> None:
        self.parent: dict[int, tuple[int, str]] = {}
        tree = FsTree.initial()
        for directory, entries in tree.entries.items():
            for name, (inode, _) in entries.items():
                self.parent[inode] = (directory, name)
        self.store = self._inode_of(STORE_PATH, tree)

    @staticmethod
    def _inode_of(path: str, tree: FsTree) -> int:
        inode = ROOT_INODE
        for part in path.strip("/").split("/"):
            inode = tree.entries[inode][part][0]
        return inode

    def path(self, inode: int) -> str:
        parts, seen = [], set()
        while inode != self.store and inode in self.parent and inode not in seen:
            seen.add(inode)
            inode, name = self.parent[inode][0], self.parent[inode][1]
            parts.append(name)
        if inode == self.store:
            return "/".join(reversed(parts)) or "."
        return "/" + "/".join(reversed(parts)) if parts else f"inode {inode}"

    def entry(self, directory: int, name: str) -> str:
        base = self.path(directory)
        return name if base == "." else f"{base}/{name}"

    def apply(self, op: FsOp) -> None:
        if op.kind == LINK:
            self.parent[op.inode] = (op.directory, op.name)
        elif op.kind == RENAME:
            self.parent[op.inode] = (op.directory2, op.name2)


def _size(count: int) -> str:
    return f"{count:,} B" if count < 4096 or count % 1024 else f"{count // 1024:,} KiB"


def _fs_unit_name(op: FsOp, names: _Names) -> str:
    if op.kind == WRITE:
        return f"write {names.path(op.inode)} [{op.offset:,}, {op.offset + len(op.data):,})"
    if op.kind == SIZE:
        return f"size of {names.path(op.inode)} := {op.size:,}"
    if op.kind == LINK:
        verb = "mkdir" if op.entry_kind == DIRECTORY else "create"
        return f"{verb} {names.entry(op.directory, op.name)}"
    if op.kind == UNLINK:
        return f"unlink {names.entry(op.directory, op.name)}"
    return f"rename {names.entry(op.directory, op.name)} -> {names.entry(op.directory2, op.name2)}"


def unit_names(log) -> dict[int, str]:
    """id -> short name of every unit a crash state chooses over (micro-op or block write)."""
    if isinstance(log, FsLog):
        names, shown, writes = _Names(), {}, {}
        for op in log.ops:
            text = _fs_unit_name(op, names)   # named before it applies: a rename shows both names
            if op.kind == WRITE:
                writes[op.call] = text
            elif op.kind == SIZE and op.call in writes:     # an append's new length: part of its write call
                text = f"{writes[op.call]} (its file size, {op.size:,})"
            shown[op.op_id] = text
            names.apply(op)
        return shown
    return {event.request_id: _block_name(event.sector, event.sector_count, event.fua)
            for event in log.events if event.kind == SUBMIT and event.request_type == BLOCK_WRITE}


def _block_name(sector: int, count: int, fua: bool) -> str:
    return f"write sectors [{sector:,}, {sector + count:,}){' FUA' if fua else ''}"


def unit_sites(log) -> dict[int, str]:
    """id -> the engine's source line that issued the unit ("" when unknown: C code, a log made without sites)."""
    if isinstance(log, FsLog):
        return {op.op_id: log.sites.get(op.call, "") for op in log.ops}
    return {event.request_id: log.sites.get(event.request_id, "")
            for event in log.events if event.kind == SUBMIT and event.request_type == BLOCK_WRITE}


def io_calls(log) -> list[dict]:
    """Every I/O call in issue order: {"op": workload op (-1 while opening), "call": text, "site", "units": ids,
    "position": the log position after it (crash points at or after it see it issued)}."""
    return _fs_calls(log) if isinstance(log, FsLog) else _block_calls(log)


def _fs_calls(log: FsLog) -> list[dict]:
    names, calls, op_index, by_call = _Names(), [], -1, {}
    for position, event in enumerate(log.events, 1):
        if event[0] == FS_BEGIN:
            op_index = event[1]
        elif event[0] == FS_OP:
            op = log.ops[event[1]]
            text = _fs_unit_name(op, names)
            names.apply(op)
            entry = by_call.get(op.call)
            if entry is None:
                entry = by_call[op.call] = {"op": op_index, "call": text, "site": log.sites.get(op.call, ""),
                                            "units": []}
                calls.append(entry)
            elif op.kind == SIZE and entry["call"].startswith("write"):
                pass                                  # an append's size change belongs to its write
            else:
                entry["call"] += "; " + text
            entry["units"].append(op.op_id)
            entry["position"] = position
            entry.setdefault("parts", []).append(_PART.get(op.kind, op.kind))
        elif event[0] == FS_SYNC:
            call = event[3] if len(event) > 3 else -1
            what = f"dir {names.path(event[1])}" if event[2] else names.path(event[1])
            calls.append({"op": op_index, "call": f"fsync({what})", "site": log.sites.get(call, ""), "units": [],
                          "position": position})
    return calls


def _block_calls(log: EventLog) -> list[dict]:
    calls = []
    for position, event in enumerate(log.events, 1):
        if event.kind == SUBMIT and event.request_type == BLOCK_WRITE:
            calls.append({"op": event.op_index, "call": _block_name(event.sector, event.sector_count, event.fua),
                          "site": log.sites.get(event.request_id, ""), "units": [event.request_id],
                          "position": position})
        elif event.kind == SUBMIT and event.request_type == FLUSH:
            calls.append({"op": event.op_index, "call": "flush", "site": log.sites.get(event.request_id, ""),
                          "units": [], "position": position})
    return calls


def call_line(call: dict) -> str:
    """One call as a line: `op 3  rename db.json.tmp -> db.json   json_kv.py:29`."""
    where = f"   {call['site']}" if call.get("site") else ""
    op = "setup" if call["op"] < 0 else f"op {call['op']}"
    return f"{op:>8}  {call['call']}{where}"

