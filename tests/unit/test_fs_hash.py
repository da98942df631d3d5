"""The incremental state digest of the file-system model equals the digest of the materialized tree."""

from hypothesis import given, settings
from hypothesis import strategies as st

from crashsweep.disk_model import FsLog, FsTree
from crashsweep.disk_model.fs._hash import HashedTree, tree_digest
from crashsweep.disk_model.fs._log import DIRECTORY, FILE, FS_BLOCK_BYTES, LINK, RENAME, SIZE, UNLINK, WRITE

STORE_DIRECTORY = 4
FILES = (20, 21)
NAMES = ("a", "b")
BLOCK = FS_BLOCK_BYTES

offsets = st.sampled_from([0, 1, BLOCK - 1, BLOCK, BLOCK + 7, 3 * BLOCK - 2, 5 * BLOCK])
payloads = st.builds(lambda byte, length: bytes([byte]) * length, st.integers(1, 3),
                     st.sampled_from([1, 5, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 3]))
micro_ops = st.one_of(
    st.tuples(st.just(WRITE), st.sampled_from(FILES), offsets, payloads),
    st.tuples(st.just(SIZE), st.sampled_from(FILES), st.sampled_from([0, 3, BLOCK, BLOCK + 9, 4 * BLOCK + 1])),
    st.tuples(st.just(LINK), st.sampled_from(FILES), st.sampled_from(NAMES)),
    st.tuples(st.just(UNLINK), st.sampled_from(FILES), st.sampled_from(NAMES)),
    st.tuples(st.just(RENAME), st.sampled_from(FILES), st.sampled_from(NAMES), st.sampled_from(NAMES)),
)


def build_log(specs, linked: bool = False) -> FsLog:
    log = FsLog()
    if linked:        # every file starts with a name, so its content is visible
        specs = [(LINK, inode, name) for inode, name in zip(FILES, NAMES)] + list(specs)
    for spec in specs:
        kind, inode = spec[0], spec[1]
        if kind == WRITE:
            log.add(WRITE, inode, offset=spec[2], data=spec[3])
        elif kind == SIZE:
            log.add(SIZE, inode, size=spec[2])
        elif kind == LINK:
            log.add(LINK, inode, directory=STORE_DIRECTORY, name=spec[2], entry_kind=FILE)
        elif kind == UNLINK:
            log.add(UNLINK, inode, directory=STORE_DIRECTORY, name=spec[2])
        else:
            log.add(RENAME, inode, directory=STORE_DIRECTORY, name=spec[2], directory2=STORE_DIRECTORY,
                    name2=spec[3], entry_kind=FILE)
    return log


def durable_prefix(specs, data):
    """A log of `specs` and a drawn prefix of it applied to a durable tree (and its hashed view)."""
    log = build_log(specs, linked=True)
    durable_count = data.draw(st.integers(0, len(log.ops)), label="durable prefix")
    durable = FsTree.initial()
    hashed = HashedTree(durable)
    for op in log.ops[:durable_count]:
        durable.apply(op)
        hashed.changed(op)
    return log, durable_count, durable, hashed


@settings(max_examples=600, deadline=None)
@given(specs=st.lists(micro_ops, min_size=1, max_size=14), data=st.data())
def test_incremental_digest_equals_the_materialized_trees(specs, data):
    log, durable_count, durable, hashed = durable_prefix(specs, data)
    landed = []
    for op in log.ops[durable_count:]:
        fate = data.draw(st.sampled_from(["lost", "landed", "torn"]), label=f"fate of {op.op_id}")
        if fate == "landed":
            landed.append((op, None))
        elif fate == "torn" and op.tear_units > 1:
            units = data.draw(st.lists(st.integers(0, op.tear_units - 1), min_size=1, unique=True).map(sorted))
            landed.append((op, units))
    state = durable.copy()
    for op, units in landed:
        state.apply(op, units)
    assert hashed.state_digest(landed) == tree_digest(state)
    assert hashed.state_digest([]) == tree_digest(durable)       # the cache survived, untouched


