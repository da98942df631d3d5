"""The file-system model: micro-op logging, persistence models, interposition and its closed gaps."""

import os
import pathlib
import shutil
import tempfile

import pytest

from crashsweep.crash_explorer import SweepSpec
from crashsweep.crash_explorer._recording import record
from crashsweep.disk_model import FsLog, FsTree, Interposer, InterpositionBypass, PersistenceModel, STORE_PATH
from crashsweep.disk_model.fs._log import LINK, RENAME, SIZE, WRITE
from crashsweep.disk_model.fs._session import FD_FIRST, FsSession
from crashsweep.reference import put, sync


@pytest.fixture
def session():
    log = FsLog()
    live = FsSession(FsTree.initial(), log)
    interposer = Interposer(live)
    yield live, interposer
    interposer.close()


def kinds(log):
    return [op.kind for op in log.ops]


def test_pwrite_pread_writev_are_served_by_the_model_not_the_real_os(session):
    live, interposer = session
    with interposer.active():
        fd = os.open(f"{STORE_PATH}/f", os.O_CREAT | os.O_RDWR)
        assert fd >= FD_FIRST
        os.pwrite(fd, b"hello", 3)
        os.writev(fd, [b"ab", b"cd"])
        assert os.pread(fd, 9, 0) == b"abcdello"
        os.fsync(fd)
        os.close(fd)
    assert kinds(live.log)[:1] == [LINK]
    assert [op.data for op in live.log.ops if op.kind == WRITE] == [b"hello", b"abcd"]
    assert ("sync", live.log.ops[0].inode, False) in [event[:3] for event in live.log.events]
    assert not os.path.exists(STORE_PATH)          # nothing reached the real file system


def test_fsync_accepts_a_file_object_and_a_directory_descriptor(session):
    live, interposer = session
    with interposer.active():
        with open(f"{STORE_PATH}/g", "wb") as handle:
            handle.write(b"x")
            handle.flush()
            os.fsync(handle)
        directory = os.open(STORE_PATH, os.O_RDONLY)
        os.fsync(directory)
        os.close(directory)
    syncs = [event for event in live.log.events if event[0] == "sync"]
    assert syncs[0][2] is False and syncs[1][2] is True


def test_truncate_grows_a_file_with_zeros(session):
    live, interposer = session
    with interposer.active():
        with open(f"{STORE_PATH}/h", "wb") as handle:
            handle.write(b"ab")
            handle.truncate(6)
        assert open(f"{STORE_PATH}/h", "rb").read() == b"ab\0\0\0\0"
        assert os.path.getsize(f"{STORE_PATH}/h") == 6
    assert live.log.ops[-1].kind == SIZE and live.log.ops[-1].size == 6


def test_writes_cost_what_they_write_not_the_file_size(session):
    live, interposer = session
    with interposer.active():
        fd = os.open(f"{STORE_PATH}/big", os.O_CREAT | os.O_RDWR)
        os.pwrite(fd, bytes(4 << 20), 0)
        buffer = live.files[fd].object._byte_contents
        os.pwrite(fd, b"z", 100)
        assert live.files[fd].object._byte_contents is buffer     # changed in place, not copied
        os.close(fd)


def test_rename_over_an_existing_file_is_one_atomic_micro_op(session):
    live, interposer = session
    with interposer.active():
        pathlib.Path(f"{STORE_PATH}/a").write_bytes(b"1")
        pathlib.Path(f"{STORE_PATH}/b").write_bytes(b"2")
        os.replace(f"{STORE_PATH}/a", f"{STORE_PATH}/b")
    assert kinds(live.log)[-1] == RENAME
    assert "unlink" not in kinds(live.log)


def test_dbm_dumb_class_bound_os_and_shutil_tempfile_work_on_the_model(session):
    import dbm.dumb
    live, interposer = session
    with interposer.active():
        database = dbm.dumb.open(f"{STORE_PATH}/db", "c")
        database[b"k"] = b"v"
        database.sync()
        database.close()
        shutil.copy(f"{STORE_PATH}/db.dat", f"{STORE_PATH}/copy")
        with tempfile.NamedTemporaryFile(dir=STORE_PATH, delete=False) as handle:
            handle.write(b"t")
        assert sorted(os.listdir(STORE_PATH))[:3] == ["copy", "db.bak", "db.dat"]
    assert dbm.dumb._Database._os is os                          # restored after
    assert not os.path.exists(f"{STORE_PATH}/db.dat")


