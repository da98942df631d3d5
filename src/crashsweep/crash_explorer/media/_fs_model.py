"""The POSIX file-system model (DESIGN §3): Python engines interposed in-process, SQLite through its VFS.

The file-system session is one per process (the interposition patches the process)
and is reloaded for every state.
"""

from __future__ import annotations

import contextlib
import gc
import random
import sys

from crashsweep.crash_explorer._fs_points import FsDurableImage, fs_crash_points
from crashsweep.crash_explorer.media._base import Medium
from crashsweep.crash_explorer.media._block import _probe
from crashsweep.disk_model import CallMemo, FsLog, FsTree, PersistenceModel, shared_session
from crashsweep.disk_model._bypass import GUARD
from crashsweep.disk_model.fs._log import UntracedFsLog


class FsModelMedium(Medium):
    name = "fs"
    memoizable = True

    def new_log(self, context, traced: bool = True):
        return FsLog() if traced else UntracedFsLog()

    def new_target(self, context, image, rng: random.Random, log, random_seed: str = "0"):
        """The live file system loaded with `image`. `random_seed`: the randomness an engine may ask the model
        for (SQLite's VFS does, for journal nonces and WAL salts)."""
        session = shared_session(image if image is not None else FsTree.initial(), log)
        session.random_seed = random_seed
        return session

    def new_memo(self):
        return CallMemo()

    def memo_target(self, context, image, rng_seed: str, traced: bool = False):
        return image                     # `CallMemo` answers file calls from the state's tree

    def engine_scope(self, context, target):
        """A Python file engine's interposition (which guards against bypasses itself), else the guard."""
        scope = context.adapter.scope
        return scope(target) if scope is not None else GUARD.active("fs")

    def hold(self, context):
        """A Python file engine's interposition, held over the whole state and its nested states: installing it
        costs ~25 µs, paid once instead of around each of the engine's open, read-out, continuation and clean-up
        and each nested state's. The explorer's work between them runs interposed; it does no file I/O (its
        modules keep the real `os`; it calls no `open`)."""
        scope = context.adapter.scope
        return scope(None) if scope is not None else contextlib.nullcontext()

    def let_go(self, context, engine: list) -> None:
        """A power loss gives an engine no chance to clean up, but Python will: `dbm.dumb`'s destructor
        rewrites its index, and closing SQLite rolls back an open transaction. Those destructors run here,
        inside the interposition with logging off: their writes reach only the live file system, which is
        reloaded before it is used again, never a log and never a real file. An engine kept alive by a
        reference cycle is collected here too, so its destructor cannot run in the middle of another state."""
        if not engine:
            return
        probe = _probe(engine[0])
        session = shared_session()
        session.recording = False
        unraisable, sys.unraisablehook = sys.unraisablehook, lambda report: None   # a destructor's error is no finding
        try:
            with self.engine_scope(context, None):
                engine.clear()
                if probe() is not None:
                    gc.collect()
        except Exception:               # noqa: BLE001 - nor is a failing clean-up
            pass
        finally:
            sys.unraisablehook = unraisable

    def points_of(self, context, log, history, ops_offset: int = 0):
        return fs_crash_points(log, history, PersistenceModel.named(context.fs_model), ops_offset)

    def log_shape(self, context, log):
        return log.shape()

    def durable_of(self, context, walk, log, base=None, hashed: bool = True):
        return FsDurableImage(walk, log, PersistenceModel.named(context.fs_model), base=base, hashed=hashed)
