"""FsSession.load builds pyfakefs objects from prototypes' attributes (`_Prototypes`): they must be the objects
pyfakefs's own constructors make — every attribute, each stat result's — or an engine on the model would see
another file system than before."""

from __future__ import annotations

import os
import pathlib
import weakref

from pyfakefs import fake_file

from crashsweep.disk_model.fs import _session as session_module
from crashsweep.disk_model.fs._image import ROOT_INODE, FsTree
from crashsweep.disk_model.fs._log import DIRECTORY, FILE, FsLog
from crashsweep.disk_model.fs._session import INODE_ATTRIBUTE, FsSession

TIMES = ("_st_atime_ns", "_st_mtime_ns", "_st_ctime_ns")     # the clock's, at load


def _tree() -> FsTree:
    """Nested directories, empty and non-empty files, a file with two names."""
    tree = FsTree.initial()
    store = tree.entries[3]["store"][0]
    tree.entries[store] = {"sub": (20, DIRECTORY), "a.log": (21, FILE), "twice": (21, FILE)}
    tree.entries[20] = {"deeper": (22, DIRECTORY), "empty": (23, FILE)}
    tree.entries[22] = {"big": (24, FILE)}
    tree.data = {21: bytearray(b"one\ntwo\n"), 24: bytearray(bytes(range(256)) * 40)}
    tree.sizes = {21: 8, 23: 0, 24: 10240}
    return tree


def _described(obj, fs) -> dict:
    """Every attribute of `obj` and of the objects it holds; a weak reference by its referent's identity (the
    file system's: "fs")."""
    if isinstance(obj, session_module.StateFile):
        obj._byte_contents        # noqa: B018 - its content made from its tree, as a read makes it
        cls = fake_file.FakeFile  # (a subclass that only defers making it)
    else:
        cls = type(obj)
    described = {"type": cls.__name__}
    for name, value in obj.__dict__.items():
        if name == session_module.SHARED_ATTRIBUTE:
            continue              # (whether its content is shared with its tree until it changes: `_own`)
        if name == "stat_result":
            value = {key: item for key, item in value.__dict__.items() if key not in TIMES}
        elif name == "_entries":
            value = {key: _described(child, fs) for key, child in value.items()}
        elif isinstance(value, weakref.ReferenceType):
            value = ("weak reference to", "fs" if value() is fs else id(value()))
        elif isinstance(value, bytearray):
            value = ("bytearray", bytes(value))
        described[name] = value
    return described


class _Constructors:
    """What `load` made before prototypes: pyfakefs's constructors."""

    resets = False          # (its loads keep nothing for the next: `_Kept`)

    def __init__(self, fs):
        self.fs = fs

    def renewed(self):
        return self

    def reset(self):
        self.fs.reset(init_pathlib=False)

    def directory(self, name, inode):
        obj = fake_file.FakeDirectory(name, filesystem=self.fs)
        setattr(obj, INODE_ATTRIBUTE, inode)
        return obj

    def file(self, name, inode, content):
        obj = fake_file.FakeFile(name, filesystem=self.fs)
        obj._byte_contents = bytearray(content)
        obj.st_size = len(obj._byte_contents)
        setattr(obj, INODE_ATTRIBUTE, inode)
        return obj

    def state_file(self, name, inode, tree):
        return self.file(name, inode, tree.content(inode))

    def attach(self, directory, obj):
        session_module._original_add_entry(directory, obj)

    def populate(self, tree):
        """The tree's entries in `walk_entries` order, each made by a constructor and added by pyfakefs."""
        by_inode = {ROOT_INODE: self.fs.root}
        for parent, name, kind, inode in tree.walk_entries():
            obj = by_inode.get(inode)
            if obj is not None:        # another name of a file: pyfakefs adds its object under its `name`
                obj.name = name
            else:
                obj = self.directory(name, inode) if kind == DIRECTORY else self.state_file(name, inode, tree)
                by_inode[inode] = obj
            self.attach(by_inode[parent], obj)


def _loaded(monkeypatch, made) -> tuple[dict, FsSession]:
    monkeypatch.setattr(session_module, "_Prototypes", made)
    session = FsSession(FsTree.initial(), FsLog())
    session.load(_tree(), FsLog())
    described = _described(session.fs.root, session.fs)
    described["file system"] = (session.fs.last_ino, repr(session.fs.mount_points))
    return described, session


