"""The live file system an engine runs on: pyfakefs's fake file system, with every change logged.

pyfakefs supplies the namespace (directories, files, stat, listdir, rename,
remove, pathlib, shutil, tempfile). crashsweep adds what a crash model needs:
- hooks on pyfakefs's directory entries and renames that log `link`, `unlink` and
  `rename` micro-ops (a rename is one atomic micro-op, not an unlink and a link);
- its own descriptor layer (`open`, `read`, `write`, `pread`, `pwrite`, `readv`,
  `writev`, `lseek`, `fstat`, `ftruncate`, `fsync`, `fdatasync`, `close`):
  file contents are bytearrays changed in place, so a write costs what it
  writes (pyfakefs copies the whole file on every write), a truncate may grow a
  file, a directory can be opened and fsynced, and descriptors are numbered from
  `FD_FIRST` so a descriptor that leaks to a real `os` call fails with EBADF
  instead of touching a real file.

Invariants:
- every change to file data, size or entries is logged, in call order, while
  `recording` is on; building a state from a tree logs nothing;
- a file's `_byte_contents` is a bytearray of exactly its size; a file loaded from a tree
  (`StateFile`) makes it from the tree when it is first read, so a file the engine
  never reads (or truncates first) costs its state nothing; what it makes may be shared
  with the tree, so a change in place copies it first (`_own`).
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import fcntl as fcntl_module
import os
import stat as stat_module
import sys
import time
import weakref

from pyfakefs import fake_file, helpers
from pyfakefs.fake_filesystem import POSIX_PROPERTIES, WINDOWS_PROPERTIES, FakeFilesystem
from pyfakefs.helpers import FakeStatResult

from crashsweep.disk_model.fs._image import FIRST_FREE_INODE, ROOT_INODE, FsTree
from crashsweep.disk_model.fs._log import DIRECTORY, FILE, LINK, RENAME, SIZE, UNLINK, WRITE, FsLog

FD_FIRST = 1 << 20
FLOCK_WAIT_S = 0.05
OPEN_FILES_MAX = 4096
INODE_ATTRIBUTE = "crashsweep_inode"


class OpenFile:
    __slots__ = ("fd", "object", "path", "position", "readable", "writable", "append", "is_dir")

    def __init__(self, fd, obj, path, readable, writable, append, is_dir):
        self.fd, self.object, self.path = fd, obj, path
        self.position = 0
        self.readable, self.writable, self.append, self.is_dir = readable, writable, append, is_dir


def _inode(obj) -> int:
    return getattr(obj, INODE_ATTRIBUTE)


_THROUGH_PYFAKEFS = object()      # `_walked` met a symbolic link: pyfakefs resolves the path


def _plain(path) -> bool:
    """An absolute text path without `.`, `..` or empty components (a trailing `/` aside)."""
    return type(path) is str and path.startswith("/") and "/." not in path and "//" not in path


def _walked(root, path: str):
    """The object at a `_plain` path, walked entry by entry from `root`; None when a name is missing or is not a
    directory's; `_THROUGH_PYFAKEFS` at a symbolic link on the way."""
    obj = root
    for name in path.split("/")[1:]:
        if not name:
            continue                      # a trailing "/"
        entries = obj.__dict__.get("_entries")
        if entries is None:
            return None
        obj = entries.get(name)
        if obj is None:
            return None
        if stat_module.S_ISLNK(obj.stat_result.st_mode):
            return _THROUGH_PYFAKEFS
    return obj


SOURCE_ATTRIBUTE = "crashsweep_source"     # a `StateFile`'s tree, until its content is made from it
SHARED_ATTRIBUTE = "crashsweep_shared"     # its content is its tree's bytes: copied before a change (`_own`)


class _MadeFromTree:
    """`StateFile._byte_contents` until it is first read: made from the state's tree then and kept in the file's
    own attributes, which Python looks at before a class attribute without `__set__` (so later reads and every
    write cost what a plain file's do, and pyfakefs's `__getattr__` for stat fields is not in between)."""

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        attributes = obj.__dict__
        tree = attributes.pop(SOURCE_ATTRIBUTE, None)
        if tree is None:            # (its content was set, then deleted: as for any attribute, there is none)
            raise AttributeError("_byte_contents")
        content, shared = tree.content_shared(attributes[INODE_ATTRIBUTE])
        attributes["_byte_contents"] = content
        if shared:
            attributes[SHARED_ATTRIBUTE] = True
        return content


class StateFile(fake_file.FakeFile):
    """A file of a loaded state whose `_byte_contents` is made from the state's tree when first asked for
    (`FsTree.content_shared`: the tree's deferred writes applied then). Until then its size is the tree's."""

    _byte_contents = _MadeFromTree()

    def __getstate__(self):
        self._byte_contents      # noqa: B018 - made before the state is copied
        return fake_file.FakeFile.__getstate__(self)


def _copied(contents: bytearray, start: int, end: int) -> bytes:
    """`bytes(contents[start:end])` in one copy where that is many bytes (a slice of a bytearray is a copy)."""
    if end - start > COPY_THROUGH_VIEW_MIN:
        return bytes(memoryview(contents)[start:end])
    return bytes(contents[start:end])


COPY_THROUGH_VIEW_MIN = 2048     # (below it, making the view costs more than the second copy)


def _own(obj) -> bytearray:
    """A file's `_byte_contents`, its own (a content shared with its state's tree copied first): what a change in
    place may change. Every change in place of a file's content goes through here."""
    attributes = obj.__dict__
    if SHARED_ATTRIBUTE in attributes:
        del attributes[SHARED_ATTRIBUTE]
        attributes["_byte_contents"] = bytearray(attributes["_byte_contents"])
    return obj._byte_contents