def draw_near_state(data, durable, pending, fates):
    """(deviations from all-landed, the landed micro-ops, the materialized state) of one drawn state."""
    deviations, landed = {}, []
    for op in pending:
        fate = data.draw(st.sampled_from(fates), label=f"fate of {op.op_id}")
        if fate == "lost":
            deviations[op.op_id] = None
        elif fate == "torn" and op.kind == WRITE and op.tear_units > 1:
            units = data.draw(st.lists(st.integers(0, op.tear_units - 1), min_size=1, unique=True).map(sorted))
            deviations[op.op_id] = units
            landed.append((op, units))
        else:
            landed.append((op, None))
    state = durable.copy()
    for op, units in landed:
        state.apply(op, units)
    return deviations, landed, state


@settings(max_examples=600, deadline=None)
@given(specs=st.lists(micro_ops, min_size=1, max_size=14), data=st.data())
def test_a_state_near_all_landed_hashes_as_materialized(specs, data):
    """`near_digest` (all pending micro-ops landed but a few writes lost or torn, other micro-ops lost)
    equals the digest of the materialized tree, and of `state_digest` from the durable tree."""
    log, durable_count, durable, hashed = durable_prefix(specs, data)
    pending = tuple(log.ops[durable_count:])
    for _ in range(3):          # several states of one point share its all-landed base
        deviations, landed, state = draw_near_state(data, durable, pending, ["landed", "landed", "lost", "torn"])
        assert hashed.near_digest(pending, deviations) == tree_digest(state) == hashed.state_digest(landed)


@settings(max_examples=400, deadline=None)
@given(specs=st.lists(micro_ops, min_size=2, max_size=14), data=st.data())
def test_states_of_a_chain_of_points_hash_as_materialized(specs, data):
    """The points of one durable tree, one after another (each one's pending micro-ops extend the last one's, or
    start another list: a shorter prefix, one with a micro-op left out): a state whose last micro-ops are lost is
    answered from an earlier point's, and a block from the point's others of the same deviations there — every
    answer equals the materialized tree's digest."""
    log, durable_count, durable, hashed = durable_prefix(specs, data)
    ops = log.ops[durable_count:]
    for _ in range(5):
        end = data.draw(st.integers(0, len(ops)), label="pending micro-ops")
        pending = list(ops[:end])
        if pending and data.draw(st.booleans(), label="leave one out"):
            del pending[data.draw(st.integers(0, len(pending) - 1), label="left out")]
        pending = tuple(pending)
        for _ in range(3):
            deviations, landed, state = draw_near_state(data, durable, pending, ["landed", "lost", "torn"])
            assert hashed.near_digest(pending, deviations) == tree_digest(state) == hashed.state_digest(landed)


@settings(max_examples=400, deadline=None)
@given(specs=st.lists(micro_ops, min_size=1, max_size=14), data=st.data())
def test_a_state_built_in_one_pass_is_the_state_built_op_by_op(specs, data):
    """`FsTree.apply_landed` (a state's overlay in one pass) gives the tree `apply` gives micro-op by micro-op:
    entries, sizes, every file's data (not only what is visible; made when first read, in any order) and the
    inode bound; the durable tree it was copied from is untouched."""
    log, durable_count, durable, _ = durable_prefix(specs, data)
    durable.inode_max()
    before = (repr(durable.entries), repr(durable.sizes), {inode: bytes(d) for inode, d in durable.data.items()})
    _, landed, expected = draw_near_state(data, durable, tuple(log.ops[durable_count:]), ["landed", "lost", "torn"])
    state = durable.copy()
    state.apply_landed(landed)
    assert state.entries == expected.entries and state.sizes == expected.sizes
    # Its files' data is made when first asked for, file by file in any order (`FsTree._settle`).
    for inode in data.draw(st.lists(st.sampled_from(sorted(expected.sizes) or [0]), max_size=3), label="read first"):
        assert state.content(inode) == expected.content(inode)
    shared = durable.copy()
    shared.apply_landed(landed)
    assert {inode: bytes(shared.content_shared(inode)[0]) for inode in expected.sizes} == \
        {inode: expected.content(inode) for inode in expected.sizes}
    assert state.inode_max() == expected.inode_max()
    assert (repr(durable.entries), repr(durable.sizes), {inode: bytes(d) for inode, d in durable.data.items()}) == before


