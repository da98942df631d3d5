"""File-system images: a tree of directories and files, and how micro-ops change it.

`FsTree` is mutable (the durable tree as the explorer advances, or a state being
built); `FsTree.frozen()` gives a copy that later changes never reach. A state's
image is the durable tree plus the chosen pending micro-ops, applied in id order.

Layout: inode `ROOT_INODE` is "/"; the store's directory (`STORE_PATH`) and `/tmp`
exist and are durable before any workload (DESIGN §4).

Invariants:
- a file's visible content is `data[:size]`, zero-padded to `size` (a size may
  persist without its data);
- a state's writes and size micro-ops (`apply_landed`) reach a file's data only when
  its content is first asked for (`content`, `content_copy`, `data`, `copy`), in id
  order as ever: most files of a state are never read (an unlinked inode, a temporary
  file the engine truncates), and building them cost most of a state's image;
- what an engine can see is the entries reachable from "/" and the visible content of
  each file (not inode numbers); `_fs_hash.tree_digest` hashes exactly that.
"""

from __future__ import annotations

from crashsweep.disk_model.fs._log import DIRECTORY, FILE, FS_BLOCK_BYTES, LINK, RENAME, SIZE, UNLINK, WRITE, FsOp

ROOT_INODE = 1
STORE_PATH = "/crashsweep/store"
FIRST_FREE_INODE = 16
DATA_KINDS = (WRITE, SIZE)