def test_loaded_objects_are_the_ones_pyfakefs_constructors_make(monkeypatch):
    prototypes, _ = _loaded(monkeypatch, session_module._Prototypes)
    constructors, _ = _loaded(monkeypatch, _Constructors)
    assert _without_parents(prototypes) == _without_parents(constructors)
    assert "big" in repr(prototypes) and "twice" in repr(prototypes)


def test_a_load_resets_the_file_system_as_pyfakefs_does():
    """Later loads reset the file system from the first reset's root and null file (`_Prototypes.reset`):
    everything pyfakefs's own `reset` sets is the same, clock readings aside."""
    session = FsSession(FsTree.initial(), FsLog())
    assert session._prototypes.resets
    for _ in range(2):
        session.load(_tree(), FsLog())
        session.fs.create_file("/crashsweep/store/extra", contents=b"x")      # changed between loads
        session.fs.open_files.append(None)
    session._prototypes.reset()
    fast = session_module._reset_fingerprint(session.fs)
    session.fs.reset(init_pathlib=False)
    assert session_module._reset_fingerprint(session.fs) == fast
    assert fast[0][0] is fake_file.FakeDirectory and len(fast[2]) == 3


def test_a_reset_pyfakefs_makes_differently_is_left_to_pyfakefs(monkeypatch):
    """Where building the reset's objects would not leave what pyfakefs's `reset` leaves (another pyfakefs),
    every load calls pyfakefs's `reset` itself."""
    calls = iter(range(1000))
    monkeypatch.setattr(session_module, "_reset_fingerprint", lambda fs: next(calls))
    resets = []
    original = session_module.FakeFilesystem.reset
    monkeypatch.setattr(session_module.FakeFilesystem, "reset",
                        lambda fs, *args, **keywords: resets.append(1) or original(fs, *args, **keywords))
    session = FsSession(FsTree.initial(), FsLog())
    assert not session._prototypes.resets
    before = len(resets)
    session.load(_tree(), FsLog())
    session.load(_tree(), FsLog())
    assert len(resets) == before + 2
    assert session.fs.exists("/crashsweep/store")
    # the disk usage is counted on the mount points this load's reset made
    assert session.fs.mount_points["/"]["used_size"] == 8 + 10240


def _without_parents(described: dict) -> dict:
    """A description with each parent directory's reference as whether there is one (its identity differs by
    load; which directory holds an object is the entries' structure)."""
    kept = {}
    for name, value in described.items():
        if name == "parent_dir":
            value = value is not None
        elif name == "_entries":
            value = {key: _without_parents(child) for key, child in value.items()}
        kept[name] = value
    return kept


def test_objects_of_a_later_load_are_the_ones_pyfakefs_constructors_make(monkeypatch):
    """A session keeps its prototypes from load to load: a later load's objects are the constructors' too."""
    monkeypatch.setattr(session_module, "_Prototypes", session_module._Prototypes)
    session = FsSession(FsTree.initial(), FsLog())
    for _ in range(3):
        session.load(_tree(), FsLog())
    prototypes = _without_parents(_described(session.fs.root, session.fs))
    prototypes["file system"] = (session.fs.last_ino, repr(session.fs.mount_points))    # (disk usage too)
    constructors, _ = _loaded(monkeypatch, _Constructors)
    assert prototypes == _without_parents(constructors)


def test_each_loaded_object_owns_its_mutable_parts(monkeypatch):
    """Two objects never share a stat result, entries, extended attributes or content (an engine's change to one
    file would change another)."""
    _, session = _loaded(monkeypatch, session_module._Prototypes)
    objects, stack = [], [session.fs.root]
    while stack:
        obj = stack.pop()
        objects.append(obj)
        stack.extend(getattr(obj, "_entries", {}).values())
    objects = list({id(obj): obj for obj in objects}.values())
    assert len(objects) >= 8
    for part in ("stat_result", "xattr", "_entries", "_byte_contents"):
        held = [id(obj.__dict__[part]) for obj in objects
                if part in obj.__dict__ and not isinstance(obj.__dict__[part], bytes)]
        assert len(held) == len(set(held)), part


