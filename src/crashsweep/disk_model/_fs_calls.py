"""File calls by path and handle, and the observation memo built on them.

Some engines reach the world only through a few file calls (SQLite through its VFS:
open, read, write, truncate, size, sync, delete, exists) and are otherwise a
deterministic function of what those calls return (randomness comes from the model's
seed). Two crash states on which every call returns the same thing are then the same
state *for that engine*: it makes the same calls, writes the same bytes and returns
the same results. `CallMemo` keeps every distinct sequence of (call, response) as a
path in a trie; `TreeFiles` answers the calls from a state's tree directly, so a state
whose responses follow a known path is recovered without running the engine.

Invariants:
- `SessionCalls` (the engine's live calls on the session) and `TreeFiles` (the same calls
  answered from an `FsTree`) return equal responses for equal trees and equal call
  sequences (tests/unit/test_sqlite_engine.py checks it on every state of sweeps);
- a walk follows the trie only while each response is one the trie has seen; any new
  response is a miss, and the state is run for real (and its path added);
- a trail is recorded only between `begin` and `end` (one memo records at a time, process-wide), and
  only complete runs (ending in `stop`) enter the trie, so a time-out or an interrupted run adds nothing;
- one memo serves one engine configuration and one harness behaviour (same options, seed, keys read
  out, continuation): the caller keeps a memo per such setting. If an engine ever makes a different
  call where the trie has one (it is not a function of its responses), the memo turns itself off.
"""

from __future__ import annotations

import errno
import hashlib
import os
import warnings

from crashsweep.disk_model._fs_image import ROOT_INODE, FsTree
from crashsweep.disk_model._fs_log import DIRECTORY
from crashsweep.disk_model._fs_session import shared_session

MEMORY_MAX_BYTES = 512 << 20   # all memos of a process together: past it, a growing memo starts afresh
NODE_BYTES = 400                # what a trie node costs, besides the bytes its call writes
TRIAL_STATES = 200         # after this many states, a memo that answered too few of them turns itself off:
ANSWERED_MIN = 0.6         # a miss costs a walk and a recorded live run, more than a live run alone
_STOP = ("stop",)
UNANSWERED = ("unanswered",)   # a call `TreeFiles` does not answer: no recorded response equals it
_recording: list = [None]      # the memo whose trail the live calls go to, if any
_held = [0]                    # bytes held by every memo of this process (approximately)


def response_key(response):
    """What a response is remembered by: small values as they are, read bytes by a 128-bit digest."""
    if isinstance(response, bytes) and len(response) > 32:
        return hashlib.blake2b(response, digest_size=16).digest()
    return response


def _outcome_bytes(outcome) -> int:
    """Roughly what a recorded outcome holds (its maps, e.g. a read-out, count ~100 bytes an item)."""
    if not isinstance(outcome, tuple):
        return 0
    return sum(100 * len(part) for part in outcome if isinstance(part, dict))


class _Node:
    __slots__ = ("call", "children", "outcome", "answer", "args")

    def __init__(self) -> None:
        self.call = None          # the next call, _STOP at a stopping point, None while unknown
        self.children: dict = {}  # response key -> node (at a stopping point: the single key None)
        self.outcome = None       # at a stopping point: what the caller recorded there
        self.answer = None        # the call's `TreeFiles` method, and its arguments (a walk's hot path)
        self.args: tuple = ()

    def set_call(self, call: tuple) -> None:
        self.call, self.answer, self.args = call, _ANSWERS[call[0]], call[1:]


