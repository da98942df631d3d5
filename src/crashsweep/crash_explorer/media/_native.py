"""The native file system (DESIGN §3): the engine runs in a process of its own on a real directory.

A state's tree is materialized as a real directory (tmpfs by default: `work_root`),
the engine is started there (`NativeEngine`) and recovers natively. A run whose I/O
is needed — the recording, or a recovery that will be crashed again — runs under
strace; its log is sealed (the engine killed, the trace replayed into micro-ops)
when the explorer first asks for its crash points, or when the engine is let go.
Crash points, durable images, strategies and dedup are the file-system model's:
the log is the same `FsLog`.

Invariants: every state gets a fresh directory, removed when the engine is let go;
a sealed log never changes again; an unsealed log's op boundaries are markers keyed
by the engine's answer count (`_recorder.py` places them in the trace).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import random
import shutil
import tempfile

from crashsweep.crash_explorer._fs_points import FsDurableImage, fs_crash_points
from crashsweep.crash_explorer._sandbox import after_each_child
from crashsweep.crash_explorer.media._base import Medium
from crashsweep.disk_model import FsLog, FsTree, PersistenceModel
from crashsweep.disk_model.native import Tracer, materialize
from crashsweep.disk_model.native._remove import remove_tree
from crashsweep.engines._native import cancel_idle, when_idle

WORK_DIR_ENVIRONMENT = "CRASHSWEEP_WORK_DIR"
_states = itertools.count()


def _chosen() -> str:
    return os.environ.get(WORK_DIR_ENVIRONMENT) or ("/dev/shm" if os.access("/dev/shm", os.W_OK)
                                                    else tempfile.gettempdir())


def remove_work_root_of(pid: int) -> None:
    """Remove the work directory of a process that ended (a contained child ends without its atexit hooks)."""
    root = os.path.join(_chosen(), f"crashsweep-native-{pid}")
    if os.path.isdir(root):
        shutil.rmtree(root, ignore_errors=True)


def work_root() -> str:
    """Where states are materialized: $CRASHSWEEP_WORK_DIR (--work-dir), else /dev/shm (tmpfs), else the temp dir."""
    setting = (os.environ.get(WORK_DIR_ENVIRONMENT), os.getpid())
    if _root and _root[0] == setting and os.path.isdir(_root[1]):
        return _root[1]
    chosen = _chosen()
    root = os.path.join(chosen, f"crashsweep-native-{os.getpid()}")
    if not os.path.isdir(root):
        os.makedirs(root, exist_ok=True)
        _remove_stale(chosen)
        atexit.register(shutil.rmtree, root, True)
    _root[:] = [setting, root]
    return root


_root: list = []        # [(the setting, the pid) it was made for, the root]: asked once per state


def _remove_stale(chosen: str) -> None:
    """Remove the work directories of processes that are gone (a killed worker cannot clean up)."""
    for name in os.listdir(chosen):
        pid = name.rpartition("-")[2]
        if name.startswith("crashsweep-native-") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(chosen, name), ignore_errors=True)


class NativeLog(FsLog):
    """An `FsLog` filled from a trace once the run ends (`seal`); until then op boundaries are markers."""

    def __init__(self, traced: bool):
        super().__init__()
        self.traced = traced
        self.sealed = not traced
        self.target = None
        self.markers: dict[int, list[tuple[str, int]]] = {}

    def _marker(self, kind: str, op_index: int) -> None:
        engine = self.target.engine if self.target is not None else None
        answered = (engine.requests if engine is not None else 0) - 1
        self.markers.setdefault(answered, []).append((kind, op_index))

    def begin_op(self, op_index: int) -> None:
        if self.sealed:
            super().begin_op(op_index)
        else:
            self._marker("begin", op_index)

    def end_op(self, op_index: int) -> None:
        if self.sealed:
            super().end_op(op_index)
        else:
            self._marker("end", op_index)

    def seal(self) -> None:
        """Kill the traced engine (the crash) and fill this log from its trace. Idempotent."""
        if self.sealed:
            return
        self.sealed = True
        target = self.target
        if target is None or target.engine is None:
            return
        target.engine.finish_requests()
        target.tracer.finish(self, target.engine.protocol_pipe, self.markers)


class _Ahead:
    """The next state's directory, materialized while the parent waits on an engine (`when_idle`)."""

    def __init__(self, upcoming):
        self.upcoming = upcoming            # the image, built on the first `get` (here or by the unit)
        self.home: str | None = None      # set once materialized

    def run(self) -> None:
        image = self.upcoming.get()
        home = _new_home()
        try:
            materialize(image, os.path.join(home, "store"))
        except BaseException:
            remove_tree(home)
            raise
        self.home = home

    def forget(self) -> None:
        cancel_idle(self.run)
        if self.home is not None:
            remove_tree(self.home)
            self.home = None


