"""Source sites: which line of the engine issued an I/O call, or raised.

A finding must speak of the engine's code ("rename at json_kv.py:29"), so the
recording notes, for every call an engine makes, the innermost stack frame that is
the engine's own: not crashsweep's harness (explorer, media, reference, reports,
adapters), not pyfakefs, and not the standard library when a frame of the engine
itself is on the stack (`shutil.copyfile` called by the engine is the engine's
line). An engine that *is* standard-library code (`dbm.dumb`) gets its stdlib line.
crashsweep's own engines (the B^ε-tree under `store/`, `engines/examples/`) are
engine code.

The walk stops at crashsweep's explorer, which drives the engine: frames beyond it
(a test that started a sweep, the parent a worker was forked from) are never the
engine's. An engine in C (SQLite through its VFS) has no site.

Sites are shown relative to where a user would look: the current directory, the
installed packages, the standard library, or `crashsweep/…`.

Invariant: `engine_site` never raises and costs one walk of the stack (file
categories are cached by file name).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType, TracebackType

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_ENGINE_PARTS = (os.path.join(_PACKAGE, "store") + os.sep, os.path.join(_PACKAGE, "engines", "examples") + os.sep)
_STDLIB = sysconfig.get_paths()["stdlib"] + os.sep
_INSTALLED = tuple(sorted({sysconfig.get_paths()["purelib"] + os.sep, sysconfig.get_paths()["platlib"] + os.sep},
                          key=len, reverse=True))
_DRIVER = os.path.join(_PACKAGE, "crash_explorer") + os.sep
HARNESS, LIBRARY, ENGINE, DRIVER = 0, 1, 2, 3
_CATEGORY: dict[str, int] = {}
UNKNOWN_SITE = ""


def _category(filename: str) -> int:
    category = _CATEGORY.get(filename)
    if category is None:
        if filename.startswith(_ENGINE_PARTS):
            category = ENGINE
        elif filename.startswith(_DRIVER):
            category = DRIVER       # what drives the engine: frames beyond it (a test, a fork's parent) are not
        elif filename.startswith(_PACKAGE) or "pyfakefs" in filename or filename.startswith("<"):
            category = HARNESS
        elif filename.startswith(_STDLIB) and not filename.startswith(_INSTALLED):
            category = LIBRARY
        else:
            category = ENGINE
        _CATEGORY[filename] = category
    return category


_SHOWN_AS: dict[str, str] = {}     # a copy of a user's file on another machine -> its name on the user's


def show_file_as(filename: str, shown: str) -> None:
    """Show `filename` (a shipped copy) as `shown`, the name the user's own machine gives it."""
    _SHOWN_AS[filename] = shown
    _CATEGORY.pop(filename, None)
    _SHOWN.clear()


_USER_DIRECTORY: list[str] = []     # the user's current directory, where it is not this process's (a Dask worker)


def show_relative_to(directory: str) -> None:
    """Name files relative to `directory`, the user's current directory on the machine that started the sweep."""
    _USER_DIRECTORY[:] = [directory]
    _SHOWN.clear()


_SHOWN: dict[tuple[str, str], str] = {}   # (file name, the directory names are relative to) -> shown name
_READ_ONCE: list[str] = []     # this process's current directory, read when a worker's unit began


class directory_read_once:
    """While a worker's unit runs, files are named relative to this process's current directory as it was when
    the unit began: crashsweep does not change it meanwhile (an engine's `os` is the model's, or runs in another
    process), and reading it cost every refusing state's site a system call."""

    def __enter__(self) -> None:
        _READ_ONCE[:] = [os.getcwd()]

    def __exit__(self, *exc_info) -> None:
        _READ_ONCE.clear()


