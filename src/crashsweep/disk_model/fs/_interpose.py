"""Interposition: serve a Python engine's `os`, `io`, `open`, `pathlib`, `shutil` and `tempfile`
calls from the file-system model, unmodified.

pyfakefs's `Patcher` finds every module that imported a file-system module and
swaps in fakes. crashsweep's fakes (`ModelOs`, `ModelIo`) extend pyfakefs's with the
descriptor layer of `FsSession` and close its known gaps:
- `os.pwrite`, `os.pread`, `os.writev`, `os.readv` are served by the model (pyfakefs
  lets them fall through to the real `os` with a fake descriptor);
- `os.fsync` / `os.fdatasync` accept a file object, as CPython's do, and are logged;
- writes cost what they write (`FsSession` changes bytearrays in place);
- `open()` builds CPython's own buffered and text layers (a private copy of `_pyio`)
  over the model's descriptors, so buffering, modes and newlines behave as real;
- classes that bound `os` or `io` at import time as class attributes (`dbm.dumb`'s
  `_Database._os`), and functions that bound `os.write` & co. as default arguments
  (semidbm), in any module, are patched too (pyfakefs patches module attributes only);
- `fcntl`'s locks behave as Linux's on the model's descriptors (`flock` per descriptor);
- `pathlib` goes through the same descriptor layer as `open` (not pyfakefs's own).

Bypass detection (`_bypass.py`): code that reaches real files anyway (a C extension,
`mmap` of a file, `sqlite3`, ctypes, a subprocess) is caught by a `sys.audit` hook and
reported as an `InterpositionBypass`: such an engine would be silently untested otherwise.
`tests/boundary/test_interposition_conformance.py` compares every served call with the
real OS on generated call sequences.

Invariant: while an engine runs (`with interposer.active():`), no call reaches a
real file under the model's roots; outside it, nothing is patched.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl as _REAL_FCNTL
import importlib.util
import inspect
import io
import linecache
import os
import posixpath
import sys
import tokenize
import warnings

from pyfakefs import fake_pathlib, mox3_stubout
from pyfakefs.fake_filesystem_unittest import PATH_MODULE, Patcher
from pyfakefs.fake_file import FakeDirectory
from pyfakefs.fake_io import FakeIoModule
from pyfakefs.fake_os import FakeOsModule
from pyfakefs.fake_path import FakePathModule

from crashsweep.disk_model._bypass import GUARD, InterpositionBypass  # noqa: F401 - re-exported
from crashsweep.disk_model.fs._session import BLOCK_SIZE, FsSession, model_stat

_REAL_OS, _REAL_IO = os, io
MODEL_ROOTS = ("/crashsweep",)   # the store's tree; the model's /tmp shares its name with the real one


def _private_pyio(fake_os):
    """A fresh copy of CPython's pure-Python io whose `os` is the model's: its `open` and raw `FileIO` are
    Python (they call `os`), its buffered and text layers CPython's own C classes over that `FileIO` — what
    an engine really runs (the same buffer sizes, flush points and so the same writes, the same errors), at
    C speed."""
    spec = importlib.util.find_spec("_pyio")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.os = fake_os
    for name in ("BufferedReader", "BufferedWriter", "BufferedRandom", "TextIOWrapper"):
        setattr(module, name, getattr(_REAL_IO, name))
    module.FileIO = _model_file_io(module.FileIO, fake_os._session)
    return module


def _raw_plans() -> dict[str, tuple[int, bool, bool, bool, bool]]:
    """FileIO's mode -> (its open flags, readable, writable, appending, created), as `_pyio.FileIO` makes them."""
    plans = {}
    for mode in ("r", "w", "a", "x", "r+", "w+", "a+", "x+"):
        created, readable = "x" in mode, "r" in mode or "+" in mode
        writable, appending = "r" not in mode or "+" in mode, "a" in mode
        flags = {"x": os.O_EXCL | os.O_CREAT, "r": 0, "w": os.O_CREAT | os.O_TRUNC, "a": os.O_APPEND | os.O_CREAT}[mode[0]]
        flags |= os.O_RDWR if readable and writable else os.O_RDONLY if readable else os.O_WRONLY
        plans[mode] = (flags | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0), readable, writable,
                       appending, created)
    return plans


_RAW_PLANS = _raw_plans()


