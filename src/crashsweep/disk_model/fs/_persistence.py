"""Persistence models of the file-system model (DESIGN §3; docs/fs-models.md gives the sources).

A model answers two questions about the micro-ops of an `FsLog`:
1. `sync`: which pending micro-ops does an fsync / fdatasync of a file, or an fsync
   of a directory, make durable?
2. `normalize`: which sets of pending micro-ops (each landed whole, torn, or lost)
   can a crash really leave on disk? The explorer enumerates choices with its
   generic strategies; `normalize` maps each onto the nearest state the model
   allows, and equal results are merged by image hash.

Models, weakest first:
- `posix`: an fsync makes durable only that file's data and size; an fsync of a
  directory only that directory's entries (and, because a rename is one journal
  transaction, the entries of the other directory a rename touched). Anything not
  synced may be lost, reordered, or torn at block granularity; a size may persist
  without its data.
- `ext4-ordered`: metadata (entries and sizes) persists in order, as a prefix, and
  any fsync commits all metadata before it (one journal); file data reaches disk
  before the metadata that exposes it (a size, a new entry, a rename of the
  inode), so no garbage or zeros are exposed; data written after a truncate lands
  only if the truncate did (new blocks, never the old ones in place); overwrites
  of data already exposed may still be lost or torn.
- `strict`: crash states are prefixes of the sequence of calls; nothing tears.

Invariant the explorer relies on: a micro-op made durable never has an earlier
*pending* micro-op it does not commute with (same inode's data or size, same
directory's entries), so durable ops may be applied before the chosen pending ones.
"""

from __future__ import annotations

from crashsweep.disk_model.fs._log import ENTRY_KINDS, FILE, LINK, RENAME, SIZE, WRITE, FsOp
from crashsweep.disk_model.errors import DiskModelError

FS_MODELS = ("posix", "ext4-ordered", "strict")
FS_MODEL_DEFAULT = "posix"


def _data_like(op: FsOp) -> bool:
    return op.kind in (WRITE, SIZE)


def _posix_sync(pending: dict[int, FsOp], inode: int, is_dir: bool) -> list[int]:
    if not is_dir:
        return [op_id for op_id, op in pending.items() if _data_like(op) and op.inode == inode]
    directories = {inode}
    changed = True
    while changed:   # a rename ties its two directories together
        changed = False
        for op in pending.values():
            touched = op.directories()
            if op.kind in ENTRY_KINDS and directories.intersection(touched) and not directories.issuperset(touched):
                directories.update(touched)
                changed = True
    return [op_id for op_id, op in pending.items()
            if op.kind in ENTRY_KINDS and directories.intersection(op.directories())]


def _exposes(op: FsOp) -> int | None:
    """The inode whose data an ext4 metadata op exposes (a size, a new file entry, a rename), or None."""
    if op.kind == SIZE or op.kind == RENAME or (op.kind == LINK and op.entry_kind == FILE):
        return op.inode
    return None


def _ext4_sync(pending: dict[int, FsOp], inode: int, is_dir: bool) -> list[int]:
    durable = {op_id for op_id, op in pending.items() if op.kind != WRITE}     # the journal commits everything
    exposed = {_exposes(op) for op in pending.values() if op.kind != WRITE} - {None}
    if not is_dir:
        exposed.add(inode)
    last_metadata = max(durable, default=-1)
    durable.update(op_id for op_id, op in pending.items()
                   if op.kind == WRITE and (op.inode == inode and not is_dir
                                             or op.inode in exposed and op_id < last_metadata))
    return sorted(durable)


def _ext4_normalize(choice: dict, pending: tuple[int, ...], ops: list[FsOp]) -> dict:
    landed = set(choice.get("persist", ()))
    torn = {rid: offsets for rid, offsets in choice.get("torn", ())}
    metadata = [rid for rid in pending if ops[rid].kind != WRITE]
    kept: list[int] = []
    for rid in metadata:                       # the journal: a prefix of the metadata
        if rid not in landed:
            break
        kept.append(rid)
    for rid in metadata[len(kept):]:
        landed.discard(rid)
    truncating = _truncating_sizes(ops)
    lost_truncates = [rid for rid in metadata[len(kept):] if rid in truncating]
    for rid in pending:                        # a rewrite after a truncate that did not persist: new blocks
        if ops[rid].kind == WRITE and (rid in landed or rid in torn) and any(
                other < rid and ops[other].inode == ops[rid].inode for other in lost_truncates):
            landed.discard(rid)
            torn.pop(rid, None)
    for rid in kept:                           # data before the metadata that exposes it
        exposed = _exposes(ops[rid])
        if exposed is None:
            continue
        for other in pending:
            if other < rid and ops[other].kind == WRITE and ops[other].inode == exposed:
                landed.add(other)
                torn.pop(other, None)
    return _choice(landed, torn)