def test_loaded_files_read_and_stat_as_their_content(monkeypatch):
    _, session = _loaded(monkeypatch, session_module._Prototypes)
    fs = session.fs
    assert fs.get_object("/crashsweep/store/a.log").byte_contents == b"one\ntwo\n"
    assert fs.get_object("/crashsweep/store/sub/deeper/big").byte_contents == bytes(range(256)) * 40
    assert fs.stat("/crashsweep/store/twice").st_ino == fs.stat("/crashsweep/store/a.log").st_ino
    assert fs.stat("/crashsweep/store/sub/empty").st_size == 0
    assert fs.stat("/crashsweep/store/sub").st_nlink == fs.stat("/crashsweep/store/sub/deeper").st_nlink + 1


def test_a_state_file_is_made_from_its_tree_when_first_read_and_not_if_truncated_first(monkeypatch):
    """A loaded file's content comes from its state's tree on first read (`StateFile`); its size is known
    before; truncated to nothing before any read, the tree is never asked for it."""
    session = FsSession(_tree(), FsLog())
    asked = []
    real_made = FsTree.content_shared
    monkeypatch.setattr(FsTree, "content_shared", lambda tree, inode: asked.append(inode) or real_made(tree, inode))
    fs = session.fs
    assert fs.stat("/crashsweep/store/sub/deeper/big").st_size == 10240 and asked == []
    fd = session.open("/crashsweep/store/a.log", os.O_RDWR | os.O_TRUNC)
    assert session.size(fd) == 0 and asked == []
    session.write(fd, b"new")
    session.close(fd)
    fd = session.open("/crashsweep/store/twice", os.O_RDONLY)       # the same file, by its other name
    assert session.read(fd, 100) == b"new" and asked == []
    fd = session.open("/crashsweep/store/sub/deeper/big", os.O_RDONLY)
    assert session.pread(fd, 4, 254) == bytes([254, 255, 0, 1]) and asked == [24]
    assert session.read(fd, 3) == bytes([0, 1, 2]) and asked == [24]


# -- any tree: the model's file system is the one a native crash state materializes --------------------------

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from crashsweep.disk_model.native import materialize  # noqa: E402
from crashsweep.disk_model.native._recorder import STORE_INODE  # noqa: E402

NAMES = st.sampled_from(["a", "b", "c", "data.1", "x.tmp", "long-name" * 3])
STEPS = st.lists(st.one_of(
    st.tuples(st.just("dir"), st.integers(0, 9), NAMES),
    st.tuples(st.just("file"), st.integers(0, 9), NAMES, st.binary(max_size=300), st.integers(0, 320)),
    st.tuples(st.just("link"), st.integers(0, 9), st.integers(0, 9), NAMES)), max_size=20)


def _generated(steps) -> FsTree:
    """A store subtree from steps: directories, files (a size beyond the data reads as zeros, below it cuts),
    and more names for files already made (hard links, in any directory of the store)."""
    tree = FsTree.initial()
    directories, files, inode = [STORE_INODE], [], 100
    for step in steps:
        parent = directories[step[1] % len(directories)]
        names = tree.entries[parent]
        if step[0] == "link":
            if not files or step[3] in names:
                continue
            names[step[3]] = (files[step[2] % len(files)], FILE)
            continue
        if step[2] in names:
            continue
        inode += 1
        if step[0] == "dir":
            names[step[2]] = (inode, DIRECTORY)
            tree.entries[inode] = {}
            directories.append(inode)
        else:
            names[step[2]] = (inode, FILE)
            tree.data[inode] = bytearray(step[3])
            tree.sizes[inode] = step[4]
            files.append(inode)
    return tree


def _seen(entries_of, read, inode_of, top) -> dict:
    """Path -> ("dir") or ("file", content, link count, the first path of the same file)."""
    seen, first_path = {}, {}
    stack = [("", top)]
    while stack:
        path, directory = stack.pop()
        for name, child, is_directory in entries_of(directory):
            child_path = f"{path}/{name}"
            if is_directory:
                seen[child_path] = ("dir",)
                stack.append((child_path, child))
            else:
                identity, links = inode_of(child)
                first = first_path.setdefault(identity, child_path)
                seen[child_path] = ("file", read(child), links, first if first != child_path else None)
    return _by_first_path(seen)