_ahead: list[_Ahead] = []        # the unit's next states, oldest first (at most two: this state's and the next's)


def _take_ahead(image) -> _Ahead | None:
    """The preparation of `image`, taken from `_ahead` with any older one (a state that never came); None when
    `image` was not prepared (a nested crash's state, a recording)."""
    for index, prepared in enumerate(_ahead):
        if image is not None and prepared.upcoming.built() is image:
            for older in _ahead[:index]:
                older.forget()
            del _ahead[:index + 1]
            return prepared
    return None


def _next_prepared(target: NativeTarget) -> str | None:
    """The store directory of the unit's next state when it is written already and comes next for certain: this
    state was prepared too (a unit's top-level state, whose successor is the one prepared), and is untraced
    (so is the next: top-level states share a depth)."""
    if not (target.prepared and target.tracer is None and _ahead and _ahead[-1].home is not None):
        return None
    return os.path.join(_ahead[-1].home, "store")


def _new_home() -> str:
    home = os.path.join(work_root(), f"state-{next(_states)}")
    os.mkdir(home)
    return home


class NativeTarget:
    """A state's real directory (`root`), a scratch directory beside it, and the tracer when traced."""

    def __init__(self, image: FsTree | None, log: NativeLog, ignore_mmap: tuple[str, ...]):
        prepared = _take_ahead(image)
        self.prepared = prepared is not None and prepared.home is not None   # a top-level state of a unit
        if self.prepared:
            self.home, self.root = prepared.home, os.path.join(prepared.home, "store")
        else:
            if prepared is not None:                 # not materialized yet: now, here
                prepared.forget()
            self.home = _new_home()
            self.root = os.path.join(self.home, "store")
            materialize(image if image is not None else FsTree.initial(), self.root)
        self.scratch = self.home
        self.engine = None
        self.tracer = None
        if log.traced:
            self.tracer = Tracer(self.root, os.path.join(self.home, "trace"), stacks=log.track_sites,
                                 base=image, ignore_mmap=ignore_mmap)
        log.target = self
        self.log = log
        self.removed = False
        _live.append(self)

    def next_prepared(self) -> str | None:
        """The next state's store directory when its kept host may open it with this state's `drop`."""
        return _next_prepared(self)

    def remove(self) -> None:
        if not self.removed:
            self.removed = True
            remove_tree(self.home)
        if self in _live:
            _live.remove(self)


_live: list[NativeTarget] = []     # targets not yet removed, newest last (nested crashes stack them)


def _remove_stale_at_exit() -> None:
    try:
        _remove_stale(_chosen())
    except OSError:
        pass


after_each_child(remove_work_root_of)
atexit.register(_remove_stale_at_exit)    # the work directories of this process's children that ended on their own


class NativeMedium(Medium):
    name = "native"
    recording_slowdown = 10      # every call of the engine stops in strace, which also walks its stack
    prepares_ahead = True        # the next state's directory is written while this state's engine works

    def ahead(self, context, upcoming) -> None:
        while len(_ahead) > 1:
            _ahead.pop(0).forget()
        prepared = _Ahead(upcoming)
        _ahead.append(prepared)
        when_idle(prepared.run)

    def forget_ahead(self) -> None:
        while _ahead:
            _ahead.pop().forget()

    def new_log(self, context, traced: bool = True):
        return NativeLog(traced)

    def new_target(self, context, image, rng: random.Random, log, random_seed: str = "0"):
        return NativeTarget(image, log, tuple(context.adapter.ignore_mmap) + tuple(context.ignore_mmap))

    def engine_scope(self, context, target):
        return contextlib.nullcontext()

    def let_go(self, context, engine: list) -> None:
        """The engine's process is killed (a power loss: no clean-up), a traced log sealed, the directory removed."""
        if not engine:         # the engine never opened: its state's target is the newest one still here
            target = _live[-1] if _live else None
            if target is not None and target.engine is None:
                target.log.seal()
                target.remove()
            elif target is not None:
                self._drop(target.engine)
            return
        self._drop(engine.pop())

    @staticmethod
    def _drop(store) -> None:
        target = store.target
        try:
            target.log.seal()
            store.crash(then_open=target.next_prepared())
        finally:
            store.release()
            target.remove()

    def points_of(self, context, log, history, ops_offset: int = 0):
        if isinstance(log, NativeLog):
            log.seal()
        return fs_crash_points(log, history, PersistenceModel.named(context.fs_model), ops_offset)

    def log_shape(self, context, log):
        if isinstance(log, NativeLog):
            log.seal()
        return log.shape()

    def durable_of(self, context, walk, log, base=None, hashed: bool = True):
        return FsDurableImage(walk, log, PersistenceModel.named(context.fs_model), base=base, hashed=hashed)
