"""Crash points and crash images on the file-system model (DESIGN §3, §5).

The same shapes as at block level, so strategies, plans, traces and replay work
unchanged: a micro-op is a "write" whose tear units are file blocks (metadata
micro-ops have one unit); a sync makes durable what the persistence model says.
A choice is normalized by the model (ext4-ordered keeps metadata in order and
data before the metadata exposing it; strict keeps whole calls in order).

Invariants:
- `durable_sequence` lists each batch a sync made durable in id order, and no
  durable micro-op has an earlier pending one it does not commute with (the
  model's promise), so the durable tree plus the chosen pending micro-ops in id
  order is exactly the state's tree;
- the image hash is the state tree's digest (`disk_model/fs/_hash.tree_digest`), computed from the landed
  micro-ops: two states an engine cannot tell apart hash equal.
"""

from __future__ import annotations

from itertools import repeat
from operator import itemgetter

from crashsweep.crash_explorer._crash_points import CrashPoint, PointCollector, PointWalk
from crashsweep.disk_model import FsLog, FsTree, PersistenceModel
from crashsweep.disk_model.fs._hash import HashedTree
from crashsweep.disk_model.fs._log import FS_BEGIN, FS_END, FS_OP, FS_SYNC, SIZE, WRITE, FsOp

NEAR_PENDING_MIN = 8     # points with fewer pending micro-ops hash every state from the durable tree (cheaper there)
from crashsweep.reference import History


def fs_crash_points(log: FsLog, history: History, model: PersistenceModel, ops_offset: int = 0) -> PointWalk:
    """Every distinct crash point of a file-system log. Example: `fs_crash_points(log, history, model).points`."""
    pending: dict[int, FsOp] = {}
    durable_sequence: list[int] = []
    collector = PointCollector(history, ops_offset, -1)
    collector.note(0, 0, ())
    for position, event in enumerate(log.events, start=1):
        if event[0] == FS_OP:
            pending[event[1]] = log.ops[event[1]]
        elif event[0] == FS_SYNC:
            for op_id in model.sync(pending, event[1], event[2]):
                del pending[op_id]
                durable_sequence.append(op_id)
        elif event[0] == FS_BEGIN and event[1] >= 0:
            collector.op_begin(event[1])
        elif event[0] == FS_END and event[1] >= 0:
            collector.op_end(event[1])
        collector.note(position, len(durable_sequence), tuple(pending))
    writes = {op.op_id: (0, op.tear_units) for op in log.ops}
    points = collector.points()
    return PointWalk(points, durable_sequence, writes)