def _by_first_path(seen: dict) -> dict:
    """Paths of one file named by the smallest of them (walk orders differ)."""
    groups: dict = {}
    for path, value in seen.items():
        if value[0] == "file":
            groups.setdefault(value[3] or path, []).append(path)
    canonical = {path: min(paths) for paths in groups.values() for path in paths}
    return {path: value if value[0] == "dir" else value[:3] + (canonical[path],) for path, value in seen.items()}


@settings(max_examples=int(os.environ.get("CRASHSWEEP_TREE_EXAMPLES", "60")), deadline=None)
@given(STEPS)
def test_any_tree_loads_as_the_native_medium_materializes_it(tmp_path_factory, steps):
    """The model's file system after `load` and the real directory `materialize` writes for the same tree hold the
    same paths, contents, link counts and files under several names (two independent builders of a crash state:
    hard links were wrong in the model's)."""
    tree = _generated(steps)
    session = FsSession(FsTree.initial(), FsLog())
    session.load(tree, FsLog())
    fs = session.fs
    model = _seen(lambda directory: [(name, child, isinstance(child, fake_file.FakeDirectory))
                                     for name, child in directory.entries.items()],
                  lambda obj: bytes(obj.byte_contents), lambda obj: (id(obj), obj.st_nlink),
                  fs.get_object("/crashsweep/store"))
    root = str(tmp_path_factory.mktemp("tree") / "store")
    materialize(tree, root)

    def real_entries(directory):
        return [(entry.name, entry.path, entry.is_dir(follow_symlinks=False)) for entry in os.scandir(directory)]

    def real_read(path):
        with open(path, "rb") as handle:
            return handle.read()

    def real_inode(path):
        status = os.lstat(path)
        return status.st_ino, status.st_nlink
    assert model == _seen(real_entries, real_read, real_inode, root)


PATH_PARTS = st.sampled_from(["a", "b", "c", "data.1", "x.tmp", ".", "..", "", "missing", "crashsweep", "store",
                              "tmp", "dev", "null", "link"])


@settings(max_examples=int(os.environ.get("CRASHSWEEP_TREE_EXAMPLES", "60")), deadline=None)
@given(STEPS, st.lists(st.tuples(st.lists(PATH_PARTS, max_size=6), st.booleans(), st.booleans()), max_size=12))
def test_exists_answers_as_pyfakefs_on_any_tree_and_path(steps, paths):
    """The model's `exists` (a direct walk for plain absolute paths) answers what pyfakefs's own does: files,
    directories, missing names, names under a file, `.`/`..`, `//`, trailing `/`, /dev/null, relative paths.
    (Symbolic links are refused by the model: `test_a_symbolic_link_is_refused`.)"""
    from pyfakefs.fake_filesystem import FakeFilesystem

    session = FsSession(FsTree.initial(), FsLog())
    session.load(_generated(steps), FsLog())
    fs = session.fs
    for parts, absolute, check_link in paths:
        path = ("/" if absolute else "") + "/".join(parts)
        assert fs.exists(path, check_link) == FakeFilesystem.exists(fs, path, check_link), path
    assert fs.exists("/crashsweep/store") and fs.exists("/dev/null") and fs.exists("/")
    assert not fs.exists("/crashsweep/store/missing")


def test_a_symbolic_link_is_refused():
    """The log has no symbolic links: making one fails in the engine and stops the sweep at the scope's end,
    naming the call (tests/boundary/test_bypasses.py runs it through a sweep)."""
    import pytest

    from crashsweep.disk_model._bypass import GUARD, InterpositionBypass

    session = FsSession(FsTree.initial(), FsLog())
    with pytest.raises(InterpositionBypass, match="made a symbolic link '/crashsweep/store/l'"):
        with GUARD.active("fs"):
            with pytest.raises(OSError):
                session.fs.create_symlink("/crashsweep/store/l", "/crashsweep/store")
    assert not session.fs.exists("/crashsweep/store/l")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(alphabet="/a.b", max_size=6), st.text(alphabet="/a.b", max_size=6),
                          st.sampled_from([b"/a", b"a", b"", pathlib.PurePosixPath("a"), pathlib.PurePosixPath("/b")])),
                max_size=4))
