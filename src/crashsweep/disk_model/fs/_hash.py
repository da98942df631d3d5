"""State hashes of file-system images, computed in O(what a crash state changes).

A file's *content sum* is the sum (mod 2^128) of a keyed hash of every non-zero
`FS_BLOCK_BYTES` block of its visible content (the last block zero-padded); with
its size it names the content exactly (up to hash collisions). A tree's digest
hashes every reachable entry's path and kind, and each file's size and content
sum. So a crash state (the durable tree plus a few landed micro-ops) is hashed
from the durable tree's cached sums and the blocks those micro-ops change: a
torn append to a 2 MB write-ahead log costs a few blocks, not 2 MB.

Invariant: `HashedTree.state_digest(ops)` equals `tree_digest(t)` of the tree `t`
that applying `ops` (each `(FsOp, units or None)`, in id order) to the durable
tree gives, and `tree_digest` depends only on what an engine can see.
"""

from __future__ import annotations

import hashlib

from crashsweep.disk_model.fs._image import FsTree
from crashsweep.disk_model.fs._log import FILE, FS_BLOCK_BYTES, SIZE, WRITE, FsOp

HASH_MODULUS = 1 << 128
BLOCK_HASHES_CACHED_MAX = 8192    # (index, block) -> hash kept per tree (~32 MiB of blocks at most)
NEAR_DIGESTS_CACHED_MAX = 65536   # digests of one point's states near all-landed, by their visible deviations
SKIP_HIDDEN = True                # False: hash hidden deviations too (benchmarks/bench_planning.py compares)
BLOCKS_UNDER_CACHED_MAX = 65536  # one point's blocks by the deviations of the micro-ops that touch them
STRUCTURES_CACHED_MAX = 1024      # trees of one point's states near all-landed, by the metadata micro-ops lost
_ZERO_BLOCK = bytes(FS_BLOCK_BYTES)