def test_interposers_alive_at_once_each_serve_their_own_model_and_unpatch(tmp_path):
    """A process-wide interposer (an engine's) stays set up while others come and go."""
    real_open = os.open
    sessions = {name: FsSession(FsTree.initial(), FsLog()) for name in ("long-lived", "first", "second")}
    keeper = Interposer(sessions["long-lived"])
    try:
        for name in ("long-lived", "first", "second", "long-lived"):
            interposer = keeper if name == "long-lived" else Interposer(sessions[name])
            try:
                with interposer.active():
                    with open(f"{STORE_PATH}/{name}-{len(sessions[name].log.ops)}", "wb") as handle:
                        handle.write(name.encode())
                    assert all(entry.startswith(name) for entry in os.listdir(STORE_PATH))
            finally:
                if interposer is not keeper:
                    interposer.close()
            assert os.open is real_open
    finally:
        keeper.close()
    assert os.open is real_open
    assert [op.kind for op in sessions["long-lived"].log.ops].count(WRITE) == 2
    (tmp_path / "real").write_bytes(b"r")                       # the real file system works again
    assert (tmp_path / "real").read_bytes() == b"r"


def test_mmap_is_reported_as_a_bypass_not_silently_untested(session, tmp_path):
    import mmap
    live, interposer = session
    real = tmp_path / "real"
    real.write_bytes(b"x" * 4096)
    fd = os.open(real, os.O_RDWR)
    try:
        with pytest.raises(InterpositionBypass, match="mmap"):
            with interposer.active():
                mmap.mmap(fd, 4096)
    finally:
        os.close(fd)


def test_posix_fsync_of_a_file_leaves_its_directory_entry_pending():
    log = FsLog()
    link = log.add(LINK, 20, directory=4, name="f")
    write = log.add(WRITE, 20, data=b"x")
    pending = {link.op_id: link, write.op_id: write}
    assert PersistenceModel("posix").sync(pending, 20, False) == [write.op_id]
    assert PersistenceModel("ext4-ordered").sync(pending, 20, False) == [link.op_id, write.op_id]
    assert PersistenceModel("posix").sync(pending, 4, True) == [link.op_id]


def test_ext4_ordered_lands_data_before_the_rename_that_exposes_it():
    log = FsLog()
    write = log.add(WRITE, 20, data=b"x" * 10)
    rename = log.add(RENAME, 20, directory=4, name="t", directory2=4, name2="f")
    choice = PersistenceModel("ext4-ordered").normalize({"persist": [rename.op_id]}, (0, 1), log.ops)
    assert choice == {"persist": [write.op_id, rename.op_id]}
    assert PersistenceModel("posix").normalize({"persist": [1]}, (0, 1), log.ops) == {"persist": [1]}


def test_ext4_ordered_never_lands_a_rewrite_over_old_bytes_whose_truncate_was_lost():
    """open(path, "w") on ext4: if the truncate did not commit, the old contents stay whole (the new data
    went to new blocks); a posix crash may mix them."""
    log = FsLog()
    truncate = log.add(SIZE, 20, size=0)
    write = log.add(WRITE, 20, data=b"new" * 100)
    size = log.add(SIZE, 20, size=300)
    ext4 = PersistenceModel("ext4-ordered")
    pending = (truncate.op_id, write.op_id, size.op_id)
    assert ext4.normalize({"persist": [write.op_id]}, pending, log.ops) == {}
    assert ext4.normalize({"torn": [[write.op_id, [0]]]}, pending, log.ops) == {}
    assert ext4.normalize({"persist": [truncate.op_id, write.op_id]}, pending, log.ops) == \
        {"persist": [truncate.op_id, write.op_id]}
    assert PersistenceModel("posix").normalize({"persist": [write.op_id]}, pending, log.ops) == \
        {"persist": [write.op_id]}