def _unread(obj) -> bool:
    """Whether a file's content was never made from its state's tree (`StateFile`)."""
    return SOURCE_ATTRIBUTE in obj.__dict__


class RecordingFilesystem(FakeFilesystem):
    """pyfakefs's FakeFilesystem whose entry changes and renames reach `session.log`."""

    def __init__(self, session: "FsSession"):
        self.session = session
        self._renaming = False
        super().__init__(path_separator="/", patcher=None)
        self.is_windows_fs = self.is_macos = False

    def exists(self, file_path, check_link: bool = False) -> bool:
        """pyfakefs's `exists`; a plain absolute path (`_walked`, no trailing `/`) is walked directly instead of
        through pyfakefs's path resolution (~40 µs: engines ask on every open). tests/unit/test_fs_session.py:
        equal to pyfakefs's answer on generated trees and paths."""
        if not check_link and _plain(file_path) and not file_path.endswith("/") and file_path != self.devnull:
            found = _walked(self.root, file_path)
            if found is not _THROUGH_PYFAKEFS:
                return found is not None
        return super().exists(file_path, check_link)

    def create_symlink(self, file_path, link_target, create_missing_dirs: bool = True):
        """Symbolic links are not modelled (the log has no such micro-op; the native medium refuses them too):
        the sweep stops naming the call, and the engine's call fails meanwhile."""
        from crashsweep.disk_model._bypass import GUARD        # (it imports this module)
        GUARD.report(f"made a symbolic link {os.fsdecode(os.fspath(file_path))!r}",
                     "the file-system model does not model symbolic links")
        raise OSError(errno.EPERM, "symbolic links are not modelled by crashsweep's file-system model",
                      os.fsdecode(os.fspath(file_path)))

    def rename(self, old_file_path, new_file_path, force_replace: bool = False) -> None:
        """One atomic `rename` micro-op (pyfakefs removes an existing target first; that is not logged)."""
        old_path = self.absnormpath(self._original_path(old_file_path))
        new_path = self.absnormpath(self._original_path(new_file_path))
        moving = self.lresolve(old_path) if self.exists(old_path, check_link=True) else None
        if moving is not None and old_path != new_path and self.exists(new_path, check_link=True) \
                and self.lresolve(new_path) is moving:
            return              # POSIX: two names of the same file (hard links): rename succeeds and does nothing
        self._renaming = True
        try:
            super().rename(old_file_path, new_file_path, force_replace)
        finally:
            self._renaming = False
        session = self.session
        if session.recording and moving is not None and old_path != new_path:
            source, source_name = self.splitpath(old_path)
            target, target_name = self.splitpath(new_path)
            kind = DIRECTORY if isinstance(moving, fake_file.FakeDirectory) else FILE
            session.log.next_call()
            session.log.add(RENAME, _inode(moving), directory=_inode(self.resolve(source)),
                            name=os.fsdecode(source_name), directory2=_inode(self.resolve(target)),
                            name2=os.fsdecode(target_name), entry_kind=kind)

    def rename_plain(self, source: str, target: str) -> bool:
        """`rename(source, target)` of a regular file between plain absolute paths whose directories exist, onto
        nothing or another regular file, done directly (pyfakefs resolves each path a dozen times: ~5 ms);
        False (nothing done) for anything else, which `rename` handles."""
        session = self.session
        source_parent, source_name = session._parent_and_name(source) if _plain(source) else (None, "")
        if source_parent is not None and _plain(target) and target.rpartition("/")[0] == source.rpartition("/")[0]:
            target_parent, target_name = source_parent, target.rpartition("/")[2]     # (one directory: one walk)
            if not target_name or target_name in (".", ".."):
                target_parent = None
        else:
            target_parent, target_name = session._parent_and_name(target) if _plain(target) else (None, "")
        if source_parent is None or target_parent is None:
            return False
        moving = source_parent._entries.get(source_name)
        replaced = target_parent._entries.get(target_name)
        if moving is None or not stat_module.S_ISREG(moving.stat_result.st_mode) or moving is replaced \
                or (replaced is not None and not stat_module.S_ISREG(replaced.stat_result.st_mode)):
            return False
        self._renaming = True
        try:
            if not self._renamed_directly(source_parent, source_name, target_parent, target_name, moving, replaced):
                self._do_rename(source_parent, source_name, target_parent, target_name)
        finally:
            self._renaming = False
        if session.recording:
            session.log.next_call()
            session.log.add(RENAME, _inode(moving), directory=_inode(source_parent), name=source_name,
                            directory2=_inode(target_parent), name2=target_name, entry_kind=FILE)
        return True

    def _renamed_directly(self, source_parent, source_name: str, target_parent, target_name: str, moving,
                          replaced) -> bool:
        """pyfakefs's `_do_rename` of a regular file (onto nothing or a regular file) on a case-sensitive POSIX
        file system, one device, where its permission checks pass: its `remove_entry` (of the source, then of
        the file replaced) and `add_entry`, in its order, without re-finding each name and object (~10 µs a
        rename). False (nothing done) otherwise. tests/unit/test_fs_session.py: the same objects, links, disk
        usage and entries as `_do_rename` on generated trees."""
        device = target_parent.stat_result.st_dev
        if not self.is_case_sensitive or self.is_windows_fs or moving.stat_result.st_dev != device \
                or (replaced is not None and replaced.stat_result.st_dev != device):
            return False
        if not helpers.is_root() and not (
                source_parent.has_permission(helpers.PERM_WRITE | helpers.PERM_EXE)
                and target_parent.has_permission(helpers.PERM_WRITE)
                and (replaced is None or target_parent.has_permission(helpers.PERM_WRITE | helpers.PERM_EXE))):
            return False
        # (stat fields on the stat results themselves: pyfakefs's `__getattr__`/`__setattr__` forward them there)
        moved, source_stat, target_stat = moving.stat_result, source_parent.stat_result, target_parent.stat_result
        if moved.st_nlink == 1:
            self.change_disk_usage(-moved.st_size, source_name, moved.st_dev)
        source_stat.st_nlink -= 1
        moved.st_nlink -= 1
        del source_parent._entries[source_name]
        moving.__dict__["name"] = target_name
        if replaced is not None:
            replaced_stat = replaced.stat_result
            if replaced_stat.st_nlink == 1:
                self.change_disk_usage(-replaced_stat.st_size, target_name, replaced_stat.st_dev)
            target_stat.st_nlink -= 1
            replaced_stat.st_nlink -= 1
            del target_parent._entries[target_name]
        target_parent._entries[target_name] = moving
        moving.__dict__["parent_dir"] = weakref.ref(target_parent)
        target_stat.st_nlink += 1
        moved.st_nlink += 1
        moved.st_dev = target_stat.st_dev
        if moved.st_nlink == 1:
            self.change_disk_usage(moved.st_size, target_name, target_stat.st_dev)
        return True

    @staticmethod
    def _original_path(path):
        return os.fsdecode(os.fspath(path))