def _model_file_io(file_io: type, session: FsSession) -> type:
    """`_pyio.FileIO` over the session's descriptors directly. A file named by a `str`, opened in one of the
    modes `_pyio.open` passes, is opened as `_pyio.FileIO.__init__` would open it through the model's `os`
    (open, a directory refused with EISDIR, an appending file's position at its end), without its mode parsing,
    `fstat` and the model's `os` in between; reads, writes and seeks call the session as the model's `os` does.
    Anything else is `_pyio`'s own. tests/boundary/test_interposition_conformance.py: as the real OS."""

    class ModelFileIO(file_io):
        # A plain attribute for `_pyio.IOBase.closed` (a property reading its private flag): CPython's buffered and
        # text layers above ask it ~15 times an open and close. `close` sets it from the flag once it is set.
        closed = False

        def close(self):
            try:
                file_io.close(self)
            finally:
                self.closed = self._IOBase__closed

        def __init__(self, file, mode="r", closefd=True, opener=None):
            plan = _RAW_PLANS.get(mode) if type(mode) is str else None
            if plan is None or type(file) is not str or closefd is not True or opener is not None or self._fd >= 0:
                file_io.__init__(self, file, mode, closefd, opener)
                return
            flags, self._readable, self._writable, self._appending, self._created = plan
            fd = session.open(file, flags, 0o666)
            try:
                if session.handle(fd).is_dir:
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), file)
                self._closefd = True
                self._blksize = BLOCK_SIZE            # what the model's fstat gives as st_blksize
                self._seekable = True                 # (`seekable` would ask `tell`: a model file always is)
                self.name = file
                if self._appending:
                    session.lseek(fd, 0, os.SEEK_END)
            except BaseException:
                session.close(fd)
                raise
            self._fd = fd

        def read(self, size=None):
            self._checkClosed()
            self._checkReadable()
            if size is None or size < 0:
                return self.readall()
            return session.read(self._fd, size)

        def readall(self):
            """The rest of the file in one read (`_pyio`'s asks the position, the size, then reads until a read
            gives nothing: the same bytes, as nothing else changes a model file in between)."""
            self._checkClosed()
            self._checkReadable()
            return session.read_rest(self._fd)

        def write(self, b):
            self._checkClosed()
            self._checkWritable()
            return session.write(self._fd, b)

        def seek(self, pos, whence=os.SEEK_SET):
            if isinstance(pos, float):
                raise TypeError("an integer is required")
            self._checkClosed()
            return session.lseek(self._fd, pos, whence)

        def tell(self):
            self._checkClosed()
            return session.lseek(self._fd, 0, os.SEEK_CUR)

    ModelFileIO.__name__ = ModelFileIO.__qualname__ = "FileIO"
    return ModelFileIO


class ModelPath(FakePathModule):
    """pyfakefs's os.path module; `join` of two or more `str` is `posixpath.join` itself (the model is a POSIX
    file system: pyfakefs's `joinpaths` gives the same result, through its wrapper, separator lookup and list,
    ~2 µs a call: engines join a path before most file calls). Anything else is pyfakefs's."""

    def join(self, *paths):
        if len(paths) > 1 and all(type(path) is str for path in paths):
            return posixpath.join(*paths)
        return super().join(*paths)

    def exists(self, path):
        """pyfakefs's `exists` without the wrapper pyfakefs puts around each of its path functions, which looks
        for a patcher's skipped modules and `use_original_os` (the model's file system has no patcher; engines
        ask on every open): where either applies, pyfakefs's own."""
        if self.os.use_original or self.filesystem.has_patcher:
            return super().exists(path)
        return self.filesystem.exists(path)


