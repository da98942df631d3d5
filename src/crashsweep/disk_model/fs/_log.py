"""The file-system event log: every change an engine makes to files, as micro-operations, in order.

A POSIX call becomes one or more *micro-operations* (ALICE's "logical operations"),
each of which a crash may keep or drop on its own:

- `write(inode, offset, data)`: file data; it tears at `FS_BLOCK_BYTES` boundaries;
- `size(inode, size)`: a file's length (an append is a `write` plus a `size`, so a
  size may persist without its data, and zeros show through);
- `link(directory, name, inode, kind)`: a new directory entry (create, mkdir);
- `unlink(directory, name, inode)`: an entry removed (unlink, rmdir, the target of a rename);
- `rename(directory, name, directory2, name2, inode)`: one entry moved, atomically.

Syncs (`fsync`, `fdatasync`, fsync of a directory) are events of their own; the
persistence model (`_fs_persistence.py`) says what each one makes durable. Op
boundaries are logged as in the block `EventLog`, so crash windows come out the same.

Invariants:
- micro-op ids are 0, 1, 2, … in the order the calls happened;
- every micro-op of one POSIX call carries that call's number (`call`), increasing;
- a `write` never has empty data; `FS_BLOCK_BYTES` divides every tear boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

from crashsweep.disk_model._sites import engine_site

FS_BLOCK_BYTES = 4096
WRITE, SIZE, LINK, UNLINK, RENAME = "write", "size", "link", "unlink", "rename"
ENTRY_KINDS = (LINK, UNLINK, RENAME)
FILE, DIRECTORY = "file", "dir"
FS_OP, FS_SYNC, FS_BEGIN, FS_END = "op", "sync", "op-begin", "op-end"


@dataclass(frozen=True, slots=True)
class FsOp:
    """One micro-operation. Fields a kind does not use are 0 / "" / b""."""

    op_id: int
    call: int
    kind: str
    inode: int
    directory: int = 0
    name: str = ""
    directory2: int = 0
    name2: str = ""
    offset: int = 0
    data: bytes = b""
    size: int = 0
    entry_kind: str = FILE

    @property
    def tear_units(self) -> int:
        """How many independently persisting pieces this op has (file blocks for a write, else 1)."""
        if self.kind != WRITE:
            return 1
        first = self.offset // FS_BLOCK_BYTES
        last = (self.offset + len(self.data) - 1) // FS_BLOCK_BYTES
        return last - first + 1

    def piece(self, unit: int) -> tuple[int, bytes]:
        """(file offset, bytes) of one tear unit of a write."""
        assert self.kind == WRITE and 0 <= unit < self.tear_units
        start = max(self.offset, (self.offset // FS_BLOCK_BYTES + unit) * FS_BLOCK_BYTES)
        end = min(self.offset + len(self.data), (self.offset // FS_BLOCK_BYTES + unit + 1) * FS_BLOCK_BYTES)
        return start, self.data[start - self.offset:end - self.offset]

    def directories(self) -> tuple[int, ...]:
        if self.kind == RENAME:
            return (self.directory, self.directory2)
        return (self.directory,) if self.kind in (LINK, UNLINK) else ()

    def describe(self) -> str:
        if self.kind == WRITE:
            return f"write inode {self.inode} bytes {self.offset}..{self.offset + len(self.data) - 1}"
        if self.kind == SIZE:
            return f"size of inode {self.inode} := {self.size}"
        if self.kind == RENAME:
            return f"rename {self.name!r} -> {self.name2!r} (inode {self.inode})"
        return f"{self.kind} {self.name!r} (inode {self.inode})"


class FsLog:
    """Append-only log of micro-ops, syncs and op boundaries. Example: `log.add(WRITE, 5, offset=0, data=b"x")`."""

    def __init__(self, first_call: int = 0) -> None:
        self.ops: list[FsOp] = []
        # (FS_OP, op_id) | (FS_SYNC, inode, is_dir, call) | (FS_BEGIN/FS_END, index)
        self.events: list[tuple] = []
        self.call = first_call
        self.current_op = -1
        self.track_sites = False             # note the engine's source line of every call (a recording does)
        self.sites: dict[int, str] = {}      # call number -> "file.py:line" of the engine code that made it

    def next_call(self) -> int:
        self.call += 1
        if self.track_sites:
            self.sites[self.call] = engine_site(2)
        return self.call

    def add(self, kind: str, inode: int, **fields) -> FsOp:
        op = FsOp(len(self.ops), self.call, kind, inode, **fields)
        assert kind != WRITE or op.data, "a write micro-op carries data"
        self.ops.append(op)
        self.events.append((FS_OP, op.op_id))
        return op

    def shape(self) -> tuple:
        """The log but for the bytes written (their lengths kept): what its crash points, and the states a
        persistence model allows at them, depend on."""
        return (tuple(self.events), tuple((op.call, op.kind, op.inode, op.directory, op.name, op.directory2, op.name2,
                                           op.offset, len(op.data), op.size, op.entry_kind) for op in self.ops))

    def synced(self, inode: int, is_dir: bool) -> None:
        self.events.append((FS_SYNC, inode, is_dir, self.call))

    def begin_op(self, op_index: int) -> None:
        self.current_op = op_index
        self.events.append((FS_BEGIN, op_index))

    def end_op(self, op_index: int) -> None:
        assert op_index == self.current_op, (op_index, self.current_op)
        self.events.append((FS_END, op_index))


class UntracedFsLog(FsLog):
    """A log nobody reads: a run at the last crash depth, whose I/O no crash is planned in (`Medium.new_log`
    with `traced=False`). It keeps nothing, so an engine's calls do not build micro-ops (~1.5 µs each)."""

    def next_call(self) -> int:
        self.call += 1
        return self.call

    def add(self, kind: str, inode: int, **fields) -> None:
        return None

    def synced(self, inode: int, is_dir: bool) -> None:
        return None

    def begin_op(self, op_index: int) -> None:
        self.current_op = op_index

    def end_op(self, op_index: int) -> None:
        return None