_original_add_entry = fake_file.FakeDirectory.add_entry
_original_remove_entry = fake_file.FakeDirectory.remove_entry
_original_set_initial_contents = fake_file.FakeFile.set_initial_contents
_original_size_setter = fake_file.FakeFile.size.fset


def _add_entry(directory, path_object) -> None:
    _original_add_entry(directory, path_object)
    filesystem = directory.filesystem
    if isinstance(filesystem, RecordingFilesystem):
        session = filesystem.session
        created = not hasattr(path_object, INODE_ATTRIBUTE)      # else a new name of a file (a hard link)
        if created:
            setattr(path_object, INODE_ATTRIBUTE, session.new_inode())
            if not isinstance(path_object, fake_file.FakeDirectory):
                contents = path_object._byte_contents
                path_object._byte_contents = bytearray(contents or b"")
        if session.recording and not filesystem._renaming:
            session.log.next_call()
            kind = DIRECTORY if isinstance(path_object, fake_file.FakeDirectory) else FILE
            session.log.add(LINK, _inode(path_object), directory=_inode(directory),
                            name=os.fsdecode(path_object.name), entry_kind=kind)
            if kind == FILE and created and path_object._byte_contents:     # a link writes no data
                session.log_contents(path_object, 0, bytes(path_object._byte_contents))


def _remove_entry(directory, pathname_name: str, recursive: bool = True) -> None:
    filesystem = directory.filesystem
    entry = directory.get_entry(pathname_name) if isinstance(filesystem, RecordingFilesystem) else None
    _original_remove_entry(directory, pathname_name, recursive)
    if entry is not None and filesystem.session.recording and not filesystem._renaming:
        filesystem.session.log.next_call()
        # The name removed, not the object's: a file with several links carries only the name it got last.
        filesystem.session.log.add(UNLINK, _inode(entry), directory=_inode(directory), name=os.fsdecode(pathname_name),
                                   entry_kind=DIRECTORY if isinstance(entry, fake_file.FakeDirectory) else FILE)


def _set_initial_contents(file_object, contents) -> bool:
    """pyfakefs's own writers (pathlib, its wrappers) replace a file's whole content: log it so."""
    changed = _original_set_initial_contents(file_object, contents)
    filesystem = file_object.filesystem
    if isinstance(filesystem, RecordingFilesystem) and hasattr(file_object, INODE_ATTRIBUTE):
        data = bytes(file_object._byte_contents or b"")
        file_object._byte_contents = bytearray(data)
        if filesystem.session.recording and changed:
            filesystem.session.log.next_call()
            filesystem.session.log_contents(file_object, 0, data, truncate=True)
    return changed


def _size_setter(file_object, size: int) -> None:
    if SHARED_ATTRIBUTE in file_object.__dict__:
        _own(file_object)                   # (pyfakefs's setter may extend the content in place)
    _original_size_setter(file_object, size)
    filesystem = file_object.filesystem
    if isinstance(filesystem, RecordingFilesystem) and hasattr(file_object, INODE_ATTRIBUTE):
        file_object._byte_contents = bytearray(file_object._byte_contents or b"")
        if filesystem.session.recording:
            filesystem.session.log.next_call()
            filesystem.session.log.add(SIZE, _inode(file_object), size=size)


fake_file.FakeDirectory.add_entry = _add_entry
fake_file.FakeDirectory.remove_entry = _remove_entry
fake_file.FakeFile.set_initial_contents = _set_initial_contents
fake_file.FakeFile.size = fake_file.FakeFile.size.setter(_size_setter)


def _reset_fingerprint(fs: FakeFilesystem) -> tuple:
    """What pyfakefs's `reset` leaves, clock readings aside: the file system's attributes, and its root's, null
    file's and open standard streams' (by type and stream)."""
    def of(obj) -> tuple:
        attributes = sorted(((key, value) for key, value in vars(obj).items() if key != "stat_result"),
                            key=lambda item: item[0])
        stat = sorted(((key, value) for key, value in vars(obj.stat_result).items() if not key.endswith("time_ns")),
                      key=lambda item: item[0])
        return type(obj), attributes, stat
    rest = sorted(((key, value) for key, value in vars(fs).items() if key not in ("root", "dev_null", "open_files")),
                  key=lambda item: item[0])
    streams = [[(type(wrapper), getattr(wrapper, "_stream", None)) for wrapper in entry] if entry else entry
               for entry in fs.open_files]
    return of(fs.root), of(fs.dev_null), streams, rest