class ModelOs(FakeOsModule):
    """pyfakefs's os module, with descriptors served by `FsSession`."""

    def __init__(self, filesystem):
        super().__init__(filesystem)
        self.path = ModelPath(filesystem, self)
        self._session: FsSession = filesystem.session

    def open(self, path, flags, mode=0o777, *, dir_fd=None):
        return self._session.open(self._path_with_dir_fd(path, self.open, dir_fd), flags, mode)

    def _resolve_parents(self, *paths) -> None:
        for path in paths:
            error = self._session.parent_error(path)
            if error is not None:
                raise error

    def _rename_checks(self, source, target) -> None:
        """What Linux checks before renaming, in its order: both directories resolve, neither path is an ancestor
        of the other (target above source: ENOTEMPTY, source above target: EINVAL), then the kinds agree (a file
        over a directory: EISDIR, a directory over a file: ENOTDIR, whatever the directory holds)."""
        self._resolve_parents(source, target)
        source_object = self._session.lookup(self.filesystem.absnormpath(os.fsdecode(source)))
        target_object = self._session.lookup(self.filesystem.absnormpath(os.fsdecode(target)))
        if source_object is None or target_object is None or source_object is target_object:
            return
        source_path = self.filesystem.absnormpath(os.fsdecode(source)).rstrip("/")
        target_path = self.filesystem.absnormpath(os.fsdecode(target)).rstrip("/")
        if source_path.startswith(target_path + "/"):     # Linux's lock_rename trap: the target is an ancestor
            raise OSError(errno.ENOTEMPTY, os.strerror(errno.ENOTEMPTY), target)
        if target_path.startswith(source_path + "/"):     # ... or the source is
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), source)
        source_is_dir = isinstance(source_object, FakeDirectory)
        target_is_dir = isinstance(target_object, FakeDirectory)
        if target_is_dir and not source_is_dir:
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
        if source_is_dir and not target_is_dir:
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), target)

    def rename(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        if src_dir_fd is None and dst_dir_fd is None and self.filesystem.rename_plain(_text(src), _text(dst)):
            return None
        self._rename_checks(self._path_with_dir_fd(src, self.rename, src_dir_fd),
                            self._path_with_dir_fd(dst, self.rename, dst_dir_fd))
        return super().rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def replace(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        if src_dir_fd is None and dst_dir_fd is None and self.filesystem.rename_plain(_text(src), _text(dst)):
            return None
        self._rename_checks(self._path_with_dir_fd(src, self.replace, src_dir_fd),
                            self._path_with_dir_fd(dst, self.replace, dst_dir_fd))
        return super().replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def _path_with_dir_fd(self, path, fct, dir_fd, check_supported: bool = True):
        """`dir_fd` may be one of the session's descriptors (a directory the engine opened with os.open)."""
        if dir_fd is None and type(path) is str:      # (what pyfakefs's gives back for a plain path)
            return path
        if dir_fd is not None and self._session.is_ours(dir_fd) and not isinstance(path, int):
            text = os.fsdecode(path)
            if not os.path.isabs(text):
                open_file = self._session.handle(dir_fd)
                if not open_file.is_dir:
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), open_file.path)
                return os.path.join(open_file.object.path, text)
            return text
        return super()._path_with_dir_fd(path, fct, dir_fd, check_supported)

    def close(self, fd):
        self._session.close(fd)

    def read(self, fd, n):
        return self._session.read(fd, n)

    def write(self, fd, data):
        return self._session.write(fd, data)

    def pread(self, fd, n, offset):
        return self._session.pread(fd, n, offset)

    def pwrite(self, fd, data, offset):
        return self._session.pwrite(fd, data, offset)

    def readv(self, fd, buffers):
        if not sum(memoryview(buffer).nbytes for buffer in buffers):   # Linux: 0 before the file is asked
            self._session.check_readable(fd)
            return 0
        total = 0
        for buffer in buffers:
            view = memoryview(buffer).cast("B")
            data = self._session.read(fd, len(view))
            view[:len(data)] = data
            total += len(data)
            if len(data) < len(view):
                break
        return total

    def writev(self, fd, buffers):
        return self._session.write(fd, b"".join(bytes(buffer) for buffer in buffers))

    def preadv(self, fd, buffers, offset, flags=0):
        if not sum(memoryview(buffer).nbytes for buffer in buffers):   # Linux: 0 before the file is asked
            self._session.check_readable(fd)
            return 0
        total = 0
        for buffer in buffers:
            view = memoryview(buffer).cast("B")
            data = self._session.pread(fd, len(view), offset + total)
            view[:len(data)] = data
            total += len(data)
        return total

    def pwritev(self, fd, buffers, offset, flags=0):
        return self._session.pwrite(fd, b"".join(bytes(buffer) for buffer in buffers), offset)

    def lseek(self, fd, position, whence):
        return self._session.lseek(fd, position, whence)

    def fstat(self, fd):
        return self._session.fstat(fd)

    def stat(self, path, *, dir_fd=None, follow_symlinks=True):
        if isinstance(path, int):
            return self._session.fstat(path)
        return model_stat(super().stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks))

    def lstat(self, path, *, dir_fd=None):
        return model_stat(super().lstat(path, dir_fd=dir_fd))

    def fsync(self, fd):
        self._session.fsync(fd)

    def fdatasync(self, fd):
        self._session.fsync(fd)

    def ftruncate(self, fd, length):
        self._session.ftruncate(fd, length)

    def truncate(self, path, length):
        if isinstance(path, int):
            return self._session.ftruncate(path, length)
        fd = self._session.open(path, os.O_WRONLY)
        try:
            self._session.ftruncate(fd, length)
        finally:
            self._session.close(fd)

    def fdopen(self, fd, *args, **kwargs):
        pyio = getattr(self, "_session_io", None)
        if pyio is None:            # the module-level fake `os` (tempfile's, an engine's), not ModelIo's own
            pyio = self._session_io = _private_pyio(self)
        return pyio.open(fd, *args, **kwargs)

    def isatty(self, fd):
        self._session.handle(fd)
        return False

    def set_inheritable(self, fd, inheritable):
        self._session.handle(fd)

    def get_inheritable(self, fd):
        self._session.handle(fd)
        return False

    def dup(self, fd):
        raise OSError(f"os.dup of a simulated file is not supported (descriptor {fd})")