def test_the_model_joins_paths_as_pyfakefs_does(parts):
    """`os.path.join` under the model: `posixpath.join` for two or more `str`, pyfakefs's own for anything else
    (one part, bytes, path objects, mixed types) — the same result or the same exception type either way."""
    from pyfakefs.fake_path import FakePathModule

    from crashsweep.disk_model.fs._interpose import ModelOs
    session = FsSession(FsTree.initial(), FsLog())
    model = ModelOs(session.fs).path
    pyfakefs_path = FakePathModule(session.fs, ModelOs(session.fs))

    def outcome(join):
        try:
            return ("ok", join(*parts))
        except Exception as error:   # noqa: BLE001 - the exception's type is what is compared
            return ("error", type(error))
    assert outcome(model.join) == outcome(pyfakefs_path.join)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_a_tree_is_walked_by_entry_as_by_path(steps):
    """`walk_entries` names the same entries as `walk`, in its order (a load numbers inodes in that order)."""
    tree = _generated(steps)
    path_of = {ROOT_INODE: ""}
    by_entry = []
    for parent, name, kind, inode in tree.walk_entries():
        path = f"{path_of[parent]}/{name}"
        if kind == DIRECTORY:
            path_of[inode] = path
        by_entry.append((path, kind, inode))
    assert by_entry == list(tree.walk())


@settings(max_examples=200, deadline=None)
@given(STEPS, st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), NAMES, st.booleans()), min_size=1,
                       max_size=4), st.booleans())
def test_a_file_renamed_directly_is_renamed_as_pyfakefs_renames_it(steps, renames, root):
    """`rename_plain` moves a regular file itself (`_renamed_directly`): the same entries, names, link counts,
    devices, parents and disk usage as pyfakefs's `_do_rename`, onto a new name or another file, in one
    directory or across two, as root or as a user (pyfakefs's permission checks then; each side logs the same)."""
    from pyfakefs import helpers

    tree = _generated(steps)
    paths = [path for path, kind, _ in tree.walk() if path.startswith("/crashsweep/store")]
    directories = ["/crashsweep/store"] + [path for path, kind, _ in tree.walk()
                                           if kind == DIRECTORY and path.startswith("/crashsweep/store/")]
    outcomes = []
    for direct in (True, False):
        session = FsSession(tree.copy(), FsLog())
        if not direct:
            session.fs._renamed_directly = lambda *arguments: False
        log = session.log
        user = helpers.get_uid()
        helpers.set_uid(0 if root else 1000)
        try:
            results = []
            for source, directory, name, onto_file in renames:
                source_path = paths[source % len(paths)] if paths else "/crashsweep/store/none"
                target_path = paths[directory % len(paths)] if onto_file and paths else \
                    f"{directories[directory % len(directories)]}/{name}"
                try:
                    results.append(session.fs.rename_plain(source_path, target_path))
                except OSError as error:
                    results.append(("error", error.errno))
        finally:
            helpers.set_uid(user)
        described = _described(session.fs.root, session.fs)
        outcomes.append((results, _without_parents(described), repr(session.fs.mount_points),
                         [(op.kind, op.inode, op.directory, op.name, op.directory2, op.name2) for op in log.ops]))
    assert outcomes[0] == outcomes[1]