class FsDurableImage:
    """The durable tree at successive crash points, and the tree of each state. Same use as `DurableImage`.

    An overlay is the list of landed micro-ops (`(FsOp, units or None)`, id order): hashing
    it touches only the blocks they change; `snapshot`/`view` build the state's tree.
    Requires: `advance` is called with non-decreasing counts; an overlay is used before the next `advance`.
    """

    def __init__(self, walk: PointWalk, log: FsLog, model: PersistenceModel, base: FsTree | None = None,
                 hashed: bool = True):
        self.walk, self.ops, self.model = walk, log.ops, model
        self.tree = (base if base is not None else FsTree.initial()).copy()
        self.hashes = HashedTree(self.tree)
        self.applied = 0
        self.hashed = hashed
        self.data: dict = {}    # block-level corruption does not apply to the file-system model
        self._base_ops: dict[tuple, tuple] = {}    # a point's pending ids -> its micro-ops (for `point_hash`)
        self._sizes_of_pending: tuple = ((), {})    # `_pending_sizes` of the last point asked about

    def advance(self, count: int) -> None:
        assert count >= self.applied, (count, self.applied)
        for op_id in self.walk.durable_sequence[self.applied:count]:
            op = self.ops[op_id]
            self.tree.apply(op)
            self.hashes.changed(op)
        self.applied = count

    def normalize(self, point: CrashPoint, choice: dict) -> dict:
        return self.model.normalize(choice, point.pending, self.ops)

    def overlay(self, choice: dict) -> list[tuple[FsOp, list[int] | None]]:
        ops = self.ops
        torn = choice.get("torn")
        if not torn:
            return [(ops[op_id], None) for op_id in sorted(choice.get("persist", ()))]
        landed = [(op_id, None) for op_id in choice.get("persist", ())]
        landed += [(op_id, list(units)) for op_id, units in torn]
        landed.sort(key=itemgetter(0))      # (stable: as `sorted` by id)
        return [(ops[op_id], units) for op_id, units in landed]

    def state_hash(self, overlay: list, choice: dict) -> int:
        return self.hashes.state_digest(overlay)

    def point_hash(self, point: CrashPoint, choice: dict) -> int:
        """`state_hash` of a choice at `point`; a choice that lands most pending micro-ops (the others lost, or
        torn writes) is hashed from the point's all-landed state, in O(the blocks those writes touch)."""
        persist = choice.get("persist", ())
        pending = point.pending
        if len(pending) >= NEAR_PENDING_MIN and 2 * len(persist) >= len(pending) and set(choice) <= {"persist", "torn"}:
            deviations: dict = dict.fromkeys(set(pending).difference(persist))
            for op_id, units in choice.get("torn", ()):
                deviations[op_id] = list(units)
            digest = self.near_hash(point, deviations)
            if digest is not None:
                return digest
        return self.state_hash(self.overlay(choice), choice)

    @property
    def normalizes(self) -> bool:
        """Whether `normalize` can change a choice (the persistence model forbids some)."""
        return self.model.normalizes

    def near_hash(self, point: CrashPoint, deviations: dict) -> int | None:
        """`point_hash` of the choice that lands every pending micro-op of `point` whole except `deviations`
        (op id -> the units that landed, None: lost), without the choice (a list as long as the pending
        micro-ops): None where that hash is not made so (few pending, most deviated, a torn non-write)."""
        pending = point.pending
        if len(pending) < NEAR_PENDING_MIN or 2 * (len(pending) - len(deviations)) < len(pending):
            return None
        ops = self.ops
        if not all(units is None or ops[op_id].kind == WRITE for op_id, units in deviations.items()):
            return None
        base_ops = self._base_ops.get(pending)
        if base_ops is None:
            self._base_ops = {pending: tuple(ops[op_id] for op_id in pending)}
            base_ops = self._base_ops[pending]
        return self.hashes.near_digest(base_ops, deviations)

    def unseen_tail(self, point: CrashPoint) -> int:
        """How many of `point`'s last pending micro-ops no state of it lets an engine see: writes wholly at or
        past every size their file can have there (the durable size and every pending size micro-op before
        them; only a later size micro-op could show them, and none is pending). Landed, torn or lost, such a
        write leaves the state as it was: the point's states are those of the point before it. (A write past
        the end is the first half of an append; its size micro-op comes next.)"""
        pending, ops, tree = point.pending, self.ops, self.tree
        if not pending or ops[pending[-1]].kind != WRITE:
            return 0
        sizes = self._pending_sizes(pending)      # (every size micro-op of `pending` is before its last writes)
        unseen = 0
        for index in range(len(pending) - 1, -1, -1):
            op = ops[pending[index]]
            if op.kind != WRITE or op.offset < max(tree.sizes.get(op.inode, 0), sizes.get(op.inode, 0)):
                break
            unseen += 1
        return unseen

    def _pending_sizes(self, pending: tuple) -> dict[int, int]:
        """inode -> the largest size a size micro-op of `pending` sets, kept from the last point's pending
        micro-ops when these extend them (a chain of points: each one's a prefix of the next's)."""
        known, sizes = self._sizes_of_pending
        if pending[:len(known)] != known:
            known, sizes = (), {}
        ops = self.ops
        for op_id in pending[len(known):]:
            op = ops[op_id]
            if op.kind == SIZE and op.size > sizes.get(op.inode, -1):
                sizes[op.inode] = op.size
        self._sizes_of_pending = (pending, sizes)
        return sizes

    def state_of(self, choice: dict) -> FsTree:
        """`view(overlay(choice))`: the tree of a state to recover now (a worker's), its landed micro-ops fed to
        the tree as the overlay lists them without the list (~2 µs a state of 30). For planned choices, whose torn
        micro-ops are never among their whole ones (`PersistenceModel.normalize`, the strategies)."""
        state = self.tree.copy()
        torn = choice.get("torn")
        if not torn:
            state.apply_landed(zip(map(self.ops.__getitem__, sorted(choice.get("persist", ()))), repeat(None)))
            return state
        units_of = {op_id: list(units) for op_id, units in torn}
        landed = sorted([*choice.get("persist", ()), *units_of])
        state.apply_landed(zip(map(self.ops.__getitem__, landed), map(units_of.get, landed)))
        return state

    def snapshot(self, overlay: list) -> FsTree:
        """The state's tree (copy-on-write: safe to keep after `advance` moves on)."""
        state = self.tree.copy()
        state.apply_landed(overlay)
        return state

    view = snapshot