_ABSENT = object()


class _Prototypes:
    """pyfakefs objects as its constructors make them, built from the attributes of one file and one directory its
    constructors made on this file system now (the same attributes, each object's own stat result, entries and
    extended attributes). `FakeFile.__init__` sets about twenty attributes through a Python `__setattr__`, per file.
    tests/unit/test_fs_session.py: objects equal to the constructors' (every attribute, the stat result's too)."""

    def __init__(self, fs: FakeFilesystem):
        """Made on `fs` just reset by pyfakefs's own `reset`, whose root, null file and counters it keeps."""
        self.fs = fs
        self.of_file = self._attributes(fake_file.FakeFile("-", filesystem=fs))
        self.of_file[0].pop("_byte_contents")     # each file's own (`file` sets it; a `StateFile` makes it)
        self.of_directory = self._attributes(fake_file.FakeDirectory("-", filesystem=fs))
        self.of_root, self.of_null = self._attributes(fs.root), self._attributes(fs.dev_null)
        self.null_name = fs.dev_null.name
        self.after_reset = (fs.last_ino, fs.last_dev, fs._cwd, copy.deepcopy(fs.mount_points))
        self.posix_class = type(POSIX_PROPERTIES)
        self.posix_fields = {field.name: getattr(POSIX_PROPERTIES, field.name)
                             for field in dataclasses.fields(POSIX_PROPERTIES) if field.init}
        self.mounts: dict[int, dict | None] = {}      # a device -> its mount point, found once a load
        self._mount_points: tuple | None = None        # (path -> point, device -> point) made by the last
        #                                                 `mount_points_reset`, kept while they are in place
        # Trusted only where it leaves what pyfakefs's `reset` left, checked here (another pyfakefs may differ).
        expected = _reset_fingerprint(fs)
        self.resets = True
        self.reset()
        if _reset_fingerprint(fs) != expected:
            self.resets = False
            fs.reset(init_pathlib=False)

    def reset(self) -> None:
        """pyfakefs's `FakeFilesystem.reset` of a POSIX file system, with its root and null file built from the
        kept ones' attributes (its constructors, path normalizing and mount-point search cost ~15 µs a load)."""
        fs = self.fs
        if not self.resets:
            self.mounts = {}                # (pyfakefs's reset makes new mount points)
            fs.reset(init_pathlib=False)
            return
        # (`dataclasses.replace(POSIX_PROPERTIES)`, as pyfakefs makes it, from its fields read once)
        fs.fs_properties = [self.posix_class(**self.posix_fields), POSIX_PROPERTIES, WINDOWS_PROPERTIES]
        root = self._built(fake_file.FakeDirectory, self.of_root, fs.root.name)
        root.__dict__["_entries"] = {}
        fs.root = root
        fs.dev_null = self._built(fake_file.FakeNullFile, self.of_null, self.null_name)
        fs.open_files.clear()
        fs._free_fd_heap.clear()
        fs.last_ino, fs.last_dev, fs._cwd, _ = self.after_reset
        self.mount_points_reset()
        fs._add_standard_streams()

    def mount_points_reset(self) -> dict | None:
        """The mount points as `reset` leaves them (nothing used), by device; None where one's size is bounded.
        Those of the last call are kept where they are still the file system's (only their usage changes)."""
        fs, after_reset = self.fs, self.after_reset[3]
        kept = self._mount_points
        if kept is not None and len(fs.mount_points) == len(after_reset) \
                and all(fs.mount_points.get(path) is point for path, point in kept[0].items()):
            for path, point in kept[0].items():
                point.clear()
                point.update(after_reset[path])
            return kept[1]
        self._mount_points = None
        self.mounts = {}
        fs.mount_points.clear()
        fs.mount_points.update((path, dict(point)) for path, point in after_reset.items())
        by_device = {}
        for point in fs.mount_points.values():
            if point["total_size"] is not None:
                return None
            by_device[point["idev"]] = point
        self._mount_points = (dict(fs.mount_points), by_device)
        return by_device

    def renewed(self) -> "_Prototypes":
        """For the next load: what pyfakefs's constructors take from the clock and the user now."""
        now = int(helpers.now() * 1e9)
        renewed = {"st_uid": helpers.get_uid(), "st_gid": helpers.get_gid(), "is_windows": self.fs.is_windows_fs,
                   "_st_atime_ns": now, "_st_mtime_ns": now, "_st_ctime_ns": now}
        for _, stat in (self.of_file, self.of_directory, self.of_root, self.of_null):
            stat.update(renewed)
        return self

    @staticmethod
    def _attributes(obj) -> tuple[dict, dict]:
        attributes = dict(obj.__dict__)
        for own in ("name", "stat_result", "xattr", "_entries"):      # each object's own (a file's content too)
            attributes.pop(own, None)
        return attributes, dict(obj.stat_result.__dict__)

    @staticmethod
    def _built(cls, made: tuple[dict, dict], name: str):
        attributes, stat = made
        obj = cls.__new__(cls)
        result = FakeStatResult.__new__(FakeStatResult)
        result.__dict__.update(stat)
        obj.__dict__.update(attributes)
        obj.__dict__.update(name=name, stat_result=result, xattr={})
        return obj

    def populate(self, tree: FsTree) -> dict:
        """Every entry of `tree` under the file system's root: for each, in `walk_entries` order, `directory` or
        `state_file` (another name of a file: its object, renamed, as pyfakefs's `link` does), then `attach`, as
        tests/unit/test_fs_session.py's constructors do it — here in one loop, each object's attributes set as one
        dictionary (a load's entries cost ~1 µs each). Returns inode -> object, the root's included."""
        fs = self.fs
        root = fs.root
        by_inode = {ROOT_INODE: root}          # (a directory has one name: its inode names its object)
        directory_attributes, directory_stat = self.of_directory
        file_attributes, file_stat = self.of_file
        new_object, new_stat, set_raw = object.__new__, FakeStatResult.__new__, object.__setattr__
        directory_class, file_class = fake_file.FakeDirectory, StateFile
        sizes, entries = tree.sizes, tree.entries
        stack = [ROOT_INODE]
        while stack:
            parent_inode = stack.pop()
            names = entries.get(parent_inode, {})
            parent = by_inode[parent_inode]
            for name in sorted(names, reverse=True):
                inode, kind = names[name]
                obj = by_inode.get(inode)
                if obj is not None:        # another name of a file
                    obj.name = name
                else:
                    stat = new_stat(FakeStatResult)
                    if kind == DIRECTORY:
                        obj = new_object(directory_class)
                        set_raw(stat, "__dict__", directory_stat.copy())
                        attributes = directory_attributes.copy()
                        attributes["_entries"] = {}
                        if inode in entries:
                            stack.append(inode)
                    else:
                        obj = new_object(file_class)
                        set_raw(stat, "__dict__", file_stat.copy())
                        stat._st_size = sizes.get(inode, 0)
                        attributes = file_attributes.copy()
                        attributes[SOURCE_ATTRIBUTE] = tree
                    attributes["name"] = name
                    attributes["stat_result"] = stat
                    attributes["xattr"] = {}
                    attributes[INODE_ATTRIBUTE] = inode
                    set_raw(obj, "__dict__", attributes)
                    by_inode[inode] = obj
                self.attach(parent, obj)
        return by_inode

    def attach(self, directory, obj) -> None:
        """`FakeDirectory.add_entry(obj)` on a tree being loaded, without its checks, which cannot fail here (a
        directory `load` made or the root: write permission; a tree's names in a directory: distinct)."""
        name = obj.__dict__["name"]
        directory.__dict__["_entries"][name] = obj
        obj.__dict__["parent_dir"] = weakref.ref(directory)
        stat, parent = obj.stat_result, directory.stat_result
        if stat.st_ino is None:
            self.fs.last_ino += 1
            stat.st_ino = self.fs.last_ino
        parent.st_nlink += 1
        stat.st_nlink += 1
        stat.st_dev = parent.st_dev
        if stat.st_nlink == 1 and stat._st_size:         # (a directory just made is empty: size 0)
            # pyfakefs's `change_disk_usage`, its device's mount point found once a load
            device = parent.st_dev
            mount = self.mounts.get(device, _ABSENT)
            if mount is _ABSENT:
                mount = self.mounts[device] = self.fs._mount_point_for_device(device)
            if mount is not None:
                total = mount["total_size"]
                if total is not None and total - mount["used_size"] < stat._st_size:
                    self.fs.raise_os_error(errno.ENOSPC, name)
                mount["used_size"] += stat._st_size