def block_hash(index: int, block: bytes) -> int:
    """The keyed hash of one visible block (`FS_BLOCK_BYTES` long); 0 for a block of zeros."""
    if block == _ZERO_BLOCK:
        return 0
    digest = hashlib.blake2b(block, digest_size=16, key=index.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


def _padded(raw) -> bytes:
    raw = bytes(raw)
    return raw if len(raw) == FS_BLOCK_BYTES else raw + bytes(FS_BLOCK_BYTES - len(raw))


def content_blocks(data, size: int) -> dict[int, int]:
    """{block index: block hash} of the non-zero blocks of a file's visible content."""
    hashes = {}
    visible = min(len(data), size)
    for index in range((visible + FS_BLOCK_BYTES - 1) // FS_BLOCK_BYTES):
        start = index * FS_BLOCK_BYTES
        value = block_hash(index, _padded(data[start:min(start + FS_BLOCK_BYTES, visible)]))
        if value:
            hashes[index] = value
    return hashes


def _entry_list(entries_walk) -> list[tuple[bytes, bool, int]]:
    """(path and kind as hashed, is a file, inode) of every reachable entry, sorted."""
    return [(path.encode("utf-8", "surrogateescape") + b"\0" + kind.encode() + b"\0", kind == FILE, inode)
            for path, kind, inode in sorted(entries_walk)]


def _digest(entries: list[tuple[bytes, bool, int]], file_sum) -> int:
    hasher = hashlib.blake2b(digest_size=16)
    update = hasher.update
    for name, is_file, inode in entries:
        update(name)
        if is_file:
            size, total = file_sum(inode)
            update(size.to_bytes(8, "little") + total.to_bytes(16, "little"))
    return int.from_bytes(hasher.digest(), "little")


def tree_digest(tree: FsTree) -> int:
    """The digest of a materialized tree (the reference `HashedTree` must agree with)."""
    def file_sum(inode):
        size = tree.sizes.get(inode, 0)
        return size, sum(content_blocks(tree.data.get(inode, b""), size).values()) % HASH_MODULUS
    return _digest(_entry_list(tree.walk()), file_sum)


def _block_pieces(op: FsOp) -> list[tuple[int, int, bytes]]:
    """A write's tear units as (block index, offset in the block, bytes): unit u is the u-th block it spans."""
    first = op.offset // FS_BLOCK_BYTES
    pieces = []
    for unit in range(op.tear_units):
        start, data = op.piece(unit)
        pieces.append((first + unit, start - (first + unit) * FS_BLOCK_BYTES, data))
    return pieces


class _SparseFile:
    """One file as landed micro-ops change it, keeping only the blocks they touch.

    Content at byte p: `blocks[p // B][p % B]` if that block was touched, else the durable
    data's byte if p < `cut` (bytes from `cut` on were truncated away), else zero.
    Visible content: that, for p < `size`; zero-padding past the data.
    """

    __slots__ = ("base", "cut", "size", "blocks", "low", "high", "extent")

    def __init__(self, base, size: int):
        self.base, self.cut, self.size = base, len(base), size
        self.blocks: dict[int, bytearray] = {}
        self.low = self.high = size         # visible bytes in [low, high) may have changed
        self.extent = 0                     # touched blocks hold no non-zero byte from here on

    def _block(self, index: int) -> bytearray:
        block = self.blocks.get(index)
        if block is None:
            start = index * FS_BLOCK_BYTES
            if start >= self.cut:           # past the durable data (an append): zeros
                block = self.blocks[index] = bytearray(FS_BLOCK_BYTES)
            else:
                block = self.blocks[index] = bytearray(_padded(self.base[start:min(start + FS_BLOCK_BYTES,
                                                                                   self.cut)]))
                self.extent = max(self.extent, min(start + FS_BLOCK_BYTES, self.cut))
        return block

    def write_pieces(self, pieces: list[tuple[int, int, bytes]]) -> None:
        """Write block pieces `(block index, offset in the block, bytes)` (a write's tear units)."""
        blocks = self.blocks
        for index, within, chunk in pieces:
            block = blocks.get(index)
            if block is None:
                block = self._block(index)
            block[within:within + len(chunk)] = chunk
            end = index * FS_BLOCK_BYTES + within + len(chunk)
            if end > self.extent:
                self.extent = end

    def set_size(self, size: int) -> None:
        """A `size` micro-op: data from `size` on is gone (even if the file grows again later)."""
        if size < self.extent:     # else no touched block holds data from `size` on (an append's size)
            for index, block in self.blocks.items():
                start = index * FS_BLOCK_BYTES
                if start + FS_BLOCK_BYTES > size:
                    cut_at = max(0, size - start)
                    block[cut_at:] = bytes(FS_BLOCK_BYTES - cut_at)
            self.extent = size
        if size < self.cut:
            self.cut = size
        self.low = min(self.low, size)       # every earlier size is already within [low, high)
        self.high = max(self.high, size)
        self.size = size

    def visible_block(self, index: int) -> bytes:
        start = index * FS_BLOCK_BYTES
        if start >= self.size:
            return _ZERO_BLOCK
        block = self.blocks.get(index)
        end = min(start + FS_BLOCK_BYTES, self.size)
        if block is not None:
            return _padded(block[:end - start])
        return _padded(self.base[start:max(start, min(end, self.cut))])

    def changed_blocks(self) -> set[int]:
        changed = set(self.blocks)
        if self.low < self.high:
            changed.update(range(self.low // FS_BLOCK_BYTES, (self.high + FS_BLOCK_BYTES - 1) // FS_BLOCK_BYTES))
        return changed


class HashedTree:
    """A durable tree with cached per-file block hashes. Example: `HashedTree(tree).state_digest([(op, None)])`.

    Requires: the caller calls `changed(op)` for every micro-op it applies to `tree`.
    """

    def __init__(self, tree: FsTree):
        self.tree = tree
        self._blocks: dict[int, dict[int, int]] = {}
        self._sums: dict[int, int] = {}
        self._entries: list | None = None
        # Landed metadata micro-ops (ids) -> (entries, sizes) of the tree they make: the states of a
        # point land the same links and renames over and over, with different data.
        self._structures: dict[tuple, tuple[list, dict]] = {}
        # The states of a sweep show the same few thousand blocks again and again (a journal page
        # whole or torn, a header): hash each (index, content) once. A pure function: never stale.
        self._block_hashes: dict[tuple[int, bytes], int] = {}
        self._pieces: dict[int, list] = {}     # write op id -> its tear units as block pieces (ops never change)
        self._base: _BaseState | None = None    # every pending micro-op landed, at one point (`near_digest`)
        # Digests of states near all-landed across the points of one chain: at one durable tree, each point's
        # pending micro-ops extend the last one's, so a state whose last pending micro-ops are lost is a state
        # of an earlier point (`_chain_key`). `_chain` holds the ids of the chain's longest pending list.
        self._chain: tuple[int, ...] = ()
        self._chain_memo: dict[tuple, int] = {}

    def changed(self, op: FsOp) -> None:
        """`op` was applied to the durable tree."""
        self._base = None
        self._chain, self._chain_memo = (), {}
        self._blocks.pop(op.inode, None)
        self._sums.pop(op.inode, None)
        if op.kind not in (WRITE, SIZE):
            self._entries = None
        if self._structures:
            self._structures = {}

    def _durable_blocks(self, inode: int) -> dict[int, int]:
        blocks = self._blocks.get(inode)
        if blocks is None:
            blocks = self._blocks[inode] = content_blocks(self.tree.data.get(inode, b""),
                                                           self.tree.sizes.get(inode, 0))
            self._sums[inode] = sum(blocks.values()) % HASH_MODULUS
        return blocks

    def _durable_sum(self, inode: int) -> tuple[int, int]:
        if inode not in self._sums:
            self._durable_blocks(inode)
        return self.tree.sizes.get(inode, 0), self._sums[inode]

    def _block_hash(self, index: int, block: bytes) -> int:
        key = (index, block)
        value = self._block_hashes.get(key)
        if value is None:
            if len(self._block_hashes) >= BLOCK_HASHES_CACHED_MAX:
                self._block_hashes.clear()
            value = self._block_hashes[key] = block_hash(index, block)
        return value

    def state_digest(self, landed: list[tuple[FsOp, list[int] | None]]) -> int:
        """The digest of the durable tree with `landed` applied in order (all of a write, or only `units`)."""
        tree = self.tree
        files: dict[int, _SparseFile] = {}
        metadata = []
        for op, units in landed:
            if op.kind == WRITE or op.kind == SIZE:
                sparse = files.get(op.inode)
                if sparse is None:
                    # A file's size before its first landed data op is the durable one (a new link keeps it).
                    sparse = files[op.inode] = _SparseFile(tree.data.get(op.inode, b""), tree.sizes.get(op.inode, 0))
                if op.kind == SIZE:
                    sparse.set_size(op.size)
                else:
                    pieces = self._pieces.get(op.op_id)
                    if pieces is None:
                        pieces = self._pieces[op.op_id] = _block_pieces(op)
                    sparse.write_pieces(pieces if units is None else [pieces[unit] for unit in units])
            else:
                metadata.append(op)
        if metadata:
            key = tuple(op.op_id for op in metadata)
            known = self._structures.get(key)
            if known is None:
                structure = FsTree()
                structure.entries = {inode: dict(names) for inode, names in tree.entries.items()}
                structure.sizes = dict(tree.sizes)
                for op in metadata:
                    structure.apply(op)
                known = self._structures[key] = (_entry_list(structure.walk()), structure.sizes)
            entries, sizes = known
        else:
            if self._entries is None:
                self._entries = _entry_list(tree.walk())
            entries, sizes = self._entries, tree.sizes

        def file_sum(inode: int) -> tuple[int, int]:
            sparse = files.get(inode)
            if sparse is None:
                size, total = self._durable_sum(inode)
                return sizes.get(inode, size), total
            durable = self._durable_blocks(inode)
            total = self._sums[inode]
            for index in sparse.changed_blocks():
                total += self._block_hash(index, sparse.visible_block(index)) - durable.get(index, 0)
            return sparse.size, total % HASH_MODULUS

        return _digest(entries, file_sum)

    def _pieces_of(self, op: FsOp) -> list:
        pieces = self._pieces.get(op.op_id)
        if pieces is None:
            pieces = self._pieces[op.op_id] = _block_pieces(op)
        return pieces

    def near_digest(self, base_ops: tuple[FsOp, ...], deviations: dict[int, list[int] | None]) -> int:
        """`state_digest` of every op of `base_ops` (id order) landed whole, except the write micro-ops of
        `deviations` (op id -> the units that landed, None: lost), in O(the blocks those writes touch), or
        O(a file's data micro-ops) for a file whose size micro-op was lost: the states of a point with hundreds
        of pending micro-ops mostly deviate from all-landed in one or two. Lost metadata micro-ops (links,
        unlinks, renames) change only which names reach which files: their tree is built once per set lost.
        Requires: every deviated op is a micro-op of `base_ops`, lost (None) unless it is a WRITE."""
        base = self._base
        if base is None or base.ops is not base_ops:
            base = self._base = _BaseState(self, base_ops)
            self._extend_chain(base.ids)
        lost_metadata = tuple(sorted(op_id for op_id in deviations if base.by_id[op_id].kind not in (WRITE, SIZE)))
        structure = base.structure(lost_metadata)
        # Most deviations of a long pending list change nothing (a page rewritten later, a journal unlinked):
        # the state is the one without them, hashed once per point.
        key = tuple(sorted((op_id, units if units is None else tuple(units)) for op_id, units in deviations.items()
                           if not SKIP_HIDDEN or base.visible(op_id, deviations, structure[2])))
        digest = base.memo.get(key)
        if digest is None:
            if len(base.memo) >= NEAR_DIGESTS_CACHED_MAX:
                base.memo.clear()
            chain_key = _chain_key(base.ids, key)
            digest = self._chain_memo.get(chain_key)
            if digest is None:
                if len(self._chain_memo) >= NEAR_DIGESTS_CACHED_MAX:
                    self._chain_memo.clear()
                digest = self._chain_memo[chain_key] = self._near_digest(
                    base, {op_id: deviations[op_id] for op_id, _ in key}, structure)
            base.memo[key] = digest
        return digest

    def _extend_chain(self, ids: tuple[int, ...]) -> None:
        """A point with pending micro-ops `ids` (ascending) at the current durable tree: the chain goes on if
        one of the two lists is a prefix of the other, else its digests are dropped."""
        chain = self._chain
        if ids[:len(chain)] == chain:
            self._chain = ids
        elif chain[:len(ids)] != ids:
            self._chain, self._chain_memo = ids, {}

    def _near_digest(self, base: "_BaseState", deviations: dict[int, list[int] | None], structure) -> int:
        changed: dict[int, tuple[int, int]] = {}
        by_inode: dict[int, set[int]] = {}
        resized: set[int] = set()
        for op_id in deviations:
            op = base.by_id[op_id]
            if op.kind == SIZE:
                resized.add(op.inode)
            elif op.kind != WRITE:
                assert deviations[op_id] is None, (op, deviations[op_id])    # in `structure`
            else:
                by_inode.setdefault(op.inode, set()).update(piece[0] for piece in self._pieces_of(op))
        for inode in resized:
            by_inode.pop(inode, None)
            changed[inode] = base.file_under(inode, deviations)
        for inode, blocks in by_inode.items():
            total = base.sums[inode][1]
            for index in blocks:
                total += base.hash_under(inode, index, deviations) - base.landed_hash(inode, index)
            changed[inode] = (base.sums[inode][0], total % HASH_MODULUS)
        sums = base.sums
        entries, sizes, _ = structure

        def file_sum(inode: int) -> tuple[int, int]:
            if inode in changed:
                return changed[inode]
            return sums[inode] if inode in sums else self._durable_sum_sized(inode, sizes)

        return _digest(entries, file_sum)

    def _durable_sum_sized(self, inode: int, sizes: dict) -> tuple[int, int]:
        size, total = self._durable_sum(inode)
        return sizes.get(inode, size), total


def _chain_key(ids: tuple[int, ...], key: tuple) -> tuple:
    """A point-free name of the state `key` names at a point whose pending micro-ops are `ids`: every one landed
    but the deviations of `key` ((op id, units or None: lost), by id). The micro-ops lost at the end of `ids` are
    dropped, and the state named by the last one that is not lost: a state of every point of the chain whose
    pending list reaches that micro-op (equal names, equal states)."""
    if not key or key[-1][0] != ids[-1] or key[-1][1] is not None:
        return (ids[-1] if ids else None, key)
    lost = {op_id for op_id, units in key if units is None}
    end = len(ids)
    while end and ids[end - 1] in lost:
        end -= 1
    return (ids[end - 1] if end else None, key[:len(key) - (len(ids) - end)])


class _BaseState:
    """The state with every op of `ops` landed: its sparse files, per-file (size, sum), entries, and per file
    the data micro-ops in id order, so one block of a nearby state is rebuilt from the ops that touch it."""

    def __init__(self, hashed: HashedTree, ops: tuple[FsOp, ...]):
        self.ops, self.hashed = ops, hashed
        self.ids = tuple(op.op_id for op in ops)
        self.by_id = {op.op_id: op for op in ops}
        tree = hashed.tree
        self.files: dict[int, _SparseFile] = {}
        self.data_ops: dict[int, list[FsOp]] = {}
        metadata = []
        for op in ops:
            if op.kind == WRITE or op.kind == SIZE:
                sparse = self.files.get(op.inode)
                if sparse is None:
                    sparse = self.files[op.inode] = _SparseFile(tree.data.get(op.inode, b""),
                                                                tree.sizes.get(op.inode, 0))
                    self.data_ops[op.inode] = []
                self.data_ops[op.inode].append(op)
                if op.kind == SIZE:
                    sparse.set_size(op.size)
                else:
                    sparse.write_pieces(hashed._pieces_of(op))
            else:
                metadata.append(op)
        self.metadata = metadata
        self._structures: dict[tuple, tuple] = {}
        self.entries, self.sizes, _ = self.structure(())
        self._coverers: dict[int, tuple[int, ...]] = {}   # write op id -> later ops that hide all it writes
        self.memo: dict[tuple, int] = {}                  # visible deviations -> digest
        self._block_ops: dict[tuple[int, int], list] = {}  # (inode, block) -> `_touching`
        # (inode, block, its deviated micro-ops) -> the block's hash: a state's other deviations do not change it
        self._hashes_under: dict[tuple, int] = {}
        self._landed_hashes: dict[tuple[int, int], int] = {}     # (inode, block) -> its hash, all landed
        self.sums: dict[int, tuple[int, int]] = {}
        for inode, sparse in self.files.items():
            durable = hashed._durable_blocks(inode)
            total = hashed._sums[inode]
            for index in sparse.changed_blocks():
                total += hashed._block_hash(index, sparse.visible_block(index)) - durable.get(index, 0)
            self.sums[inode] = (sparse.size, total % HASH_MODULUS)

    def structure(self, lost: tuple[int, ...]) -> tuple[list, dict, set]:
        """(entries, sizes, reachable inodes) of the tree with every metadata micro-op landed but `lost`."""
        known = self._structures.get(lost)
        if known is None:
            tree = self.hashed.tree
            structure = FsTree()
            structure.entries = {inode: dict(names) for inode, names in tree.entries.items()}
            structure.sizes = dict(tree.sizes)
            for op in self.metadata:
                if op.op_id not in lost:
                    structure.apply(op)
            entries = _entry_list(structure.walk())
            if len(self._structures) >= STRUCTURES_CACHED_MAX:
                self._structures.clear()
            known = self._structures[lost] = (entries, structure.sizes, {inode for _, _, inode in entries})
        return known

    def visible(self, op_id: int, deviations: dict, reachable: set) -> bool:
        """Whether deviating micro-op `op_id` (losing or tearing it) can change the state at all, given the
        other `deviations`: not if its file is unreachable (not in `reachable`, the state's tree's), or a later
        micro-op that lands whole hides it (`_hiding`). (May say True for a deviation that changes nothing;
        never False for one that changes something.)"""
        op = self.by_id[op_id]
        if op.kind not in (WRITE, SIZE):
            return True
        if op.inode not in reachable:
            return False
        coverers = self._coverers.get(op_id)
        if coverers is None:
            coverers = self._coverers[op_id] = self._hiding(op)
        return not any(coverer not in deviations for coverer in coverers)

    def _hiding(self, op: FsOp) -> tuple[int, ...]:
        """The later micro-ops of `op`'s file any one of which, landed whole, makes losing or tearing `op` change
        nothing: for a write, a write over all its bytes or a cut at or below its first byte; for a size micro-op
        that cuts no byte there can be (at or above the durable data and every earlier write's end), any later
        size micro-op (the file's size is the last one's)."""
        ops = self.data_ops[op.inode]
        position = ops.index(op)
        later = ops[position + 1:]
        if op.kind == SIZE:
            reach = max([len(self.hashed.tree.data.get(op.inode, b""))]
                        + [other.offset + len(other.data) for other in ops[:position] if other.kind == WRITE])
            return tuple(other.op_id for other in later if other.kind == SIZE) if op.size >= reach else ()
        start, end = op.offset, op.offset + len(op.data)
        return tuple(other.op_id for other in later
                     if (other.kind == SIZE and other.size <= start)
                     or (other.kind == WRITE and other.offset <= start and other.offset + len(other.data) >= end))

    def file_under(self, inode: int, deviations: dict[int, list[int] | None]) -> tuple[int, int]:
        """(size, content sum) of file `inode` with the deviated micro-ops lost or torn (all its ops replayed)."""
        hashed, tree = self.hashed, self.hashed.tree
        sparse = _SparseFile(tree.data.get(inode, b""), tree.sizes.get(inode, 0))
        for op in self.data_ops[inode]:
            deviated = op.op_id in deviations
            units = deviations[op.op_id] if deviated else None
            if deviated and units is None:          # lost
                continue
            if op.kind == SIZE:
                sparse.set_size(op.size)
                continue
            pieces = hashed._pieces_of(op)
            sparse.write_pieces([pieces[unit] for unit in units] if deviated else pieces)
        durable = hashed._durable_blocks(inode)
        total = hashed._sums[inode]
        for index in sparse.changed_blocks():
            total += hashed._block_hash(index, sparse.visible_block(index)) - durable.get(index, 0)
        return sparse.size, total % HASH_MODULUS

    def hash_under(self, inode: int, index: int, deviations: dict[int, list[int] | None]) -> int:
        """The hash of `block_under(inode, index, deviations)`, remembered by the deviations of the micro-ops
        that touch that block (the block is a function of those alone)."""
        ops = self._block_ops.get((inode, index))
        if ops is None:
            ops = self._block_ops[(inode, index)] = self._touching(inode, index)
        key = (inode, index, tuple((op.op_id, None if deviations[op.op_id] is None else tuple(deviations[op.op_id]))
                                   for op, piece, _ in ops if piece is not None and op.op_id in deviations))
        value = self._hashes_under.get(key)
        if value is None:
            if len(self._hashes_under) >= BLOCKS_UNDER_CACHED_MAX:
                self._hashes_under.clear()
            value = self._hashes_under[key] = self.hashed._block_hash(index, self.block_under(inode, index,
                                                                                              deviations))
        return value

    def landed_hash(self, inode: int, index: int) -> int:
        """The hash of block `index` of file `inode` with every micro-op landed."""
        value = self._landed_hashes.get((inode, index))
        if value is None:
            value = self._landed_hashes[(inode, index)] = self.hashed._block_hash(
                index, self.files[inode].visible_block(index))
        return value

    def block_under(self, inode: int, index: int, deviations: dict[int, list[int] | None]) -> bytes:
        """Block `index` of file `inode` as visible with the deviated writes lost or torn."""
        tree = self.hashed.tree
        sparse = _SparseFile(tree.data.get(inode, b""), tree.sizes.get(inode, 0))
        ops = self._block_ops.get((inode, index))
        if ops is None:
            ops = self._block_ops[(inode, index)] = self._touching(inode, index)
        for op, piece, unit in ops:
            if piece is None:
                sparse.set_size(op.size)
                continue
            if op.op_id in deviations:
                units = deviations[op.op_id]
                if units is None or unit not in units:
                    continue
            sparse.write_pieces([piece])
        sparse.size = self.files[inode].size     # no size micro-op of this file deviates (else `file_under`)
        return sparse.visible_block(index)

    def _touching(self, inode: int, index: int) -> list:
        """The data micro-ops of `inode` that can change block `index`, in order: (op, its piece there, unit)
        for a write over it, (op, None, None) for a size micro-op cutting into or below it (one above it
        changes only the size, which is the file's last)."""
        end = (index + 1) * FS_BLOCK_BYTES
        touching = []
        for op in self.data_ops[inode]:
            if op.kind == SIZE:
                if op.size < end:
                    touching.append((op, None, None))
                continue
            pieces = self.hashed._pieces_of(op)
            first = pieces[0][0]
            if first <= index < first + len(pieces):
                touching.append((op, pieces[index - first], index - first))
        return touching
