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
  `_Database._os`) are patched too (pyfakefs patches module attributes only).

Bypass detection: code that reaches real files anyway (a C extension, `mmap`,
`sqlite3`, ctypes) is caught by a `sys.audit` hook and reported as an
`InterpositionBypass`: such an engine would be silently untested otherwise.

Invariant: while an engine runs (`with interposer.active():`), no call reaches a
real file under the model's roots; outside it, nothing is patched.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.util
import inspect
import io
import linecache
import os
import sys
import tokenize
import warnings

from pyfakefs import mox3_stubout
from pyfakefs.fake_filesystem_unittest import PATH_MODULE, Patcher
from pyfakefs.fake_io import FakeIoModule
from pyfakefs.fake_os import FakeOsModule

from crashsweep.disk_model._fs_session import FD_FIRST, FsSession
from crashsweep.disk_model.errors import DiskModelError

_REAL_OS, _REAL_IO = os, io
MODEL_ROOTS = ("/crashsweep",)   # the store's tree; the model's /tmp shares its name with the real one
AUDIT_BYPASS_EVENTS = {"mmap.__new__": "mmap", "sqlite3.connect": "sqlite3 (a C library doing its own I/O)",
                       "ctypes.dlopen": "ctypes (foreign code doing its own I/O)"}


class InterpositionBypass(DiskModelError):
    """The engine reached the real file system around the model; its I/O cannot be tested."""


def _private_pyio(fake_os):
    """A fresh copy of CPython's pure-Python io whose `os` is the model's."""
    spec = importlib.util.find_spec("_pyio")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.os = fake_os
    return module


class ModelOs(FakeOsModule):
    """pyfakefs's os module, with descriptors served by `FsSession`."""

    def __init__(self, filesystem):
        super().__init__(filesystem)
        self._session: FsSession = filesystem.session

    def open(self, path, flags, mode=0o777, *, dir_fd=None):
        return self._session.open(self._path_with_dir_fd(path, self.open, dir_fd), flags, mode)

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
        return super().stat(path, dir_fd=dir_fd, follow_symlinks=follow_symlinks)

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
        return self._session_io.open(fd, *args, **kwargs)

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
        return self._pyio.open(file, mode, buffering, encoding, errors, newline, closefd, opener)


def _class_bindings(module_names: list[str]) -> list[tuple[type, str, object]]:
    """(class, attribute, real module) for classes that keep `os` or `io` as a class attribute."""
    found = []
    for name in module_names:
        module = sys.modules.get(name)
        if module is None:
            continue
        for _, value in inspect.getmembers(module, inspect.isclass):
            if getattr(value, "__module__", None) != name:
                continue
            for attribute, bound in list(vars(value).items()):
                if bound is _REAL_OS or bound is _REAL_IO:
                    found.append((value, attribute, bound))
    return found


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

    def _refresh(self) -> None:
        if self._stubs is not None:
            self._stubs.smart_unset_all()
        self._stubs = mox3_stubout.StubOutForTesting()
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
        self.patcher = _ModelPatcher(session.fs, modules_to_patch={"os": ModelOs, "io": ModelIo}, use_cache=True,
                                     additional_skip_names=own)
        self.engine_modules = list(engine_modules) + ["dbm.dumb"]
        self.bypass: str | None = None
        self._on = False
        self._started = False
        _install_audit_hook(self)

    def _fake(self, real):
        modules = self.patcher.fake_modules
        return modules.get("os") if real is _REAL_OS else modules.get("io")

    @contextlib.contextmanager
    def active(self):
        assert not self._on, "interposition is not re-entrant"
        if not self._started:
            self.patcher.setUp()
            self._started = True
        else:
            self.patcher.resume()
        bindings = _class_bindings(self.engine_modules)
        fake_open = self.patcher.fake_modules["io"].open
        real_open = builtins.open
        for owner, attribute, real in bindings:
            setattr(owner, attribute, self._fake(real))
        builtins.open = fake_open
        self.bypass = None
        self._on = True
        try:
            yield self
        finally:
            self._on = False
            builtins.open = real_open
            for owner, attribute, real in bindings:
                setattr(owner, attribute, real)
            self.patcher.pause()
        if self.bypass is not None:
            raise InterpositionBypass(self.bypass)

    def audit(self, event: str, arguments: tuple) -> None:
        if not self._on or self.bypass is not None:
            return
        if event in AUDIT_BYPASS_EVENTS:
            self.bypass = (f"the engine used {AUDIT_BYPASS_EVENTS[event]}, which bypasses Python's file API; "
                           f"crashsweep cannot see or crash that I/O")
        elif event == "open" and arguments:
            target = arguments[0]
            if isinstance(target, int) and target >= FD_FIRST:
                self.bypass = f"a real file call got the simulated descriptor {target} (an API the model does not serve)"
            elif isinstance(target, (str, bytes)) and os.fsdecode(target).startswith(MODEL_ROOTS):
                self.bypass = (f"the engine opened {os.fsdecode(target)!r} on the real file system, around the model "
                               f"(a C extension or an unpatched module)")

    def close(self) -> None:
        if self._started:
            self.patcher.resume()
            self.patcher.tearDown()
            self._started = False


_interposers: list[Interposer] = []


def _install_audit_hook(interposer: Interposer) -> None:
    if not _interposers:
        sys.addaudithook(_audit)
    _interposers.append(interposer)


def _audit(event: str, arguments: tuple) -> None:
    for interposer in _interposers:
        interposer.audit(event, arguments)