class _Kept:
    """What a load that built its objects made (`FsSession.load`): each object as built (its attributes and stat
    fields), each directory's entries, and the file system's own state after it. A later load whose tree has the
    same entries restores all of it (`restore`), its root becoming the file system's, in place of building new
    objects: most states of a crash point differ only in file contents and sizes. The session keeps the last
    `KEPT_LOADS_MAX` (at crash depth 1 a state's loads and its nested states' alternate). Building, linking and
    later freeing a load's objects cost a JSON-file store's state ~35 µs; restoring them ~8.

    Invariant: after `restore`, everything an engine can see of the file system is what a load building every
    object would make of the same tree — every object's attributes and stat fields, each directory's entries,
    the inode and device counters, the current directory, pyfakefs's descriptors, the mount points and their
    usage — whatever the engine did to the last state (objects it made are dropped with the entries that named
    them). tests/unit/test_fs_session.py: equal to a fresh session's load after generated engine actions."""

    __slots__ = ("entries", "objects", "state", "streams", "user")

    def __init__(self, fs: FakeFilesystem, tree: FsTree, by_inode: dict):
        self.entries = {inode: dict(names) for inode, names in tree.entries.items()}
        objects = [fs.root, fs.dev_null]
        objects += [obj for inode, obj in by_inode.items() if inode != ROOT_INODE]
        # (object, attributes, stat fields, a directory's entries or None, a state file's inode or None)
        self.objects = []
        for obj in objects:
            attributes, stat = dict(obj.__dict__), dict(obj.stat_result.__dict__)
            attributes["xattr"] = None            # (each load's own: a new dictionary)
            entries = attributes.get("_entries")
            inode = attributes[INODE_ATTRIBUTE] if attributes.pop(SOURCE_ATTRIBUTE, None) is not None else None
            self.objects.append((obj, attributes, stat, dict(entries) if entries is not None else None, inode))
        self.state = (fs.last_ino, fs.last_dev, fs._cwd)
        # pyfakefs's descriptors: the standard streams, each wrapping the stream of its time
        self.streams = ([list(entry) if entry else entry for entry in fs.open_files], sys.stdin, sys.stdout,
                        sys.stderr)
        self.user = (helpers.get_uid(), helpers.get_gid())

    def restore(self, made: "_Prototypes", tree: FsTree) -> bool:
        """The objects kept, as the load of `tree` would build them; False (nothing changed) where they cannot
        be: the tree's entries differ, the user changed (a load's objects are the user's), a standard stream was
        replaced (pyfakefs wraps the streams of its reset), or a mount point's size is bounded."""
        fs = made.fs
        if tree.entries != self.entries or (helpers.get_uid(), helpers.get_gid()) != self.user:
            return False
        open_files, *standard = self.streams
        if standard[0] is not sys.stdin or standard[1] is not sys.stdout or standard[2] is not sys.stderr:
            return False
        mounts = made.mount_points_reset()
        if mounts is None:
            return False
        fs.root, fs.dev_null = self.objects[0][0], self.objects[1][0]      # (another load's, kept too, may be in)
        fs.last_ino, fs.last_dev, fs._cwd = self.state
        if fs.open_files != open_files or fs._free_fd_heap:
            fs.open_files[:] = [list(entry) if entry else entry for entry in open_files]
            fs._free_fd_heap.clear()
        sizes, now, set_raw = tree.sizes, int(helpers.now() * 1e9), object.__setattr__
        for obj, attributes, stat, entries, inode in self.objects:
            attributes = attributes.copy()
            attributes["xattr"] = {}
            stat = stat.copy()
            stat["_st_atime_ns"] = stat["_st_mtime_ns"] = stat["_st_ctime_ns"] = now
            if entries is not None:
                attributes["_entries"] = entries.copy()
            elif inode is not None:           # a state file: its size and content the new tree's
                attributes[SOURCE_ATTRIBUTE] = tree
                size = stat["_st_size"] = sizes.get(inode, 0)
                if size:             # (`attach`'s disk usage, once a file, on mount points whose size is unbounded)
                    mounts[stat["st_dev"]]["used_size"] += size
            set_raw(obj, "__dict__", attributes)
            set_raw(attributes["stat_result"], "__dict__", stat)
        return True


