"""The medium an engine runs on: the block device, or the POSIX file-system model.

Everything in the explorer that depends on the medium goes through here: the
event log a run writes, the device or live file system an engine is given, its
crash points, and the durable image. The rest (strategies, plans, results,
traces, replay, minimization) is the same on both.

Invariants: a block engine never sees a file system and a file-system engine
never sees a block device; the file-system session is one per process (the
interposition patches the process) and is reloaded for every state.
"""

from __future__ import annotations

import gc
import random
import sys
import weakref

from crashsweep.crash_explorer._crash_points import crash_points
from crashsweep.crash_explorer._fs_points import FsDurableImage, fs_crash_points
from crashsweep.crash_explorer._image import DurableImage
from crashsweep.disk_model import EventLog, FsLog, FsTree, PersistenceModel, SimulatedBlockDevice, shared_session
from crashsweep.disk_model._bypass import GUARD


def uses_fs(context) -> bool:
    return context.adapter.medium == "fs"


def new_log(context):
    return FsLog() if uses_fs(context) else EventLog()


def new_target(context, image, rng: random.Random, log, random_seed: str = "0"):
    """What the engine opens on: a simulated device over `image`, or the live file system loaded with it.

    `random_seed`: the randomness a file-system engine may ask the model for (SQLite's VFS does, for
    journal nonces and WAL salts).
    """
    if uses_fs(context):
        session = shared_session(image if image is not None else FsTree.initial(), log)
        session.random_seed = random_seed
        return session
    return SimulatedBlockDevice(context.sector_size, context.sector_count, rng, context.volatile_cache,
                                base=image, log=log)


def engine_scope(context, target):
    """Around every call into the engine: the interposition of a Python file engine (which guards against
    bypasses itself), else the bypass guard of the engine's medium."""
    scope = context.adapter.scope
    if scope is not None and uses_fs(context):
        return scope(target)
    return GUARD.active("fs" if uses_fs(context) else "block")


def let_go(context, engine: list) -> None:
    """Drop a crashed engine (`engine` holds the last reference) so that nothing it does on the way out counts.

    A power loss gives an engine no chance to clean up, but Python will: `dbm.dumb`'s
    destructor rewrites its index, and closing SQLite rolls back an open transaction.
    On the file-system model those destructors run here, inside the interposition with
    logging off: their writes reach only the live file system, which is reloaded before
    it is used again, never the log of the state or of the recording, and never a real
    file. An engine kept alive by a reference cycle is collected here too, so its
    destructor cannot run later in the middle of another state.
    """
    if not engine:
        return
    try:
        probe = weakref.ref(engine[0])
    except TypeError:               # a class without weak references: collect to be safe
        probe = lambda: True        # noqa: E731
    if not uses_fs(context):        # a block engine's destructor touches only its own device: run it now
        unraisable, sys.unraisablehook = sys.unraisablehook, lambda report: None
        try:
            engine.clear()
            if probe() is not None:
                gc.collect()
        finally:
            sys.unraisablehook = unraisable
        return
    session = shared_session()
    session.recording = False
    unraisable, sys.unraisablehook = sys.unraisablehook, lambda report: None   # a destructor's error is no finding
    try:
        with engine_scope(context, None):
            engine.clear()
            if probe() is not None:
                gc.collect()
    except Exception:               # noqa: BLE001 - nor is a failing clean-up
        pass
    finally:
        sys.unraisablehook = unraisable


def points_of(context, log, history, ops_offset: int = 0):
    if uses_fs(context):
        return fs_crash_points(log, history, PersistenceModel.named(context.fs_model), ops_offset)
    return crash_points(log, history, context.volatile_cache, ops_offset)


def durable_of(context, walk, log, base=None, hashed: bool = True):
    if uses_fs(context):
        return FsDurableImage(walk, log, PersistenceModel.named(context.fs_model), base=base, hashed=hashed)
    return DurableImage(walk, log.payloads, context.sector_size, base=base, hashed=hashed)