class ModelIo(FakeIoModule):
    """pyfakefs's io module whose `open` is CPython's own layering over the model's descriptors."""

    def __init__(self, filesystem):
        super().__init__(filesystem)
        self._os = ModelOs(filesystem)
        self._pyio = _private_pyio(self._os)
        self._os._session_io = self._pyio

    def open(self, file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, closefd=True,
             opener=None):
        """`_pyio.open`; a file named by a `str` with the default buffering is layered here as `_pyio.open`
        layers it (a FileIO, CPython's buffered class for the mode, its text wrapper), without its checks of
        a mode it has seen valid."""
        plan = _OPEN_PLANS.get(mode) if type(mode) is str else None
        if plan is None or type(file) is not str or type(buffering) is not int or buffering != -1 \
                or closefd is not True or opener is not None \
                or encoding is not None and type(encoding) is not str or errors is not None and type(errors) is not str \
                or plan[2] and (encoding is not None or errors is not None or newline is not None):
            if plan is None and type(mode) is str and len(_OPEN_PLANS) < OPEN_PLANS_MAX:
                plan = _open_plan(mode)
                if plan is not None:
                    _OPEN_PLANS[mode] = plan
            return self._pyio.open(file, mode, buffering, encoding, errors, newline, closefd, opener)
        raw_mode, buffered, binary = plan
        result = raw = self._pyio.FileIO(file, raw_mode)
        try:                                  # (a model file is no terminal: no line buffering)
            result = buffer = buffered(raw, raw._blksize)
            if binary:
                return result
            result = _REAL_IO.TextIOWrapper(buffer, self._pyio.text_encoding(encoding), errors, newline, False)
            result.mode = mode
            return result
        except BaseException:
            result.close()
            raise


OPEN_PLANS_MAX = 256
_OPEN_PLANS: dict[str, tuple[str, type, bool]] = {}    # an `open` mode -> (FileIO's mode, buffered class, binary)


def _open_plan(mode: str) -> tuple[str, type, bool] | None:
    """What `_pyio.open` makes of a valid `mode` (FileIO's mode, the buffered class, binary); None where it
    raises or warns (it is left to say so)."""
    modes = set(mode)
    if modes - set("axrwb+t") or len(mode) > len(modes):
        return None
    creating, reading, writing, appending = "x" in modes, "r" in modes, "w" in modes, "a" in modes
    updating, text, binary = "+" in modes, "t" in modes, "b" in modes
    if text and binary or creating + reading + writing + appending != 1:
        return None
    raw_mode = (creating and "x" or "") + (reading and "r" or "") + (writing and "w" or "") + \
        (appending and "a" or "") + (updating and "+" or "")
    buffered = _REAL_IO.BufferedRandom if updating else \
        _REAL_IO.BufferedWriter if creating or writing or appending else _REAL_IO.BufferedReader
    return raw_mode, buffered, binary


_SKIPPED_PACKAGES = ("crashsweep", "pyfakefs", "_pytest", "pytest", "hypothesis", "importlib", "_frozen_importlib",
                     "multiprocessing", "encodings", "_pyio")