tail_writes = st.lists(st.tuples(st.just(WRITE), st.sampled_from(FILES), offsets, payloads), min_size=1, max_size=2)
tail_sizes = st.lists(st.tuples(st.just(SIZE), st.sampled_from(FILES), st.sampled_from([0, 3, BLOCK, BLOCK + 9])),
                      max_size=1)


@settings(max_examples=400, deadline=None)
@given(specs=st.builds(lambda ops, sizes, writes: ops + sizes + writes, st.lists(micro_ops, max_size=12), tail_sizes,
                       tail_writes), data=st.data())
def test_the_unseen_tail_of_a_point_changes_no_state(specs, data):
    """`FsDurableImage.unseen_tail`: the point's last pending writes it names (past every size their file can
    have) leave every state as it is, whatever their fate — the same tree digest landed, torn or lost."""
    from crashsweep.crash_explorer._crash_points import CrashPoint, PointWalk
    from crashsweep.crash_explorer._fs_points import FsDurableImage
    from crashsweep.disk_model import PersistenceModel
    log, durable_count, _, _ = durable_prefix(specs, data)
    walk = PointWalk([], list(range(len(log.ops))), {})
    image = FsDurableImage(walk, log, PersistenceModel.named("strict"), hashed=False)
    image.advance(durable_count)
    point = CrashPoint(0, 0, durable_count, tuple(range(durable_count, len(log.ops))), ((0, 0),), 0)
    unseen = image.unseen_tail(point)
    pending = [log.ops[op_id] for op_id in point.pending]
    _, landed, state = draw_near_state(data, image.tree, tuple(pending), ["landed", "lost", "torn"])
    tail = {op.op_id for op in pending[len(pending) - unseen:]} if unseen else set()
    without = image.tree.copy()
    for op, units in landed:
        if op.op_id not in tail:
            without.apply(op, units)
    assert tree_digest(state) == tree_digest(without)
    if unseen < len(pending):           # the write before the tail is not unseen in every state
        assert pending[len(pending) - unseen - 1].kind != WRITE or unseen_is_tight(image, point, unseen)
    # Asked point after point (each one's pending micro-ops a prefix of the next's, then a shorter list), one
    # image answers as a fresh one would (it keeps the sizes of the last point's pending micro-ops).
    ends = list(range(len(point.pending) + 1)) + [data.draw(st.integers(0, len(point.pending)), label="back to")]
    for end in ends:
        shorter = CrashPoint(0, 0, durable_count, point.pending[:end], ((0, 0),), 0)
        fresh = FsDurableImage(walk, log, PersistenceModel.named("strict"), hashed=False)
        fresh.advance(durable_count)
        assert image.unseen_tail(shorter) == fresh.unseen_tail(shorter)


def unseen_is_tight(image, point, unseen) -> bool:
    """The micro-op before the tail is a write some size of its file reaches (it may be seen)."""
    ops, pending = image.ops, point.pending
    index = len(pending) - unseen - 1
    op = ops[pending[index]]
    sizes = [image.tree.sizes.get(op.inode, 0)] + [ops[other].size for other in pending[:index]
                                                  if ops[other].kind == SIZE and ops[other].inode == op.inode]
    return op.offset < max(sizes)


rewrites = st.one_of(      # writes over a few ranges of one or two blocks, so later ones often hide earlier ones
    st.tuples(st.just(WRITE), st.sampled_from(FILES), st.sampled_from([0, 1, BLOCK - 1, BLOCK]),
              st.builds(lambda byte, length: bytes([byte]) * length, st.integers(1, 4),
                        st.sampled_from([1, 2, BLOCK, BLOCK + 1]))),
    st.tuples(st.just(SIZE), st.sampled_from(FILES), st.sampled_from([0, 1, BLOCK, 2 * BLOCK + 1])),
    st.tuples(st.just(UNLINK), st.sampled_from(FILES), st.sampled_from(NAMES)),
    st.tuples(st.just(LINK), st.sampled_from(FILES), st.sampled_from(NAMES)),
    st.tuples(st.just(RENAME), st.sampled_from(FILES), st.sampled_from(NAMES), st.sampled_from(NAMES)),
)