def test_posix_fsync_of_a_directory_also_makes_the_other_directory_of_a_rename_durable():
    """docs/fs-models.md, posix: a rename is one journal transaction, so syncing either directory commits it."""
    log = FsLog()
    rename = log.add(RENAME, 20, directory=4, name="t", directory2=5, name2="f")
    other = log.add(LINK, 21, directory=5, name="g")
    unrelated = log.add(LINK, 22, directory=6, name="h")
    pending = {op.op_id: op for op in (rename, other, unrelated)}
    assert PersistenceModel("posix").sync(pending, 4, True) == [rename.op_id, other.op_id]


def test_ext4_ordered_metadata_persists_as_a_prefix_and_any_fsync_commits_all_of_it():
    """docs/fs-models.md, ext4-ordered: one journal, committed in order, by any fsync."""
    log = FsLog()
    first = log.add(LINK, 20, directory=4, name="a")
    second = log.add(LINK, 21, directory=4, name="b")
    third = log.add(SIZE, 22, size=0)
    ext4 = PersistenceModel("ext4-ordered")
    pending = (first.op_id, second.op_id, third.op_id)
    assert ext4.normalize({"persist": [second.op_id, third.op_id]}, pending, log.ops) == {}
    assert ext4.normalize({"persist": [first.op_id, third.op_id]}, pending, log.ops) == {"persist": [first.op_id]}
    assert ext4.sync({op.op_id: op for op in log.ops}, 99, False) == [first.op_id, second.op_id, third.op_id]


def test_ext4_ordered_overwrites_of_exposed_data_may_be_lost_or_torn():
    """docs/fs-models.md, ext4-ordered: an overwrite with no metadata after it is not ordered."""
    log = FsLog()
    overwrite = log.add(WRITE, 20, offset=0, data=b"y" * 8192)
    ext4 = PersistenceModel("ext4-ordered")
    assert ext4.normalize({}, (overwrite.op_id,), log.ops) == {}
    assert ext4.normalize({"torn": [[overwrite.op_id, [1]]]}, (overwrite.op_id,), log.ops) == \
        {"torn": [[overwrite.op_id, [1]]]}


def test_strict_keeps_whole_calls_in_order_and_never_tears():
    log = FsLog()
    log.next_call()
    log.add(WRITE, 20, data=b"x")
    log.add(SIZE, 20, size=1)
    log.next_call()
    log.add(WRITE, 21, data=b"y")
    strict = PersistenceModel("strict")
    assert strict.normalize({"persist": [1, 2]}, (0, 1, 2), log.ops) == {}
    assert strict.normalize({"persist": [0, 1, 2]}, (0, 1, 2), log.ops) == {"persist": [0, 1, 2]}
    assert strict.normalize({"torn": [[0, [0]]]}, (0, 1, 2), log.ops) == {}


def test_unknown_fs_model_and_corruption_faults_are_clear_errors():
    from crashsweep.crash_explorer import SpecError
    from crashsweep.disk_model import FaultPlan
    with pytest.raises(SpecError, match="file-system model"):
        SweepSpec(ops=(put(b"a", b"1"), sync()), engine="dbm-dumb", fs_model="ext3").validate()
    with pytest.raises(SpecError, match="crash faults only"):
        SweepSpec(ops=(put(b"a", b"1"), sync()), engine="dbm-dumb",
                  faults=FaultPlan.parse("crash,corrupt")).validate()


def test_recording_a_path_engine_logs_its_file_operations_by_op():
    recording = record(SweepSpec(ops=(put(b"a", b"1"), sync()), engine="tests/engines/fs_engines.py:AtomicReplace"))
    assert recording.failure is None
    assert {op.kind for op in recording.log.ops} >= {LINK, WRITE, SIZE, RENAME}
    assert any(point.durable_count for point in recording.walk.points)


def test_a_crashed_engines_destructor_reaches_neither_the_log_nor_a_real_file(monkeypatch):
    """dbm.dumb's destructor rewrites its index: after a power loss that must not count, or leak."""
    from crashsweep.crash_explorer._recover import recover_state
    from crashsweep.disk_model.fs._log import FS_END

    unraisable = []
    monkeypatch.setattr("sys.unraisablehook", unraisable.append)
    recording = record(SweepSpec(ops=(put(b"a", b"1"), sync(), put(b"b", b"2")), engine="dbm-dumb"))
    assert recording.failure is None
    last_end = max(index for index, event in enumerate(recording.log.events) if event[0] == FS_END)
    assert last_end == len(recording.log.events) - 1            # nothing logged after the last operation
    point = recording.walk.points[-1]
    result = recover_state(recording.context, FsTree.initial(), {}, point.windows, recording.history,
                           point.index, 0)
    assert result["kind"] is None or result["kind"] == "lost-synced-data"
    assert unraisable == []
    assert not os.path.exists("/crashsweep")