def _text(path):
    """A path argument as text, or None when it is not a path (a descriptor, an object pyfakefs must judge)."""
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        return None


def _skipped(name: str) -> bool:
    return name.partition(".")[0] in _SKIPPED_PACKAGES


def _real_functions() -> dict[int, tuple[str, str]]:
    """id(real file function) -> (fake module key, attribute): what a default argument may have bound."""
    found: dict[int, tuple[str, str]] = {}
    for key, module in (("os", _REAL_OS), (PATH_MODULE, _REAL_OS.path), ("io", _REAL_IO)):
        for name in dir(module):
            value = getattr(module, name, None)
            if callable(value) and not inspect.isclass(value) and not name.startswith("__"):
                found.setdefault(id(value), (key, name))
    found[id(builtins.open)] = ("io", "open")
    return found


class DefaultBindings:
    """Functions whose default arguments bound a real file function at import time (`def f(fd, _write=os.write)`,
    as semidbm does): pyfakefs patches module attributes, not defaults. While an engine runs, those defaults
    are the model's functions of the same name. Modules are scanned once, new ones as they are imported."""

    def __init__(self) -> None:
        self.real = _real_functions()
        self.scanned: set[str] = set()
        self.found: list[tuple[object, tuple | None, dict | None]] = []   # (function, defaults, keyword defaults)
        self.classes: list[tuple[type, str, object]] = []   # (class, attribute, the real os or io it holds)
        self._made: tuple | None = None      # (the fake modules, [(function, its fake defaults, keyword defaults)])

    def scan(self) -> None:
        if len(self.scanned) == len(sys.modules):
            return
        for name, module in list(sys.modules.items()):
            if name in self.scanned:
                continue
            self.scanned.add(name)
            if module is None or _skipped(name):
                continue
            self.classes.extend(_class_bindings(module, name))
            for function in _functions_of(module, name):
                defaults, keywords = function.__defaults__, function.__kwdefaults__
                if any(id(value) in self.real for value in defaults or ()) or \
                        any(id(value) in self.real for value in (keywords or {}).values()):
                    self.found.append((function, defaults, keywords))

    def patch(self, fake_modules: dict) -> None:
        made = self._made
        if made is None or made[0] is not fake_modules or len(made[1]) != len(self.found):
            def fake(value):
                where = self.real.get(id(value))
                return value if where is None else getattr(fake_modules[where[0]], where[1], value)
            made = self._made = (fake_modules, [
                (function, None if defaults is None else tuple(fake(value) for value in defaults),
                 None if keywords is None else {key: fake(value) for key, value in keywords.items()})
                for function, defaults, keywords in self.found])
        for function, defaults, keywords in made[1]:     # (the fake modules live as long as their patcher)
            if defaults is not None:
                function.__defaults__ = defaults
            if keywords is not None:
                function.__kwdefaults__ = dict(keywords)

    def restore(self) -> None:
        for function, defaults, keywords in self.found:
            function.__defaults__, function.__kwdefaults__ = defaults, keywords


def _functions_of(module, name: str):
    try:
        members = list(vars(module).values())
    except TypeError:
        return
    for value in members:
        if inspect.isfunction(value) and getattr(value, "__module__", None) == name:
            yield value
        elif inspect.isclass(value) and getattr(value, "__module__", None) == name:
            for inner in list(vars(value).values()):
                inner = getattr(inner, "__func__", inner)
                if inspect.isfunction(inner):
                    yield inner


