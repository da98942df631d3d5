"""Bypass detection: an engine that reaches the real system around the simulated medium is reported, not tested.

While engine code runs (`guard.active(...)`), a `sys.audit` hook watches what CPython
reports, and the first event that escapes the medium becomes the bypass, named with
the engine's source line (the innermost frame outside crashsweep, pyfakefs and the
standard library):

- both media: starting a program (`subprocess.Popen`, `os.system`, `os.exec*`,
  `os.posix_spawn`, `os.spawn*`); `sqlite3.connect` and `ctypes.dlopen` (foreign code
  doing its own I/O); an `mmap` of a file (an anonymous `mmap.mmap(-1, n)` is only memory);
- a block engine: opening any real file for writing (its storage is the device);
- a path engine (on the file-system model, see `fs/_interpose.py`): a real `open` of a
  path under the model's roots, or with one of the model's descriptors.

Reading real files (source lines for a traceback, a module being imported) is no bypass.

Invariant: a bypass found inside `active()` is raised as `InterpositionBypass` when the
block ends, even when the engine's own call raised first (a bypass that fails is still a
bypass, never a finding about the engine).
"""

from __future__ import annotations

import contextlib
import os
import sys
import sysconfig

from crashsweep.disk_model.fs._session import FD_FIRST as FD_FIRST_MODEL
from crashsweep.disk_model.errors import DiskModelError

PROGRAM_EVENTS = {"subprocess.Popen": "started a program (subprocess)", "os.system": "started a program (os.system)",
                  "os.exec": "replaced its process (os.exec*)", "os.posix_spawn": "started a program (os.posix_spawn)",
                  "os.spawn": "started a program (os.spawn*)"}
FOREIGN_EVENTS = {"sqlite3.connect": "used sqlite3 (a C library doing its own I/O)",
                  "ctypes.dlopen": "loaded foreign code with ctypes (its I/O is invisible)"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CRASHSWEEP_DIRECTORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STDLIB_DIRECTORY = sysconfig.get_paths()["stdlib"] + os.sep
_PACKAGE_DIRECTORIES = tuple({sysconfig.get_paths()["purelib"] + os.sep, sysconfig.get_paths()["platlib"] + os.sep})


def _not_engine(filename: str) -> bool:
    """crashsweep, pyfakefs and the standard library (installed packages are engine code: semidbm, tinydb)."""
    if filename.startswith(_CRASHSWEEP_DIRECTORY) or "pyfakefs" in filename or filename.startswith("<"):
        return True
    return filename.startswith(_STDLIB_DIRECTORY) and not filename.startswith(_PACKAGE_DIRECTORIES)


class InterpositionBypass(DiskModelError):
    """The engine reached the real system around the model; its I/O cannot be tested."""


def engine_location() -> str:
    """file:line of the innermost frame of engine code on the stack (not crashsweep, pyfakefs, the stdlib)."""
    frame = sys._getframe(1)
    fallback = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _not_engine(filename):
            return f"{filename}:{frame.f_lineno}"
        if fallback is None and not filename.startswith(_CRASHSWEEP_DIRECTORY):
            fallback = f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return fallback or "an unknown place"


def _writes(arguments: tuple) -> bool:
    mode = arguments[1] if len(arguments) > 1 else None
    flags = arguments[2] if len(arguments) > 2 else 0
    if isinstance(mode, str) and any(letter in mode for letter in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & WRITE_FLAGS)


# Every event `classify` or a guard's `extra` check looks at; the audit hook returns at once on any other
# (CPython audits much more: each frame a traceback is walked through, each `sys._getframe`).
WATCHED_EVENTS = frozenset([*PROGRAM_EVENTS, *FOREIGN_EVENTS, "mmap.__new__", "open"])


def classify(event: str, arguments: tuple, medium: str) -> str | None:
    """What escaped the medium, or None. `medium` is "block" or "fs"."""
    if event in PROGRAM_EVENTS:
        return PROGRAM_EVENTS[event]
    if event in FOREIGN_EVENTS:
        return FOREIGN_EVENTS[event]
    if event == "mmap.__new__":
        fileno = arguments[0] if arguments else -1
        return None if fileno == -1 else f"mapped a file into memory (mmap of descriptor {fileno})"
    if event == "open" and arguments:
        target = arguments[0]
        if medium == "fs" and isinstance(target, int) and target >= FD_FIRST_MODEL:
            return f"passed the simulated descriptor {target} to a real file call (an API the model does not serve)"
        if medium == "block" and _writes(arguments) and target is not None:
            shown = os.fsdecode(target) if isinstance(target, (str, bytes)) else f"descriptor {target}"
            return f"opened the real file {shown!r} for writing (a block engine's storage is its device)"
    return None


def _hook_of(guard: "BypassGuard"):
    """The audit hook of `guard`: a plain function that passes on only `WATCHED_EVENTS`. CPython calls a hook
    for every audited event (each traceback frame an exception's site is read from is two), and a bound
    method as a hook costs it ~3x a function's (~0.4 µs against ~0.14 µs a call)."""
    audit = guard._audit
    watched = WATCHED_EVENTS

    def hook(event: str, arguments: tuple) -> None:
        if event in watched:
            audit(event, arguments)
    return hook


class BypassGuard:
    """Example: `with GUARD.active("block"): engine.put(k, v)` raises InterpositionBypass if the engine escaped."""

    def __init__(self) -> None:
        self.medium: str | None = None
        self.found: str | None = None
        self.extra = None          # a further check (the file-system interposition's), called with (event, args)
        #                            for the events of WATCHED_EVENTS
        self._hooked = False

    @contextlib.contextmanager
    def active(self, medium: str, extra=None):
        if not self._hooked:
            sys.addaudithook(_hook_of(self))
            self._hooked = True
        outer = (self.medium, self.extra)
        self.medium, self.extra = medium, extra
        if outer[0] is None:
            self.found = None
        try:
            yield self
        finally:
            self.medium, self.extra = outer
            if outer[0] is None and self.found is not None:
                found, self.found = self.found, None
                raise InterpositionBypass(found)

    def _audit(self, event: str, arguments: tuple) -> None:
        if event not in WATCHED_EVENTS or self.medium is None or self.found is not None:
            return
        what = classify(event, arguments, self.medium)
        if what is None and self.extra is not None:
            what = self.extra(event, arguments)
        if what is not None:
            self.report(what)

    def report(self, what: str, consequence: str = "crashsweep cannot see or crash that I/O") -> None:
        """The engine did `what`, which the medium cannot test: the sweep stops when the scope ends (an engine
        that catches the call's error cannot hide it)."""
        if self.medium is not None and self.found is None:
            self.found = f"the engine {what} at {engine_location()}; {consequence}"


GUARD = BypassGuard()
