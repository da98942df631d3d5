"""A state's tree answering the file calls of `_fs_calls.SessionCalls`, without a live file system.

The observation memo walks a state along recorded call sequences; each call is answered here,
from the state's `FsTree` plus the changes the walk itself made (files it wrote, created or
unlinked), exactly as the live session would answer it on the same tree.

Invariants:
- equal trees and equal call sequences give the responses `SessionCalls` gives (the live
  session's semantics: visible content is `data[:size]` zero-padded; O_CREAT/O_EXCL/O_TRUNC;
  errors as `("error", errno)`); tests/unit/test_sqlite_engine.py checks it on every state of sweeps;
- the tree is never changed: what a walk changes lives in copies (`entries`, `contents`);
- a call this class does not answer (a path that is not plain and absolute, a bad handle) gives
  `UNANSWERED` (or raises ValueError/KeyError inside a walk), which no recorded response equals.
"""

from __future__ import annotations

import errno
import os

from crashsweep.disk_model.fs._image import ROOT_INODE, FsTree
from crashsweep.disk_model.fs._log import DIRECTORY

UNANSWERED = ("unanswered",)


class TreeFiles:
    """The same calls answered from a tree, without a live file system. Only plain absolute paths are
    answered; anything else raises ValueError (the walk misses, and the state runs live).

    Example: `TreeFiles(FsTree.initial()).answer(("exists", "/crashsweep/store"))` is True.
    """

    def __init__(self, tree: FsTree):
        self.tree = tree
        self.entries: dict[int, dict] = {}        # directories changed by this walk (copies)
        self.contents: dict[int, bytearray] = {}  # files read or changed by this walk (visible bytes)
        self.handles: dict[int, tuple] = {}   # handle -> (inode, is a directory, readable, writable)
        self.paths: dict[str, tuple | None] = {}         # path -> entry, as looked up (kept right by changes)
        self.next_handle = 0
        self.next_inode = tree.inode_max() + 1

    def _names(self, inode: int, change: bool = False) -> dict | None:
        names = self.entries.get(inode)
        if names is None:
            names = self.tree.entries.get(inode)
            if names is None:
                return None
            if change:
                names = self.entries[inode] = dict(names)
        return names

    def _lookup(self, path: str):
        """(inode, kind) of `path`, None if absent; raises ValueError for a path this class does not answer."""
        try:
            return self.paths[path]
        except KeyError:
            entry = self.paths[path] = self._walk_path(path)
            return entry

    def _walk_path(self, path: str):
        if not path.startswith("/") or "/." in path or "//" in path or (path.endswith("/") and path != "/"):
            raise ValueError(path)          # (a trailing slash: the session's answer depends on the entry's kind)
        entry = (ROOT_INODE, DIRECTORY)
        for name in path.split("/")[1:]:
            if not name:
                continue
            names = self._names(entry[0]) if entry[1] == DIRECTORY else None
            if names is None:
                return None
            entry = names.get(name)
            if entry is None:
                return None
        return entry

    def _content(self, inode: int) -> bytearray:
        content = self.contents.get(inode)
        if content is None:
            content = self.contents[inode] = bytearray(self.tree.content(inode))
        return content

    def answer(self, call: tuple):
        try:
            return ANSWERS[call[0]](self, *call[1:])
        except (ValueError, KeyError):
            return UNANSWERED

    def _exists(self, path):
        return self._lookup(path) is not None

    def _missing(self, path) -> tuple:
        """As the session: ENOTDIR when a component on the way is a file, else ENOENT."""
        walked = ""
        for name in path.split("/")[1:-1]:
            walked += "/" + name
            entry = self._lookup(walked)
            if entry is None:
                break
            if entry[1] != DIRECTORY:
                return ("error", errno.ENOTDIR)
        return ("error", errno.ENOENT)

    def _open(self, path, flags):
        entry = self._lookup(path)
        if entry is not None and flags & os.O_CREAT and flags & os.O_EXCL:
            return ("error", errno.EEXIST)
        if entry is not None and flags & os.O_CREAT and entry[1] == DIRECTORY:
            return ("error", errno.EISDIR)
        if entry is None:
            parent_path, _, name = path.rpartition("/")
            parent = self._lookup(parent_path or "/")
            if not flags & os.O_CREAT or parent is None or parent[1] != DIRECTORY or not name:
                return self._missing(path)
            entry = (self.next_inode, "file")
            self.next_inode += 1
            self._names(parent[0], change=True)[name] = entry
            self.contents[entry[0]] = bytearray()
            self.paths[path] = entry
        is_dir = entry[1] == DIRECTORY
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        writable = access in (os.O_WRONLY, os.O_RDWR)
        if is_dir and writable:
            return ("error", errno.EISDIR)
        self.handles[self.next_handle] = (entry[0], is_dir, access != os.O_WRONLY, writable)
        self.next_handle += 1
        if flags & os.O_TRUNC and not is_dir:
            self.contents[entry[0]] = bytearray()
        return None

    def _check(self, handle, write: bool):
        """(inode, None) of an open file usable so, else (None, the error the session raises, in its order)."""
        inode, is_dir, readable, writable = self.handles[handle]
        if write and not writable:
            return None, ("error", errno.EBADF)
        if is_dir:
            return None, ("error", errno.EISDIR)
        if not write and not readable:
            return None, ("error", errno.EBADF)
        return inode, None

    def _pread(self, handle, count, offset):
        inode, error = self._check(handle, write=False)
        if error is not None or offset < 0:
            return error or ("error", errno.EINVAL)
        content = self.contents.get(inode)
        if content is not None:
            return bytes(content[offset:offset + max(0, count)])
        # Unchanged by this walk: read the tree's bytes in place (visible content: data[:size], zero-padded).
        size = self.tree.sizes.get(inode, 0)
        end = min(size, offset + max(0, count))
        if end <= offset:
            return b""
        data = self.tree.data.get(inode, b"")[offset:end]
        return bytes(data) + bytes(end - offset - len(data))

    def _pwrite(self, handle, data, offset):
        inode, error = self._check(handle, write=True)
        if error is not None or offset < 0:
            return error or ("error", errno.EINVAL)
        if data:
            buffer = self._content(inode)
            if offset > len(buffer):
                buffer.extend(bytes(offset - len(buffer)))
            buffer[offset:offset + len(data)] = data
        return None

    def _ftruncate(self, handle, size):
        _, is_dir, _, writable = self.handles[handle]
        if is_dir or not writable or size < 0:
            return ("error", errno.EINVAL)
        inode = self.handles[handle][0]
        buffer = self._content(inode)
        if size < len(buffer):
            del buffer[size:]
        else:
            buffer.extend(bytes(size - len(buffer)))
        return None

    def _size(self, handle):
        inode, error = self._check(handle, write=False)
        if error is not None:
            return error
        content = self.contents.get(inode)
        return len(content) if content is not None else self.tree.sizes.get(inode, 0)

    def _fsync(self, handle):
        if handle not in self.handles:
            raise KeyError(handle)
        return None

    def _fsync_directory_of(self, path):
        parent = self._lookup(path.rpartition("/")[0] or "/")
        if parent is None or parent[1] != DIRECTORY:
            raise ValueError(path)
        return None

    def _close(self, handle):
        self.handles.pop(handle, None)
        return None

    def _unlink(self, path):
        entry = self._lookup(path)
        if entry is None:
            return ("error", errno.ENOENT)
        if entry[1] == DIRECTORY:
            raise ValueError(path)       # the session lets pyfakefs answer this one
        parent_path, _, name = path.rpartition("/")
        self._names(self._lookup(parent_path or "/")[0], change=True).pop(name)
        self.paths = {path: None}         # only files are unlinked here, but other spellings may name it
        return None


def has_hard_links(tree: FsTree) -> bool:
    """Whether a file of `tree` has two names (the memo's reasoning about which calls the earlier ones decide,
    fs/_implied.py, takes one name per file: such a tree has every call answered, `CallMemo.answers_every_call`)."""
    files: set[int] = set()
    count = 0
    for names in tree.entries.values():
        for inode, kind in names.values():
            if kind != DIRECTORY:
                files.add(inode)
                count += 1
    return len(files) != count


ANSWERS = {name[1:]: function for name, function in vars(TreeFiles).items()
            if name.startswith("_") and not name.startswith("__") and callable(function)
            and name[1:] in ("exists", "open", "pread", "pwrite", "ftruncate", "size", "fsync",
                             "fsync_directory_of", "close", "unlink")}