class ModelFcntl:
    """fcntl for the model's descriptors: `flock` as Linux's (per open descriptor: two descriptors of one
    file conflict even in one process); `lockf` (POSIX locks, per process: never contended here) after the
    checks the OS makes (write access for an exclusive lock, read access for a shared one); `fcntl` and
    `ioctl` answer as pyfakefs's do (0). Real descriptors reach the real module."""

    def __init__(self, filesystem):
        self._session: FsSession = filesystem.session

    @staticmethod
    def dir() -> list[str]:
        return ["fcntl", "ioctl", "flock", "lockf"]

    def flock(self, fd, operation):
        if not self._session.is_ours(_fileno(fd)):
            return _REAL_FCNTL.flock(fd, operation)
        self._session.flock(_fileno(fd), operation & ~_REAL_FCNTL.LOCK_NB, not operation & _REAL_FCNTL.LOCK_NB)

    def lockf(self, fd, cmd, len=0, start=0, whence=0):    # noqa: A002 - the real module's parameter name
        if not self._session.is_ours(_fileno(fd)):
            return _REAL_FCNTL.lockf(fd, cmd, len, start, whence)
        open_file = self._session.handle(_fileno(fd))
        kind = cmd & ~_REAL_FCNTL.LOCK_NB
        if (kind == _REAL_FCNTL.LOCK_EX and not open_file.writable) or \
                (kind == _REAL_FCNTL.LOCK_SH and not open_file.readable):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def fcntl(self, fd, cmd, arg=0):
        if not self._session.is_ours(_fileno(fd)):
            return _REAL_FCNTL.fcntl(fd, cmd, arg)
        self._session.handle(_fileno(fd))
        return 0 if isinstance(arg, int) else arg

    def ioctl(self, fd, request, arg=0, mutate_flag=True):
        if not self._session.is_ours(_fileno(fd)):
            return _REAL_FCNTL.ioctl(fd, request, arg, mutate_flag)
        return 0 if isinstance(arg, int) else arg

    def __getattr__(self, name):
        return getattr(_REAL_FCNTL, name)


def _fileno(fd) -> int:
    return fd if isinstance(fd, int) else fd.fileno()


def _class_bindings(module, name: str) -> list[tuple[type, str, object]]:
    """(class, attribute, real module) for classes of `module` that keep `os` or `io` as a class attribute
    (`dbm.dumb`'s `_Database._os`): pyfakefs patches module attributes only."""
    found = []
    try:
        members = list(vars(module).values())
    except TypeError:
        return found
    for value in members:
        if inspect.isclass(value) and getattr(value, "__module__", None) == name:
            for attribute, bound in list(vars(value).items()):
                if bound is _REAL_OS or bound is _REAL_IO:
                    found.append((value, attribute, bound))
    return found


_ABSENT = object()


