"""File calls by path and handle, and the observation memo answering them from a state's tree.

SQLite reaches the world only through its VFS's file calls; `SessionCalls` makes them on the live session and
notes each call and its response in the trail of the memo that records (`disk_model/_memo.py`); `CallMemo`
answers the same calls from a state's tree (`TreeFiles`, `_tree_files.py`).

Invariant: `SessionCalls` (the engine's live calls on the session) and `TreeFiles` (the same calls answered
from an `FsTree`) return equal responses for equal trees and equal call sequences
(tests/unit/test_sqlite_engine.py checks it on every state of sweeps).
"""

from __future__ import annotations

from crashsweep.disk_model._memo import MemoWalk, ObservationMemo, _recording
from crashsweep.disk_model.fs._implied import CallKnowledge
from crashsweep.disk_model.fs._session import shared_session
from crashsweep.disk_model.fs._tree_files import ANSWERS, TreeFiles, has_hard_links

__all__ = ["CallMemo", "MemoWalk", "SessionCalls"]


class CallMemo(ObservationMemo):
    """The memo of an engine's file calls. Example: `memo.walk(tree)` answers them from `tree` (an `FsTree`)."""

    answers = ANSWERS
    answering = TreeFiles
    knowledge = CallKnowledge        # calls whose response the earlier ones decide are not answered again

    @staticmethod
    def answers_every_call(target) -> bool:
        return has_hard_links(target)


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