@settings(max_examples=400, deadline=None)
@given(specs=st.lists(rewrites, min_size=2, max_size=12), data=st.data())
def test_deviations_that_change_nothing_are_recognized_exactly(specs, data):
    """`near_digest` skips deviations a later landed micro-op hides (a rewrite of the same bytes, a cut below
    them, an unlinked file) and remembers digests by the deviations left: every state it answers so still equals
    the materialized tree's digest, whichever of the hiding micro-ops are themselves lost or torn (a lost unlink
    makes a file's writes visible again)."""
    log, durable_count, durable, hashed = durable_prefix(specs, data)
    pending = tuple(log.ops[durable_count:])
    for _ in range(8):
        deviations, landed, state = draw_near_state(data, durable, pending, ["landed", "lost", "torn"])
        assert hashed.near_digest(pending, deviations) == tree_digest(state)


TRICKY = {      # (durable micro-ops, landed micro-ops) that once hashed wrong in a mutant
    "truncate then grow again: truncated bytes stay gone": (
        [(WRITE, 20, 0, b"\1" * (2 * BLOCK + 3)), (SIZE, 20, 4 * BLOCK + 1)], [(SIZE, 20, 0), (SIZE, 20, 4 * BLOCK + 1)]),
    "shrink inside the first block": ([(WRITE, 20, 0, b"\2" * (BLOCK + 1)), (SIZE, 20, BLOCK + 1)], [(SIZE, 20, 3)]),
    "size lands without its data": ([(WRITE, 20, 0, b"\3" * 5), (SIZE, 20, 5)], [(SIZE, 20, BLOCK + 9)]),
    "data lands without its size, then the size": ([(WRITE, 20, BLOCK, b"\1" * 9)], [(SIZE, 20, BLOCK + 9)]),
    "torn write across blocks": ([(SIZE, 20, 3 * BLOCK)], [(WRITE, 20, 1, b"\2" * (2 * BLOCK))]),
    "write, truncate, grow: the written bytes are gone too": (
        [(SIZE, 20, 2)], [(WRITE, 20, 0, b"\3" * 5), (SIZE, 20, 0), (SIZE, 20, BLOCK)]),
    "rename over a file": ([(WRITE, 21, 0, b"\1"), (SIZE, 21, 1)], [(RENAME, 21, "b", "a")]),
    "a small write, a cut above it, growth: durable bytes past the cut stay gone": (
        [(WRITE, 20, 0, b"\4" * (2 * BLOCK)), (SIZE, 20, 2 * BLOCK)],
        [(WRITE, 20, 0, b"\5" * 9), (SIZE, 20, BLOCK // 2), (SIZE, 20, 2 * BLOCK)]),
}


def test_tricky_states_hash_as_materialized():
    for name, (durable_specs, landed_specs) in TRICKY.items():
        log = build_log(list(durable_specs) + list(landed_specs), linked=True)
        split = len(FILES) + len(durable_specs)
        durable = FsTree.initial()
        hashed = HashedTree(durable)
        for op in log.ops[:split]:
            durable.apply(op)
            hashed.changed(op)
        for units in (None, [0]):
            landed = [(op, units if op.tear_units > 1 else None) for op in log.ops[split:]]
            state = durable.copy()
            for op, op_units in landed:
                state.apply(op, op_units)
            assert hashed.state_digest(landed) == tree_digest(state), (name, units)


def test_digest_sees_content_size_and_names_but_not_inode_numbers():
    one, two = FsTree.initial(), FsTree.initial()
    for tree, inode in ((one, 20), (two, 30)):
        tree.apply(build_log([(LINK, inode, "a")]).ops[0])
        tree.apply(build_log([]).add(WRITE, inode, offset=0, data=b"x"))
        tree.apply(build_log([]).add(SIZE, inode, size=1))
    assert tree_digest(one) == tree_digest(two)
    two.apply(build_log([]).add(SIZE, 30, size=2))                 # a zero byte more is visible
    assert tree_digest(one) != tree_digest(two)
    renamed = one.copy()
    renamed.apply(build_log([]).add(RENAME, 20, directory=STORE_DIRECTORY, name="a", directory2=STORE_DIRECTORY,
                                    name2="b", entry_kind=FILE))
    assert tree_digest(renamed) != tree_digest(one)
    assert DIRECTORY in {kind for _, kind, _ in one.walk()}


@settings(max_examples=300, deadline=None)
@given(specs=st.lists(micro_ops, min_size=1, max_size=14), data=st.data())
def test_the_highest_inode_a_tree_names_is_kept_as_micro_ops_apply_and_trees_copy(specs, data):
    """`FsTree.inode_max` (a state's walk makes new files above it), whenever it was first asked for and through
    copies, is no lower than counting the tree again, and no higher than the inodes micro-ops ever named."""
    def counted(tree: FsTree) -> int:
        again = tree.copy()
        again._inode_max = None
        return again.inode_max()

    tree, named = FsTree.initial(), 4
    for op in build_log(specs, linked=data.draw(st.booleans(), label="linked")).ops:
        if data.draw(st.booleans(), label="ask"):
            assert counted(tree) <= tree.inode_max() <= max(named, counted(tree))
        if data.draw(st.booleans(), label="copy"):
            tree = tree.copy()
        tree.apply(op, None)
        named = max(named, op.inode)
    assert counted(tree) <= tree.inode_max() <= max(named, counted(tree))


@settings(max_examples=300, deadline=None)
@given(durable_length=st.sampled_from([0, 1, 3, BLOCK - 1, BLOCK + 5]),
       pending=st.lists(st.one_of(
           st.tuples(st.just(WRITE), st.sampled_from([0, 2, BLOCK - 3, BLOCK + 7, 2 * BLOCK, 3 * BLOCK + 1]),
                     st.sampled_from([1, 6, BLOCK, 2 * BLOCK + 3]), st.lists(st.integers(0, 3), max_size=3)),
           st.tuples(st.just(SIZE), st.sampled_from([0, 2, BLOCK + 1, 5 * BLOCK]))), min_size=1, max_size=5))
def test_a_files_deferred_writes_make_the_bytes_apply_makes(durable_length, pending):
    """One file's landed writes (whole or torn: some of their units) and size micro-ops, made when the file is
    first read (`FsTree._settle`), give the data `apply` gives op by op: zeros where a write lands past the data's
    end, exactly the units that landed, nothing past a truncation."""
    log = FsLog()
    log.add(LINK, 20, directory=STORE_DIRECTORY, name="a", entry_kind=FILE)
    if durable_length:
        log.add(WRITE, 20, offset=0, data=(bytes(range(1, 200)) * (durable_length // 199 + 1))[:durable_length])
    log.add(SIZE, 20, size=6 * BLOCK)                       # (every byte visible)
    durable_count = len(log.ops)
    landed = []
    for index, spec in enumerate(pending):
        if spec[0] == WRITE:
            log.add(WRITE, 20, offset=spec[1], data=bytes([index + 1]) * spec[2])
            op = log.ops[-1]
            units = sorted({unit % op.tear_units for unit in spec[3]}) or None
            landed.append((op, units))
        else:
            log.add(SIZE, 20, size=spec[1])
            landed.append((log.ops[-1], None))
    durable = FsTree.initial()
    for op in log.ops[:durable_count]:
        durable.apply(op)
    expected = durable.copy()
    for op, units in landed:
        expected.apply(op, units)
    state = durable.copy()
    state.apply_landed(landed)
    assert state.content(20) == expected.content(20)
    assert bytes(state.data[20]) == bytes(expected.data[20])