KEPT_LOADS_MAX = 2       # a state's and its nested states' (at crash depth 1 they alternate)


class FsSession:
    """One engine's view of the model: a fake file system built from a tree, logging into `log`.

    Example: `session = FsSession(FsTree.initial(), FsLog()); fd = session.open("/crashsweep/store/a", os.O_CREAT | os.O_RDWR)`.
    """

    def __init__(self, tree: FsTree, log: FsLog):
        self.log = log
        self.recording = False
        # Where an engine that asks the model for randomness (SQLite's VFS) gets it: the same seed gives the
        # same bytes, so a run is reproducible byte for byte. Set by whoever loads a state.
        self.random_seed = "0"
        self.files: dict[int, OpenFile] = {}
        self.flocks: dict[int, dict[int, int]] = {}     # inode -> {descriptor: LOCK_SH or LOCK_EX} (flock)
        self.next_fd = FD_FIRST
        self.next_free_inode = FIRST_FREE_INODE
        self.fs = RecordingFilesystem(self)
        self._prototypes: _Prototypes | None = None
        self._kept: list[_Kept] = []      # the last built loads' objects, last restored first (`_Kept`)
        self.load(tree, log)

    def load(self, tree: FsTree, log: FsLog) -> None:
        """Replace everything with `tree` (logging nothing); log later changes into `log`."""
        self.recording = False
        self.files.clear()
        self.flocks.clear()
        fs = self.fs
        # pyfakefs's `reset` (the fake pathlib was bound to this file system once, at creation), the first time
        # itself, then from what it made (`_Prototypes.reset`).
        made = self._prototypes
        kept = self._kept
        for index, candidate in enumerate(kept):
            if candidate.restore(made, tree):
                if index:
                    kept.insert(0, kept.pop(index))
                break
        else:
            if made is None:
                fs.reset(init_pathlib=False)
                made = self._prototypes = _Prototypes(fs)
            else:
                made.renewed().reset()
            setattr(fs.root, INODE_ATTRIBUTE, ROOT_INODE)
            # Objects are built directly (pyfakefs's create_dir/create_file resolve every path: ~75 µs each), and
            # from pyfakefs's own objects' attributes (`_Prototypes`: its constructors cost ~10 µs each).
            by_inode = made.populate(tree)
            if made.resets:
                kept.insert(0, _Kept(fs, tree, by_inode))
                del kept[KEPT_LOADS_MAX:]
        # New inodes never reuse a number the tree has seen: the tree keeps the data of unlinked files
        # (a crash state is built by replaying micro-ops by inode), and a new file must not inherit it.
        # (`inode_max`: kept by the state's tree from the durable one's, not counted again.)
        self.next_free_inode = max(FIRST_FREE_INODE - 1, tree.inode_max()) + 1
        self.log = log
        self.recording = True

    def new_inode(self) -> int:
        inode = self.next_free_inode
        self.next_free_inode += 1
        return inode

    # -- logging of content changes --
    def log_contents(self, obj, offset: int, data: bytes, truncate: bool = False) -> None:
        """Log a change pyfakefs made itself: `data` at `offset`, then the file's size."""
        inode = _inode(obj)
        if data:
            self.log.add(WRITE, inode, offset=offset, data=data)
        self.log.add(SIZE, inode, size=len(obj._byte_contents))

    # -- descriptors --
    def lookup(self, path: str):
        """The object at `path`, or None. A plain absolute path is walked directly (pyfakefs's general
        path resolution costs ~80 µs, and SQLite asks whether its journal exists on every read);
        anything else (relative, `..`, symlinks) goes through pyfakefs."""
        if _plain(path):
            found = _walked(self.fs.root, path)
            if found is not _THROUGH_PYFAKEFS:
                return found
        return self.fs.resolve(path) if self.fs.exists(path) else None

    def _missing(self, path: str) -> OSError:
        """The error the OS gives for a path that does not resolve: ENOTDIR when a component on the way is a
        file, else ENOENT."""
        return self.parent_error(path) or FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)

    def parent_error(self, path) -> OSError | None:
        """The error resolving `path`'s directory gives (Linux resolves it before looking at the last name):
        ENOENT for a missing component, ENOTDIR for a file on the way; None when the directory exists."""
        absolute = self.fs.absnormpath(os.fsdecode(os.fspath(path)))
        walked = ""
        for name in absolute.split("/")[1:-1]:
            walked += "/" + name
            obj = self.lookup(walked)
            if obj is None:
                return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
            if not isinstance(obj, fake_file.FakeDirectory):
                return NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        return None

    def _parent_and_name(self, path: str):
        """(directory object, name) of a plain absolute path whose directory exists, else (None, name)."""
        parent_path, _, name = path.rpartition("/")
        parent = self.lookup(parent_path or "/") if name and name not in (".", "..") else None
        return (parent if isinstance(parent, fake_file.FakeDirectory) else None), name

    def _create_plain(self, path: str):
        """A new empty file at a plain path, added directly (the entry hook logs its `link`); else None."""
        parent, name = self._parent_and_name(path)
        if parent is None or name in parent._entries:
            return None
        obj = fake_file.FakeFile(name, filesystem=self.fs)
        obj._byte_contents = bytearray()
        parent.add_entry(obj)
        return obj

    def open(self, path, flags: int, mode: int = 0o666) -> int:
        path = os.fsdecode(os.fspath(path))
        if len(self.files) >= OPEN_FILES_MAX:
            raise OSError(errno.EMFILE, "too many open files in the simulated file system", path)
        fs = self.fs
        found = self.lookup(path)
        exists = found is not None
        if exists and flags & os.O_CREAT and flags & os.O_EXCL:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
        if exists and flags & os.O_CREAT and isinstance(found, fake_file.FakeDirectory):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)     # as Linux: O_CREAT on a directory
        if not exists:
            if not flags & os.O_CREAT:
                raise self._missing(path)
            found = self._create_plain(path)
            if found is None:
                parent = os.path.dirname(fs.absnormpath(path))
                if not fs.isdir(parent):
                    raise self._missing(path)
                found = fs.create_file(path, contents=b"")
        obj = found
        is_dir = isinstance(obj, fake_file.FakeDirectory)
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        writable = access in (os.O_WRONLY, os.O_RDWR)
        if is_dir and writable:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        fd = self.next_fd
        self.next_fd += 1
        self.files[fd] = OpenFile(fd, obj, path, access != os.O_WRONLY, writable, bool(flags & os.O_APPEND), is_dir)
        if flags & os.O_TRUNC and not is_dir and (obj.stat_result._st_size if _unread(obj) else len(obj._byte_contents)):
            self._set_size(self.files[fd], 0)        # Linux truncates even when opened read-only
        return fd

    def handle(self, fd) -> OpenFile:
        if not isinstance(fd, int) and hasattr(fd, "fileno"):
            fd = fd.fileno()          # os.fsync(file_object) is allowed by Python
        open_file = self.files.get(fd)
        if open_file is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return open_file

    def is_ours(self, fd) -> bool:
        return isinstance(fd, int) and fd >= FD_FIRST

    def close(self, fd: int) -> None:
        open_file = self.handle(fd)
        del self.files[fd]
        holders = self.flocks.get(_inode(open_file.object))
        if holders:
            holders.pop(fd, None)             # closing a descriptor releases its flock

    def flock(self, fd: int, kind: int, wait: bool) -> None:
        """flock(2) per open descriptor: LOCK_SH/LOCK_EX conflict across descriptors, even in one process.
        A conflicting lock without LOCK_NB would wait forever (this process holds the other): it waits,
        and the state's time limit ends it as a hang, as it would end the real call."""
        open_file = self.handle(fd)
        holders = self.flocks.setdefault(_inode(open_file.object), {})
        if kind == fcntl_module.LOCK_UN:
            holders.pop(fd, None)
            return
        others = [held for other, held in holders.items() if other != fd]
        if others and (kind == fcntl_module.LOCK_EX or fcntl_module.LOCK_EX in others):
            if not wait:
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN), open_file.path)
            while True:
                time.sleep(FLOCK_WAIT_S)
        holders[fd] = kind

    def _file(self, fd, write: bool) -> OpenFile:
        open_file = self.handle(fd)
        if write and not open_file.writable:         # Linux checks the access mode first (a directory is never writable)
            raise OSError(errno.EBADF, os.strerror(errno.EBADF), open_file.path)
        if open_file.is_dir:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), open_file.path)
        if not write and not open_file.readable:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF), open_file.path)
        return open_file

    def check_readable(self, fd: int) -> None:
        """What Linux checks of a vectored read of no bytes before returning 0 (it never asks the file, so a
        directory opened for reading gives 0, not EISDIR): the descriptor is open for reading."""
        if not self.handle(fd).readable:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF), self.handle(fd).path)

    def pread(self, fd: int, count: int, offset: int) -> bytes:
        open_file = self._file(fd, write=False)
        if offset < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return _copied(open_file.object._byte_contents, offset, offset + max(0, count))

    def pwrite(self, fd: int, data, offset: int) -> int:
        open_file = self._file(fd, write=True)
        if offset < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        data = bytes(data)
        if not data:
            return 0
        obj = open_file.object
        buffer = _own(obj)
        if open_file.append:          # Linux: pwrite on an O_APPEND descriptor appends, whatever the offset
            offset = len(buffer)
        old_size = len(buffer)
        if offset > old_size:
            buffer.extend(bytes(offset - old_size))
        buffer[offset:offset + len(data)] = data
        obj.stat_result._st_size = len(buffer)      # (`obj.st_size = ...` and `obj.epoch += 1` through pyfakefs's
        obj.__dict__["epoch"] += 1                  # `__setattr__`, a Python call each)
        if self.recording:
            self.log.next_call()
            self.log.add(WRITE, _inode(obj), offset=offset, data=data)
            if len(buffer) != old_size:
                self.log.add(SIZE, _inode(obj), size=len(buffer))
        return len(data)

    def read(self, fd: int, count: int) -> bytes:
        open_file = self._file(fd, write=False)
        data = self.pread(fd, count, open_file.position)
        open_file.position += len(data)
        return data

    def read_rest(self, fd: int) -> bytes:
        """`read` of everything from the descriptor's position to the file's end."""
        open_file = self._file(fd, write=False)
        contents = open_file.object._byte_contents
        data = _copied(contents, open_file.position, len(contents))
        open_file.position += len(data)
        return data

    def write(self, fd: int, data) -> int:
        open_file = self._file(fd, write=True)
        if open_file.append:
            open_file.position = len(open_file.object._byte_contents)
        written = self.pwrite(fd, data, open_file.position)
        open_file.position += written
        return written

    def lseek(self, fd: int, position: int, whence: int) -> int:
        open_file = self.handle(fd)
        if whence == os.SEEK_CUR and type(whence) is int:     # (a `tell`: the size is not needed)
            base = open_file.position
        else:
            base = {os.SEEK_SET: 0, os.SEEK_CUR: open_file.position,
                    os.SEEK_END: 0 if open_file.is_dir else len(open_file.object._byte_contents)}.get(whence)
        if base is None or base + position < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        open_file.position = base + position
        return open_file.position

    def ftruncate(self, fd: int, size: int) -> None:
        open_file = self.handle(fd)
        if open_file.is_dir or not open_file.writable:      # Linux: EINVAL, not EBADF, for both
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), open_file.path)
        if size < 0:
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        self._set_size(open_file, size)

    def _set_size(self, open_file: OpenFile, size: int) -> None:
        obj = open_file.object
        if size == 0 and _unread(obj):        # truncated before it was read: its state's content is not needed
            del obj.__dict__[SOURCE_ATTRIBUTE]
            obj.__dict__["_byte_contents"] = bytearray()
        buffer = _own(obj)
        if size < len(buffer):
            del buffer[size:]
        elif size > len(buffer):
            buffer.extend(bytes(size - len(buffer)))      # growing by truncate: zeros
        obj.stat_result._st_size = size
        obj.__dict__["epoch"] += 1
        if self.recording:
            self.log.next_call()
            self.log.add(SIZE, _inode(obj), size=size)

    def fsync(self, fd) -> None:
        """fsync and fdatasync (the model keeps no timestamps, so they are the same) of a file or directory."""
        open_file = self.handle(fd)
        if self.recording:
            self.log.next_call()
            self.log.synced(_inode(open_file.object), open_file.is_dir)

    def size(self, fd: int) -> int:
        return len(self._file(fd, write=False).object._byte_contents)

    def fstat(self, fd: int):
        open_file = self.handle(fd)
        if self.lookup(open_file.path) is open_file.object:      # the name may now be another file's
            # What pyfakefs's `stat(path)` returns once it has resolved the path to this very object (its `copy`,
            # made directly: `copy.copy` of a plain object is a new one with the same attributes).
            copied = ModelStatResult.__new__(ModelStatResult)
            copied.__dict__.update(open_file.object.stat_result.__dict__)
            return copied
        return _orphan_stat(open_file)

    # -- paths (for the SQLite VFS, which has no pyfakefs module around it) --
    def exists(self, path: str) -> bool:
        return self.lookup(path) is not None

    def unlink(self, path: str) -> None:
        parent, name = self._parent_and_name(path)
        entry = None if parent is None else parent._entries.get(name)
        if entry is None or isinstance(entry, fake_file.FakeDirectory):
            self.fs.remove(path)          # pyfakefs raises the right error
        else:
            parent.remove_entry(name)     # the entry hook logs the `unlink`

    def fsync_directory_of(self, path: str) -> None:
        directory = self.fs.resolve(os.path.dirname(self.fs.absnormpath(path)))
        if self.recording:
            self.log.next_call()
            self.log.synced(_inode(directory), True)