class FsTree:
    """Directories (inode -> {name: (inode, kind)}) and files (inode -> data, size)."""

    def __init__(self) -> None:
        self.entries: dict[int, dict[str, tuple[int, str]]] = {ROOT_INODE: {}}
        self._data: dict[int, bytearray] = {}
        self.sizes: dict[int, int] = {}
        self._deferred: dict[int, list] = {}   # inode -> its landed (op, units) not yet applied to its data
        self._owned: set[int] = set()   # files whose bytearray this tree may change in place
        self._inode_max: int | None = None    # `inode_max`, once asked for (kept by `apply` and `copy`)

    @classmethod
    def initial(cls) -> "FsTree":
        """"/", "/tmp", "/crashsweep" and the store directory, all durable."""
        tree = cls()
        tree.entries[ROOT_INODE] = {"tmp": (2, DIRECTORY), "crashsweep": (3, DIRECTORY)}
        tree.entries[2] = {}
        tree.entries[3] = {"store": (4, DIRECTORY)}
        tree.entries[4] = {}
        return tree

    @property
    def data(self) -> dict[int, bytearray]:
        """inode -> its data (each file's deferred micro-ops applied first)."""
        if self._deferred:
            for inode in list(self._deferred):
                self._settle(inode)
        return self._data

    @data.setter
    def data(self, data: dict[int, bytearray]) -> None:
        self._data, self._deferred = data, {}
        self._owned.clear()

    def data_inodes(self):
        """The inodes `data` has keys for, without applying deferred micro-ops."""
        return self._data.keys() | self._deferred.keys() if self._deferred else self._data.keys()

    def _settle(self, inode: int) -> None:
        """Apply `inode`'s deferred writes and size micro-ops to its data, in order (as `apply` would have). The
        buffer is made once, as long as the furthest byte a write reaches (zeroed past the data's current end, so
        a write past it leaves zeros between, as `apply` extends it); a torn write's units are copied from the
        write's bytes themselves (no slice of them made first)."""
        landed = self._deferred.pop(inode)
        data = self._data.get(inode)
        end = len(data) if data is not None else 0       # the data's end (`apply`'s buffer length)
        furthest = end
        for op, _ in landed:
            if op.kind == WRITE and op.offset + len(op.data) > furthest:
                furthest = op.offset + len(op.data)
        if not end:                  # (nothing to keep: one zeroed buffer, instead of zeros made and appended)
            buffer = self._data[inode] = bytearray(furthest)
            self._owned.add(inode)
        else:
            buffer = self._writable(inode)
            if furthest > end:
                buffer.extend(bytes(furthest - end))
        for op, units in landed:
            if op.kind == WRITE:
                offset, payload = op.offset, op.data
                if units is None:
                    buffer[offset:offset + len(payload)] = payload
                    if offset + len(payload) > end:
                        end = offset + len(payload)
                    continue
                view, reach, first = memoryview(payload), offset + len(payload), offset // FS_BLOCK_BYTES
                for unit in units:                  # (`FsOp.piece`)
                    start = max(offset, (first + unit) * FS_BLOCK_BYTES)
                    stop = min(reach, (first + unit + 1) * FS_BLOCK_BYTES)
                    buffer[start:stop] = view[start - offset:stop - offset]
                    if stop > end:
                        end = stop
            elif op.size < end:        # bytes beyond a truncation are gone, even if the file grows again
                buffer[op.size:end] = bytes(end - op.size)
                end = op.size
        del buffer[end:]

    def copy(self) -> "FsTree":
        other = FsTree()
        other.entries = {inode: dict(names) for inode, names in self.entries.items()}
        other._data = dict(self.data)
        other.sizes = dict(self.sizes)
        other._inode_max = self.inode_max()     # counted once on the durable tree, kept by its states' copies
        self._owned.clear()       # both now share the bytearrays: copy before the next change
        return other

    def inode_max(self) -> int:
        """An inode number no lower than any the tree names (a directory, an entry, a file's data or size): a
        file made in a state of it takes a higher one. Kept as micro-ops apply (an unlinked name's inode stays
        counted), so a state's copy knows it at once."""
        if self._inode_max is None:
            self._inode_max = max([ROOT_INODE, *self.entries, *self.data_inodes(), *self.sizes,
                                   *(inode for names in self.entries.values() for inode, _ in names.values())])
        return self._inode_max

    frozen = copy

    def _writable(self, inode: int) -> bytearray:
        if inode not in self._owned:
            self._data[inode] = bytearray(self._data.get(inode, b""))
            self._owned.add(inode)
        return self._data[inode]

    def apply(self, op: FsOp, units: list[int] | None = None) -> None:
        """Apply one micro-op (of a write: only `units`, when given)."""
        if self._inode_max is not None and op.kind != UNLINK:     # the inodes the micro-op adds to the tree
            self._inode_max = max(self._inode_max, op.inode, op.directory if op.kind == LINK else 0,
                                  op.directory2 if op.kind == RENAME else 0)
        if op.kind in DATA_KINDS and op.inode in self._deferred:
            self._settle(op.inode)
        if op.kind == WRITE:
            buffer = self._writable(op.inode)
            pieces = [(op.offset, op.data)] if units is None else [op.piece(unit) for unit in units]
            for offset, data in pieces:
                if len(buffer) < offset + len(data):
                    buffer.extend(bytes(offset + len(data) - len(buffer)))
                buffer[offset:offset + len(data)] = data
        elif op.kind == SIZE:
            self.sizes[op.inode] = op.size
            buffer = self._writable(op.inode)
            del buffer[op.size:]          # bytes beyond a truncation are gone, even if the file grows again
        elif op.kind == LINK:
            self.entries.setdefault(op.directory, {})[op.name] = (op.inode, op.entry_kind)
            if op.entry_kind == DIRECTORY:
                self.entries.setdefault(op.inode, {})
            else:
                self.sizes.setdefault(op.inode, 0)
        elif op.kind == UNLINK:
            names = self.entries.get(op.directory, {})
            if names.get(op.name, (None,))[0] == op.inode:
                del names[op.name]
        else:
            assert op.kind == RENAME, op.kind
            source = self.entries.get(op.directory, {})
            entry = source.get(op.name)
            kind = entry[1] if entry is not None and entry[0] == op.inode else op.entry_kind
            if entry is not None and entry[0] == op.inode:
                del source[op.name]
            self.entries.setdefault(op.directory2, {})[op.name2] = (op.inode, kind)

    def apply_landed(self, landed) -> None:
        """`apply(op, units)` for each `(op, units)` of `landed`, in order (a state's overlay). Writes and size
        micro-ops are deferred: a size is set now, a file's data is made when first asked for (`_settle`)."""
        sizes, deferred = self.sizes, self._deferred
        highest = self._inode_max
        for op, units in landed:
            kind = op.kind
            if kind == WRITE or kind == SIZE:
                inode = op.inode
                found = deferred.get(inode)
                if found is None:
                    deferred[inode] = [(op, units)]
                else:
                    found.append((op, units))
                if kind == SIZE:
                    sizes[inode] = op.size
                if highest is not None and inode > highest:
                    highest = self._inode_max = inode
            else:
                self.apply(op, units)
                highest = self._inode_max

    def content(self, inode: int) -> bytes:
        if inode in self._deferred:
            self._settle(inode)
        size = self.sizes.get(inode, 0)
        data = bytes(self._data.get(inode, b"")[:size])
        return data + bytes(size - len(data))

    def content_copy(self, inode: int) -> bytearray:
        """`content(inode)` as a new bytearray of its own, made in one copy."""
        if inode in self._deferred:
            self._settle(inode)
        size = self.sizes.get(inode, 0)
        data = self._data.get(inode, b"")[:size]
        copy = data if type(data) is bytearray else bytearray(data)
        if len(copy) < size:
            copy.extend(bytes(size - len(copy)))
        return copy

    def content_shared(self, inode: int) -> tuple[bytearray, bool]:
        """`content(inode)` as a bytearray, and whether it is this tree's data itself (shared): a shared one must
        be copied before it is changed, and the tree no longer changes it in place either (it copies before its
        next change). A loaded file's content is so made with its micro-ops applied and no copy on top."""
        if inode in self._deferred:
            self._settle(inode)
        data = self._data.get(inode)
        if data is not None and len(data) == self.sizes.get(inode, 0) and type(data) is bytearray:
            self._owned.discard(inode)
            return data, True
        return self.content_copy(inode), False

    def walk(self):
        """(path, kind, inode) for every entry reachable from "/", parents first, names sorted."""
        stack = [("", ROOT_INODE)]
        while stack:
            path, inode = stack.pop()
            for name in sorted(self.entries.get(inode, {}), reverse=True):
                child, kind = self.entries[inode][name]
                child_path = f"{path}/{name}"
                yield child_path, kind, child
                if kind == DIRECTORY and child in self.entries:
                    stack.append((child_path, child))

    def walk_entries(self):
        """(directory inode, name, kind, inode) of every entry reachable from "/", in `walk`'s order."""
        entries = self.entries
        stack = [ROOT_INODE]
        while stack:
            inode = stack.pop()
            names = entries.get(inode, {})
            for name in sorted(names, reverse=True):
                child, kind = names[name]
                yield inode, name, kind, child
                if kind == DIRECTORY and child in entries:
                    stack.append(child)

    def files(self) -> dict[str, bytes]:
        """Every reachable file's path and visible content (for reports and tests)."""
        return {path: self.content(inode) for path, kind, inode in self.walk() if kind == FILE}