class _BlockStubs(mox3_stubout.StubOutForTesting):
    """pyfakefs's record of what it patched, where the patches recorded once are set and undone a list at a
    time (`_ModelPatcher._patch_recorded`): ~130 names per scope, undone in the reverse order of setting."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[tuple[list, list]] = []     # ([(namespace, name, fake)], [original or _ABSENT])

    def smart_unset_all(self) -> None:
        super().smart_unset_all()
        for recorded, originals in reversed(self.blocks):
            for (namespace, name, _), original in zip(recorded, originals):
                if original is not _ABSENT:       # (each name once in a list: the order within one is free)
                    namespace[name] = original
        self.blocks = []


class _ModelPatcher(Patcher):
    """pyfakefs's Patcher, made to use the session's file system instead of a new one.

    pyfakefs's Patcher is a process-wide singleton with a reference count (a second
    `Patcher()` returns the first and its `setUp` does nothing). Each `Interposer` owns
    its own patcher instead, so interposers made one after another (tests, several
    engines in one process) each really patch and really unpatch, and a user's own
    pyfakefs `Patcher` is left alone.
    """

    def __new__(cls, *args, **keywords):
        return object.__new__(cls)

    def __init__(self, filesystem, **keywords):
        self._model_filesystem = filesystem
        super().__init__(**keywords)

    def setUp(self, doctester=None) -> None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            self._find_modules()
        self._refresh()
        self.start_patching()
        linecache.open = self.original_open
        tokenize._builtin_open = self.original_open

    def tearDown(self, doctester=None) -> None:
        self.stop_patching()

    # Every scope (an engine's open, read-out, continuation) resumes and pauses the patches. pyfakefs re-finds
    # each (module, name) -> fake pair through inspect on every resume; the pairs are fixed once `setUp` has
    # found the modules (modules imported later are the dynamic patcher's), so the first resume records them
    # and later ones set them directly — the same patches, a fraction of the cost.
    def patch_modules(self) -> None:
        self._patch_recorded("_recorded_modules", super().patch_modules)

    def patch_functions(self) -> None:
        self._patch_recorded("_recorded_functions", super().patch_functions)

    def _patch_recorded(self, slot: str, patch) -> None:
        recorded = getattr(self, slot, None)
        if recorded is None:
            stubs = self._stubs.stubs
            first = len(stubs)
            patch()
            made = [(owner.__dict__, name, owner.__dict__[name]) for owner, name, _ in stubs[first:]]
            # (pyfakefs patches module attributes, whose namespaces are plain dicts; each name once)
            if all(type(namespace) is dict for namespace, _, _ in made) and \
                    len({(id(namespace), name) for namespace, name, _ in made}) == len(made):
                setattr(self, slot, made)
            return
        originals = [namespace.get(name, _ABSENT) for namespace, name, _ in recorded]
        for (namespace, name, fake), original in zip(recorded, originals):
            if original is not _ABSENT:           # (pyfakefs skips a name its module no longer has)
                namespace[name] = fake
        self._stubs.blocks.append((recorded, originals))

    def _refresh(self) -> None:
        self._recorded_modules = self._recorded_functions = None     # new fake modules: found again
        if self._stubs is not None:
            self._stubs.smart_unset_all()
        self._stubs = _BlockStubs()
        self.fs = self._model_filesystem
        self.fs.patch_open_code = self.patch_open_code
        for name, fake_class in self._fake_module_classes.items():
            self.fake_modules[name] = fake_class(self.fs)
            if hasattr(self.fake_modules[name], "skip_names"):
                self.fake_modules[name].skip_names = self.skip_names | {
                    module.__name__ for module in self.SKIPMODULES if module and "." in module.__name__}
        self.fake_modules[PATH_MODULE] = self.fake_modules["os"].path
        for name, real_class in self._unfaked_module_classes.items():
            self.unfaked_modules[name] = real_class()
        self._isStale = False


class Interposer:
    """Installs the model for one process; `active()` turns it on around an engine's calls.

    Example:
        interposer = Interposer(session)
        with interposer.active():
            engine = UserStore("/crashsweep/store")
    """

    def __init__(self, session: FsSession, engine_modules: list[str] = ()):
        self.session = session
        own = sorted(name for name in sys.modules if name == "crashsweep" or name.startswith("crashsweep."))
        self.patcher = _ModelPatcher(session.fs, modules_to_patch={"os": ModelOs, "io": ModelIo, "fcntl": ModelFcntl}, use_cache=True,
                                     additional_skip_names=own)
        self.engine_modules = list(engine_modules) + ["dbm.dumb"]
        self.defaults = DefaultBindings()
        self._on = False
        self._started = False
        self._inside = contextlib.nullcontext(self)     # a scope inside one already active

    def _fake(self, real):
        modules = self.patcher.fake_modules
        return modules.get("os") if real is _REAL_OS else modules.get("io")

    def active(self):
        """The model serves file calls inside. Re-entrant: a scope inside one already active changes nothing
        (the explorer holds one around a whole state: its engine calls' scopes then cost nothing — a plain
        context manager, not a generator's: each state enters three)."""
        return self._inside if self._on else self._activated()

    @contextlib.contextmanager
    def _activated(self):
        if not self._started:
            self.patcher.setUp()
            self._started = True
        else:
            self.patcher.resume()
        self.defaults.scan()
        bindings = self.defaults.classes
        fake_open = self.patcher.fake_modules["io"].open
        real_open = builtins.open
        for owner, attribute, real in bindings:
            setattr(owner, attribute, self._fake(real))
        self.defaults.patch(self.patcher.fake_modules)
        builtins.open = fake_open
        pathlib_open = fake_pathlib.fake_open           # pathlib's fake files: through the same descriptor layer
        fake_pathlib.fake_open = lambda filesystem, skip_names, *args, **keywords: fake_open(*args, **keywords)
        self._on = True
        try:
            with GUARD.active("fs", self._model_check):
                yield self
        finally:
            self._on = False
            builtins.open = real_open
            fake_pathlib.fake_open = pathlib_open
            self.defaults.restore()
            for owner, attribute, real in bindings:
                setattr(owner, attribute, real)
            self.patcher.pause()

    @staticmethod
    def _model_check(event: str, arguments: tuple) -> str | None:
        """A real `open` of a path under the model's roots: the engine went around the model."""
        if event == "open" and arguments and isinstance(arguments[0], (str, bytes)) \
                and os.fsdecode(arguments[0]).startswith(MODEL_ROOTS):
            return (f"opened {os.fsdecode(arguments[0])!r} on the real file system, around the model (a C "
                    "extension or an unpatched module)")
        return None

    def close(self) -> None:
        if self._started:
            self.patcher.resume()
            self.patcher.tearDown()
            self._started = False