BLOCK_SIZE = 4096     # st_blksize, as Linux's ext4, xfs and tmpfs give it


class ModelStatResult(FakeStatResult):
    """pyfakefs's stat result with `st_blksize`, which it lacks. `io.open` sizes a file's buffer by it (as
    `BLOCK_SIZE` on a real Linux file system; pyfakefs's has none, so 8192), and the buffer size decides
    which `write` calls reach the file system: with it, an engine's writes on the model are its real ones."""

    st_blksize = BLOCK_SIZE


def model_stat(result):
    """`result` (a pyfakefs stat result) as the model's: with `st_blksize`."""
    if type(result) is FakeStatResult:
        result.__class__ = ModelStatResult
    return result


def _orphan_stat(open_file: OpenFile) -> os.stat_result:
    """stat of an open file whose name was unlinked (or now names another file)."""
    size = 0 if open_file.is_dir else len(open_file.object._byte_contents)
    mode = (stat_module.S_IFDIR | 0o755) if open_file.is_dir else (stat_module.S_IFREG | 0o644)
    return os.stat_result((mode, _inode(open_file.object), 0, 0, 0, 0, size, 0, 0, 0),
                          {"st_blksize": BLOCK_SIZE, "st_blocks": -(-size // 512)})


_shared: list[FsSession] = []


def shared_session(tree: FsTree | None = None, log: FsLog | None = None) -> FsSession:
    """The process's one live session (the interposition patches a process, not an object), loaded with `tree`.

    Without arguments: the session as it is (created empty if there is none yet).
    """
    if tree is None:
        if not _shared:
            _shared.append(FsSession(FsTree.initial(), FsLog()))
        return _shared[0]
    if not _shared:
        _shared.append(FsSession(tree, log))
    else:
        _shared[0].load(tree, log)
    return _shared[0]