_truncating_cache: dict[int, tuple[int, set[int]]] = {}
TRUNCATING_CACHE_MAX = 64


def _truncating_sizes(ops: list[FsOp]) -> set[int]:
    """Ids of the size micro-ops that shrink their file (a truncate, `open(path, "w")`, O_TRUNC): on ext4 the
    data written after one goes to newly allocated blocks, reachable only once the truncate has committed
    (data=ordered, and auto_da_alloc for truncate-then-rewrite), never over the old bytes in place."""
    cached = _truncating_cache.get(id(ops))
    if cached is not None and cached[0] == len(ops):
        return cached[1]
    sizes: dict[int, int] = {}
    truncating = set()
    for op in ops:
        if op.kind == SIZE:
            if op.size == 0 or op.size < sizes.get(op.inode, op.size):
                truncating.add(op.op_id)
            sizes[op.inode] = op.size
        elif op.kind == WRITE:
            sizes[op.inode] = max(sizes.get(op.inode, 0), op.offset + len(op.data))
    if len(_truncating_cache) >= TRUNCATING_CACHE_MAX:
        _truncating_cache.clear()
    _truncating_cache[id(ops)] = (len(ops), truncating)
    return truncating


def _strict_normalize(choice: dict, pending: tuple[int, ...], ops: list[FsOp]) -> dict:
    landed = set(choice.get("persist", ()))
    calls: list[int] = []
    for rid in pending:
        if not calls or ops[calls[-1]].call != ops[rid].call:
            calls.append(rid)
    keep: set[int] = set()
    for first in calls:                        # whole calls, in order, up to the first not landed
        members = [rid for rid in pending if ops[rid].call == ops[first].call]
        if not all(rid in landed for rid in members):
            break
        keep.update(members)
    return _choice(keep, {})


def _choice(landed: set[int], torn: dict) -> dict:
    choice: dict = {}
    if landed:
        choice["persist"] = sorted(landed)
    if torn:
        choice["torn"] = [[rid, list(offsets)] for rid, offsets in sorted(torn.items()) if rid not in landed]
        if not choice["torn"]:
            del choice["torn"]
    return choice


class PersistenceModel:
    """One named model. Example: `PersistenceModel.named("posix").sync(pending, inode=3, is_dir=False)`."""

    def __init__(self, name: str):
        if name not in FS_MODELS:
            raise DiskModelError(f"unknown file-system model {name!r} (known: {', '.join(FS_MODELS)})")
        self.name = name

    @classmethod
    def named(cls, name: str) -> "PersistenceModel":
        return cls(name)

    @property
    def tears(self) -> bool:
        return self.name != "strict"

    def sync(self, pending: dict[int, FsOp], inode: int, is_dir: bool) -> list[int]:
        """Ids of pending micro-ops an fsync of `inode` makes durable, ascending."""
        if self.name == "strict":
            return sorted(pending)
        if self.name == "ext4-ordered":
            return _ext4_sync(pending, inode, is_dir)
        return sorted(_posix_sync(pending, inode, is_dir))

    @property
    def normalizes(self) -> bool:
        """Whether `normalize` can change a choice (this model forbids some combinations of landed micro-ops)."""
        return self.name in ("strict", "ext4-ordered")

    def normalize(self, choice: dict, pending: tuple[int, ...], ops: list[FsOp]) -> dict:
        """The state this model allows nearest to `choice` (a choice over `pending`)."""
        if self.name == "strict":
            return _strict_normalize(choice, pending, ops)
        if self.name == "ext4-ordered":
            return _ext4_normalize(choice, pending, ops)
        return choice