def test_a_new_file_never_reuses_the_inode_of_an_unlinked_one():
    """A crash state's tree keeps an unlinked file's data by inode; a new file must not inherit it
    (it did once: SQLite's new journal showed the old journal's header and rolled back garbage)."""
    log = FsLog()
    for kind, fields in ((LINK, dict(directory=4, name="old", entry_kind="file")), (WRITE, dict(offset=0, data=b"stale")),
                         (SIZE, dict(size=5)), ("unlink", dict(directory=4, name="old"))):
        log.add(kind, 40, **fields)
    tree = FsTree.initial()
    for op in log.ops:
        tree.apply(op)
    live = FsSession(tree, FsLog())
    fd = live.open(f"{STORE_PATH}/new", os.O_CREAT | os.O_RDWR)
    live.ftruncate(fd, 5)
    created = [op for op in live.log.ops if op.kind == LINK][0]
    assert created.inode > 40
    state = tree.copy()
    for op in live.log.ops:
        state.apply(op)
    assert state.files()[f"{STORE_PATH}/new"] == bytes(5)


def test_planning_the_first_states_stops_early_and_agrees_with_the_full_plan():
    """Minimization plans only the earliest states: the same ones the full plan has first."""
    from crashsweep.crash_explorer._plan import plan_states

    ops = tuple(op for index in range(6) for op in (put(b"k%d" % index, b"v" * 300), sync()))
    recording = record(SweepSpec(ops=ops, engine="dbm-dumb"))
    full = plan_states(recording)
    first = plan_states(recording, first_states=20)
    assert 20 <= len(first.states) < len(full.states)
    assert len(first.per_point) < len(full.per_point) and not first.exhausted
    earliest = sorted(full.states, key=lambda planned: (planned.point, planned.state_id))
    assert [(p.point, p.image) for p in sorted(first.states, key=lambda p: (p.point, p.state_id))] == \
        [(p.point, p.image) for p in earliest[:len(first.states)]]


def _module_bindings(modules: set[str]) -> dict:
    """(module name, attribute) -> object, for every attribute of every loaded module that a file-system patch
    could set: a module, a function or method, or an object of pyfakefs's or crashsweep's fakes (other values,
    caches and counters, change for their own reasons)."""
    import sys
    import types

    def patchable(value) -> bool:
        return isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                                  types.MethodType, type)) \
            or type(value).__module__.startswith(("pyfakefs", "crashsweep.disk_model"))

    fresh_each_scope = {("pyfakefs.fake_pathlib", "fake_open"),    # a new closure per scope, by design
                        ("tempfile", "tempdir")}                   # tempfile's cache, reset by pyfakefs
    return {(module_name, name): value for module_name, module in list(sys.modules.items())
            if module is not None and module_name in modules
            for name, value in list(getattr(module, "__dict__", {}).items())
            if (module_name, name) not in fresh_each_scope and patchable(value)}


def test_every_scope_patches_exactly_what_the_first_did_and_restores_it_all(session):
    """A scope's resume sets the patches its first scope recorded (not re-found through pyfakefs): the same
    names get the same fakes in every scope, and leaving a scope restores every original."""
    import sys
    live, interposer = session
    modules = set(sys.modules)         # modules a scope imports (and pyfakefs unloads after it) are not compared
    with interposer.active():          # the first scope: pyfakefs finds the patches (and points linecache at
        first = _module_bindings(modules)      # the real open, for good)
    before = _module_bindings(modules)
    seen = [{key: value for key, value in first.items() if before.get(key) is not value}]
    for _ in range(3):
        with interposer.active():
            inside = _module_bindings(modules)
            seen.append({key: value for key, value in inside.items() if before.get(key) is not value})
            assert os.path.exists(STORE_PATH)                       # the model answers
        after = _module_bindings(modules)
        assert {key for key in before if after.get(key) is not before[key]} == set()
    assert len(seen[0]) > 20 and seen[0] == seen[1] == seen[2] == seen[3]