def test_a_loaded_file_shares_its_content_until_it_changes():
    """A file's content made from its state's tree (`content_shared`) may be the tree's bytes themselves: a write,
    a truncation or pyfakefs's own resize changes a copy, never the tree (nor a later state built from it)."""
    from crashsweep.disk_model.fs._log import SIZE, WRITE, FsOp

    durable = _tree()
    store = durable.entries[3]["store"][0]
    durable.entries[store]["new"] = (30, FILE)
    durable.sizes[30] = 0
    landed = [(FsOp(0, 0, WRITE, 30, offset=0, data=b"landed bytes"), None), (FsOp(1, 0, SIZE, 30, size=12), None),
              (FsOp(2, 0, WRITE, 21, offset=8, data=b"more\n"), None), (FsOp(3, 0, SIZE, 21, size=13), None)]

    def state():
        tree = durable.copy()
        tree.apply_landed(landed)
        return tree

    session = FsSession(FsTree.initial(), FsLog())
    for change in ("write", "truncate", "resize"):
        tree = state()
        session.load(tree, FsLog())
        for path in ("/crashsweep/store/new", "/crashsweep/store/a.log"):
            fd = session.open(path, os.O_RDWR)
            before = session.read(fd, 100)
            assert session_module.SHARED_ATTRIBUTE in session.fs.get_object(path).__dict__
            if change == "write":
                session.pwrite(fd, b"XY", 1)
            elif change == "truncate":
                session.ftruncate(fd, 3)
            else:
                session.fs.get_object(path).size = 40
            session.close(fd)
            assert bytes(session.fs.get_object(path).byte_contents) != before
        assert session.fs.get_object("/crashsweep/store/twice").byte_contents == \
            session.fs.get_object("/crashsweep/store/a.log").byte_contents        # (one file, two names)
        assert tree.content(30) == b"landed bytes" and tree.content(21) == b"one\ntwo\nmore\n"
        for path, content in (("/crashsweep/store/new", b"landed bytes"), ("/crashsweep/store/a.log", b"one\ntwo\nmore\n")):
            session.load(tree, FsLog())      # the same tree again, and a state built from it
            assert session.fs.get_object(path).byte_contents == content
            session.load(tree.copy(), FsLog())
            assert session.fs.get_object(path).byte_contents == content


# -- a load that restores the last one's objects (`_Kept`) is a load that builds them ------------------------

ACTIONS = st.lists(st.tuples(st.sampled_from(["read", "write", "truncate", "chmod", "utime", "xattr", "create",
                                              "unlink", "rename", "mkdir", "chdir", "left open", "closed"]),
                             st.integers(0, 30), NAMES), max_size=4)


def _whole(session: FsSession) -> dict:
    """Everything an engine can see of a session's file system (clock readings aside)."""
    fs = session.fs
    described = _without_parents(_described(fs.root, fs))
    described["null"] = _without_parents(_described(fs.dev_null, fs))
    described["file system"] = (fs.last_ino, fs.last_dev, fs.cwd, repr(fs.mount_points), list(fs._free_fd_heap),
                                [[type(wrapper).__name__ for wrapper in entry] if entry else entry
                                 for entry in fs.open_files], session.next_free_inode)
    return described


def _act(session: FsSession, action: str, pick: int, name: str) -> None:
    """One thing an engine may do to the state it was given (errors are the engine's, and ignored)."""
    from crashsweep.disk_model.fs._interpose import ModelOs

    model_os = ModelOs(session.fs)
    paths = sorted(path for path, kind, _ in session_tree_paths(session))
    path = paths[pick % len(paths)]
    try:
        if action == "read":
            fd = session.open(path, os.O_RDONLY)
            session.read(fd, 1000)
            session.close(fd)
        elif action == "write":
            fd = session.open(path, os.O_RDWR)
            session.pwrite(fd, b"changed", pick)
            session.close(fd)
        elif action == "truncate":
            fd = session.open(path, os.O_RDWR)
            session.ftruncate(fd, pick)
            session.close(fd)
        elif action == "chmod":
            model_os.chmod(path, 0o600 + pick)
        elif action == "utime":
            model_os.utime(path, (pick, pick))
        elif action == "xattr":
            model_os.setxattr(path, "user.crashsweep", b"x")
        elif action == "create":
            session.close(session.open(f"/crashsweep/store/{name}", os.O_CREAT | os.O_RDWR))
        elif action == "unlink":
            session.unlink(path)
        elif action == "rename":
            model_os.rename(path, f"/crashsweep/store/{name}")
        elif action == "mkdir":
            model_os.mkdir(f"/crashsweep/store/{name}.d")
        elif action == "chdir":
            model_os.chdir("/crashsweep/store")
        else:                                  # a descriptor of pyfakefs's own, left open or closed
            from pyfakefs.fake_open import FakeFileOpen
            files = sorted(path for path, kind, _ in session_tree_paths(session) if kind == FILE) or ["/dev/null"]
            opened = FakeFileOpen(session.fs)(files[pick % len(files)], "rb")
            if action == "closed":
                opened.close()
    except OSError:
        pass