class CallMemo:
    """Trie of call sequences. Example: `memo.walk(tree)` gives a `MemoWalk` or None (nothing known)."""

    def __init__(self) -> None:
        self.root = _Node()
        self.nodes = 1
        self.held = NODE_BYTES            # this memo's share of `_held`
        _held[0] += self.held
        self.trail: list | None = None     # (call, response key) pairs and stops of the run being recorded
        self.hits = self.misses = 0
        self.off = False     # set if the engine proved not to be a function of its responses, or misses too often

    # -- recording a real run --
    def begin(self) -> None:
        self.trail = []
        _recording[0] = self

    def note(self, call: tuple, response) -> None:
        self.trail.append((call, response_key(response)))

    def stop(self, outcome) -> None:
        """A stopping point: the caller may look at `outcome` here and decide whether to go on."""
        if self.trail is not None:
            self.trail.append((_STOP, outcome))

    def end(self, keep: bool = True) -> None:
        """Finish the run: add its trail to the trie (unless `keep` is false)."""
        trail, self.trail = self.trail, None
        if _recording[0] is self:
            _recording[0] = None
        if not keep or not trail or self.off:
            return
        if _held[0] > MEMORY_MAX_BYTES:   # bounds memory, not results: what is forgotten is run live again
            self._forget()
        node = self.root
        for call, key in trail:
            if call is _STOP:
                if node.call is None:     # a known stop keeps its outcome (equal: same responses, same run)
                    node.call, node.outcome = _STOP, key
                    cost = _outcome_bytes(key)
                    self.held += cost
                    _held[0] += cost
                elif node.call is not _STOP:
                    self._diverged(call, node.call)
                    return
                key = None
            elif node.call is None:
                node.set_call(call)
            elif node.call != call:      # the engine is not a function of its responses: stop memoizing
                self._diverged(call, node.call)
                return
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node()
                self.nodes += 1
                cost = NODE_BYTES + sum(len(arg) for arg in call[1:] if isinstance(arg, bytes))
                self.held += cost
                _held[0] += cost
            node = child

    def _diverged(self, call: tuple, known: tuple) -> None:
        warnings.warn(f"crashsweep: the engine made call {call[:2]} where it made {known[:2]} on the same "
                      f"responses before; recovering every state live from now on", stacklevel=3)
        self.off = True
        self._forget()

    def _forget(self) -> None:
        _held[0] -= self.held - NODE_BYTES
        self.root, self.nodes, self.held = _Node(), 1, NODE_BYTES

    def __del__(self) -> None:
        _held[0] -= self.held

    # -- answering from a tree --
    def walk(self, tree: FsTree) -> "MemoWalk | None":
        """Follow the trie on `tree` to its first stopping point; None (a miss) if it leaves the trie."""
        if self.off:
            return None
        walk = MemoWalk(self, TreeFiles(tree), self.root)
        return walk if walk.advance() else None

    def count(self, answered: bool) -> None:
        """Tally a state the memo answered (or not); turn the memo off where it does not pay."""
        if answered:
            self.hits += 1
        else:
            self.misses += 1
        if self.hits + self.misses == TRIAL_STATES and self.hits < ANSWERED_MIN * TRIAL_STATES:
            self.off = True
            self._forget()


class MemoWalk:
    """A walk in progress: `outcome` is what was recorded at the stopping point reached."""

    def __init__(self, memo: CallMemo, files: "TreeFiles", node: _Node):
        self.memo, self.files, self.node = memo, files, node
        self.outcome = None

    def advance(self) -> bool:
        """Answer calls until the next stopping point. False if a response (or the whole path) is unknown."""
        node, files = self.node, self.files
        try:
            while True:
                answer = node.answer
                if answer is None:
                    if node.call is _STOP:
                        self.node, self.outcome = node, node.outcome
                        return True
                    return False
                response = answer(files, *node.args)       # `TreeFiles.answer`, inlined
                if response.__class__ is bytes and len(response) > 32:
                    response = hashlib.blake2b(response, digest_size=16).digest()
                node = node.children.get(response)
                if node is None:
                    return False
        except (ValueError, KeyError):                      # a call `TreeFiles` does not answer
            return False

    def go_on(self) -> bool:
        """Continue past the current stopping point to the next one."""
        self.node = self.node.children.get(None)
        return self.node is not None and self.advance()


class SessionCalls:
    """The engine's file calls on the live session, by handle (0, 1, … in order of opening); each call and
    its response is noted in the trail of the memo that records, if one does. OSError responses are
    `("error", errno)`."""

    def __init__(self):
        self.fds: dict[int, int] = {}
        self.next_handle = 0
        self.generation = 0

    def restart(self) -> None:
        """A new engine run: handles count from 0 again (files of earlier runs are stale: `generation`)."""
        self.fds.clear()
        self.next_handle = 0
        self.generation += 1

    @staticmethod
    def _noted(memo: CallMemo, call: tuple, perform):
        try:
            response = perform()
        except OSError as error:
            memo.note(call, ("error", error.errno))
            raise
        memo.note(call, response)
        return response

    # Each call: straight to the session unless a memo records (the common, fast case when it does not).
    def exists(self, path: str) -> bool:
        memo = _recording[0]
        if memo is None:
            return shared_session().exists(path)
        return self._noted(memo, ("exists", path), lambda: shared_session().exists(path))

    def open(self, path: str, flags: int) -> int:
        memo = _recording[0]
        if memo is None:
            self.fds[self.next_handle] = shared_session().open(path, flags)
        else:
            def perform():
                self.fds[self.next_handle] = shared_session().open(path, flags)
            self._noted(memo, ("open", path, flags), perform)
        self.next_handle += 1
        return self.next_handle - 1

    def pread(self, handle: int, count: int, offset: int) -> bytes:
        memo = _recording[0]
        if memo is None:
            return shared_session().pread(self.fds[handle], count, offset)
        return self._noted(memo, ("pread", handle, count, offset),
                           lambda: shared_session().pread(self.fds[handle], count, offset))

    def pwrite(self, handle: int, data: bytes, offset: int) -> None:
        memo = _recording[0]
        if memo is None:
            shared_session().pwrite(self.fds[handle], data, offset)
            return

        def perform():
            shared_session().pwrite(self.fds[handle], data, offset)
        self._noted(memo, ("pwrite", handle, data, offset), perform)

    def ftruncate(self, handle: int, size: int) -> None:
        memo = _recording[0]
        if memo is None:
            return shared_session().ftruncate(self.fds[handle], size)
        self._noted(memo, ("ftruncate", handle, size), lambda: shared_session().ftruncate(self.fds[handle], size))

    def size(self, handle: int) -> int:
        memo = _recording[0]
        if memo is None:
            return shared_session().size(self.fds[handle])
        return self._noted(memo, ("size", handle), lambda: shared_session().size(self.fds[handle]))

    def fsync(self, handle: int) -> None:
        memo = _recording[0]
        if memo is None:
            return shared_session().fsync(self.fds[handle])
        self._noted(memo, ("fsync", handle), lambda: shared_session().fsync(self.fds[handle]))

    def fsync_directory_of(self, path: str) -> None:
        memo = _recording[0]
        if memo is None:
            return shared_session().fsync_directory_of(path)
        self._noted(memo, ("fsync_directory_of", path), lambda: shared_session().fsync_directory_of(path))

    def close(self, handle: int) -> None:
        def perform():
            fd = self.fds.pop(handle, None)
            session = shared_session()
            if fd is not None and fd in session.files:
                session.close(fd)
        memo = _recording[0]
        if memo is None:
            return perform()
        self._noted(memo, ("close", handle), perform)

    def unlink(self, path: str) -> None:
        memo = _recording[0]
        if memo is None:
            return shared_session().unlink(path)
        self._noted(memo, ("unlink", path), lambda: shared_session().unlink(path))