def shown_path(filename: str) -> str:
    """A file name as a user would look it up: relative to the current directory, site-packages, the standard
    library or crashsweep's package. Kept per file and directory (`os.path.relpath` costs ~10 µs: a refusing
    state names its raising line)."""
    directory = _USER_DIRECTORY[0] if _USER_DIRECTORY else _READ_ONCE[0] if _READ_ONCE else os.getcwd()
    shown = _SHOWN.get((filename, directory))
    if shown is None:
        if len(_SHOWN) >= SHOWN_KEPT_MAX:
            _SHOWN.clear()
        shown = _SHOWN[(filename, directory)] = _shown_path(filename, directory)
    return shown


SHOWN_KEPT_MAX = 4096


def _shown_path(filename: str, directory: str) -> str:
    if filename in _SHOWN_AS:
        return _SHOWN_AS[filename]
    if filename.startswith(_PACKAGE):
        return "crashsweep/" + filename[len(_PACKAGE):]
    for root in _INSTALLED:
        if filename.startswith(root):
            return filename[len(root):]
    if filename.startswith(_STDLIB):
        return filename[len(_STDLIB):]
    try:
        relative = os.path.relpath(filename, directory)
    except ValueError:
        return filename
    return relative if not relative.startswith("..") else filename


_PLUMBING = tuple(_STDLIB + name for name in (
    "os.py", "io.py", "_pyio.py", "shutil.py", "tempfile.py", "pathlib.py", "genericpath.py", "posixpath.py",
    "codecs.py", "contextlib.py", "json" + os.sep, "encodings" + os.sep))


_PLUMBED: dict[str, bool] = {}


def _plumbing(filename: str) -> bool:
    """Whether a standard-library file is file plumbing (`_PLUMBING`), kept per file name."""
    plumbed = _PLUMBED.get(filename)
    if plumbed is None:
        if len(_PLUMBED) >= SHOWN_KEPT_MAX:
            _PLUMBED.clear()
        plumbed = _PLUMBED[filename] = filename.startswith(_PLUMBING)
    return plumbed


def _pick(frames) -> str:
    """The innermost engine frame; with none, the innermost standard-library frame that is not file plumbing
    (the engine that is stdlib code, e.g. dbm/dumb.py, rather than the os.py helper it called)."""
    library = plumbing = None
    category_of = _CATEGORY.get
    for filename, line in frames:
        category = category_of(filename)
        if category is None:
            category = _category(filename)
        if category == ENGINE:
            return f"{shown_path(filename)}:{line}"
        if category == DRIVER:
            break
        if category == LIBRARY and library is None:     # (once one is found, only an engine frame matters)
            if plumbing is None:
                plumbing = (filename, line)
            if not _plumbing(filename):
                library = (filename, line)
    found = library or plumbing
    return f"{shown_path(found[0])}:{found[1]}" if found else UNKNOWN_SITE


def _stack(frame: FrameType | None):
    while frame is not None:
        yield frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back


def engine_site(depth: int = 1) -> str:
    """file:line of the innermost engine frame calling this (see the module docstring), or "" if none.

    Example: in a file-system log, `site = engine_site()` while serving the engine's `os.rename`."""
    try:
        return _pick(_stack(sys._getframe(depth)))
    except Exception:    # noqa: BLE001 - a site is a courtesy; never let it break the recording
        return UNKNOWN_SITE


def raising_site(traceback: TracebackType | None) -> str:
    """file:line of the innermost engine frame of an exception's traceback, or "" (C code, harness only).
    Frames are looked at innermost first and only until `_pick` has its answer: CPython audits each frame's
    `tb_frame` and `f_code` (two calls of crashsweep's audit hook), and a refusal names its site every state."""
    links = []
    while traceback is not None:
        links.append(traceback)
        traceback = traceback.tb_next
    try:
        return _pick((link.tb_frame.f_code.co_filename, link.tb_lineno) for link in reversed(links))
    except Exception:    # noqa: BLE001
        return UNKNOWN_SITE


def pick_site(frames) -> str:
    """file:line of the innermost engine frame of `(filename, line)` pairs given innermost first, or ""."""
    try:
        return _pick(frames)
    except Exception:    # noqa: BLE001
        return UNKNOWN_SITE