def session_tree_paths(session: FsSession):
    """(path, kind, object) of everything under the store, walked from the root."""
    found, stack = [], [("/crashsweep/store", session.fs.resolve("/crashsweep/store"))]
    while stack:
        path, directory = stack.pop()
        found.append((path, DIRECTORY, directory))
        for name, child in directory._entries.items():
            if isinstance(child, fake_file.FakeDirectory):
                stack.append((f"{path}/{name}", child))
            else:
                found.append((f"{path}/{name}", FILE, child))
    return found


@settings(max_examples=int(os.environ.get("CRASHSWEEP_TREE_EXAMPLES", "60")), deadline=None)
@given(STEPS, st.lists(st.tuples(st.integers(0, 4), st.binary(max_size=40), st.integers(0, 60), ACTIONS),
                       min_size=1, max_size=8))
@example([("file", 0, "a", b"data", 4)],                 # entries A, B, A, C, A: the last restored is kept
         [(0, b"", 0, []), (3, b"x", 1, []), (1, b"yz", 2, []), (4, b"", 0, []), (2, b"w", 1, [])])
def test_a_load_restoring_the_last_ones_objects_is_a_load_building_them(steps, loads):
    """Whatever an engine did to the last state — read, wrote, resized, changed modes, times or extended
    attributes, made, removed or moved entries, changed directory, left a descriptor open — the next load (which
    restores the last one's objects where their entries are the next tree's: `_Kept`) leaves the file system a
    fresh session's load of the same tree leaves. Trees: one generated store, the same entries with other file
    contents and sizes, and the store with one more file under either of two names (loads of these three entries
    come and go between the loads kept: `KEPT_LOADS_MAX`, the last restored kept first)."""
    import time

    base = _generated(steps)
    files = sorted(inode for inode in base.sizes)
    session = FsSession(FsTree.initial(), FsLog())
    restores = []
    real_restore = session_module._Kept.restore
    session_module._Kept.restore = lambda kept, made, tree: restores.append(real_restore(kept, made, tree)) \
        or restores[-1]
    try:
        recent = [FsTree.initial().entries]    # the entries of the loads kept (`KEPT_LOADS_MAX`), last used first
        for variant, data, size, actions in loads:
            tree = base.copy()
            if variant and files:                     # other contents and sizes, the same entries
                inode = files[variant % len(files)]
                tree.data[inode] = bytearray(data)
                tree.sizes[inode] = size
            if variant >= 3:                 # one more file, under one of two names: other entries
                tree.entries[STORE_INODE] = dict(tree.entries[STORE_INODE], **{f"more{variant}": (99, FILE)})
                tree.sizes[99] = len(data)
                tree.data[99] = bytearray(data)
            began = time.time_ns() - 10_000
            restores.clear()
            session.load(tree.copy(), FsLog())
            if tree.entries in recent:        # (a kept load's entries: restored, whatever was done since)
                assert restores[-1] is True and restores.count(True) == 1
                recent.remove(tree.entries)
            else:
                assert True not in restores
            recent = [tree.entries, *recent][:session_module.KEPT_LOADS_MAX]
            fresh = FsSession(tree.copy(), FsLog())
            assert _whole(session) == _whole(fresh)
            for _, _, obj in session_tree_paths(session):
                assert all(getattr(obj.stat_result, field) >= began for field in TIMES)
            for action in actions:
                _act(session, *action)
    finally:
        session_module._Kept.restore = real_restore


def test_a_load_after_a_standard_stream_or_the_user_changed_builds_its_objects(monkeypatch):
    """pyfakefs wraps the standard streams of its reset, and a load's objects are the current user's: where either
    changed since the last load, the next builds everything (as a fresh session's load would make it)."""
    import io
    import sys

    from pyfakefs import helpers

    session = FsSession(_tree(), FsLog())
    kept = session._kept[0]
    session.load(_tree(), FsLog())
    assert session._kept[0] is kept                      # restored
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    session.load(_tree(), FsLog())
    assert session._kept[0] is not kept
    assert session.fs.open_files[1][0].get_object() is sys.stdout
    kept = session._kept[0]
    user = helpers.get_uid()
    helpers.set_uid(1000)
    try:
        session.load(_tree(), FsLog())
        assert session._kept[0] is not kept
        assert _whole(session) == _whole(FsSession(_tree(), FsLog()))
        assert session.fs.stat("/crashsweep/store/a.log").st_uid == 1000
    finally:
        helpers.set_uid(user)