class TreeFiles:
    """The same calls answered from a tree, without a live file system. Only plain absolute paths are
    answered (`None`, never a recorded response, for anything else: the walk misses)."""

    def __init__(self, tree: FsTree):
        self.tree = tree
        self.entries: dict[int, dict] = {}        # directories changed by this walk (copies)
        self.contents: dict[int, bytearray] = {}  # files read or changed by this walk (visible bytes)
        self.handles: dict[int, tuple[int, bool]] = {}   # handle -> (inode, is a directory)
        self.paths: dict[str, tuple | None] = {}         # path -> entry, as looked up (kept right by changes)
        self.next_handle = 0
        self.next_inode = max([ROOT_INODE, *tree.entries, *tree.data, *tree.sizes,
                               *(inode for names in tree.entries.values() for inode, _ in names.values())]) + 1

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
        if not path.startswith("/") or "/." in path or "//" in path:
            raise ValueError(path)
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
            return _ANSWERS[call[0]](self, *call[1:])
        except (ValueError, KeyError):
            return UNANSWERED

    def _exists(self, path):
        return self._lookup(path) is not None

    def _open(self, path, flags):
        entry = self._lookup(path)
        if entry is not None and flags & os.O_CREAT and flags & os.O_EXCL:
            return ("error", errno.EEXIST)
        if entry is None:
            parent_path, _, name = path.rpartition("/")
            parent = self._lookup(parent_path or "/")
            if not flags & os.O_CREAT or parent is None or parent[1] != DIRECTORY or not name:
                return ("error", errno.ENOENT)
            entry = (self.next_inode, "file")
            self.next_inode += 1
            self._names(parent[0], change=True)[name] = entry
            self.contents[entry[0]] = bytearray()
            self.paths[path] = entry
        is_dir = entry[1] == DIRECTORY
        writable = flags & (os.O_WRONLY | os.O_RDWR) != 0
        if is_dir and writable:
            return ("error", errno.EISDIR)
        self.handles[self.next_handle] = (entry[0], is_dir)
        self.next_handle += 1
        if flags & os.O_TRUNC and writable:
            del self._content(entry[0])[:]
        return None

    def _file(self, handle) -> bytearray:
        inode, is_dir = self.handles[handle]
        if is_dir:
            raise ValueError(handle)
        return self._content(inode)

    def _pread(self, handle, count, offset):
        if offset < 0:
            return ("error", errno.EINVAL)
        inode, is_dir = self.handles[handle]
        if is_dir:
            raise ValueError(handle)
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
        if offset < 0:
            return ("error", errno.EINVAL)
        buffer = self._file(handle)
        if data:
            if offset > len(buffer):
                buffer.extend(bytes(offset - len(buffer)))
            buffer[offset:offset + len(data)] = data
        return None

    def _ftruncate(self, handle, size):
        if size < 0:
            return ("error", errno.EINVAL)
        buffer = self._file(handle)
        if size < len(buffer):
            del buffer[size:]
        else:
            buffer.extend(bytes(size - len(buffer)))
        return None

    def _size(self, handle):
        inode, is_dir = self.handles[handle]
        if is_dir:
            raise ValueError(handle)
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


_ANSWERS = {name[1:]: function for name, function in vars(TreeFiles).items()
            if name.startswith("_") and not name.startswith("__") and callable(function)
            and name[1:] in ("exists", "open", "pread", "pwrite", "ftruncate", "size", "fsync",
                             "fsync_directory_of", "close", "unlink")}
