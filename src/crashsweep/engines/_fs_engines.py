"""Engines on the file-system model: Python engines under interposition, and how they are opened.

A path engine's constructor takes the store's directory (`STORE_PATH`, which
exists and is durable before the workload, DESIGN §4). Its calls are served by
the model while `scope()` is active: the explorer enters it around opening the
engine, reading it out and continuing after recovery.

Invariant: one `Interposer` per process at a time; a different set of engine
modules (another engine in the same process, as in a test run) replaces it, so
modules imported since are patched too.
"""

from __future__ import annotations

import functools
import inspect

from crashsweep.disk_model import STORE_PATH, Interposer, shared_session

_current: list = [None, None]      # [modules key, Interposer]


def _interposer_for(key: tuple[str, ...]) -> Interposer:
    if _current[0] != key:
        if _current[1] is not None:
            _current[1].close()
        _current[:] = [key, Interposer(shared_session(), list(key))]
    return _current[1]


def interposition_scope(modules: list[str]):
    """A `scope(target)` for an adapter: the model serves these modules' file calls (and every other module's)."""
    key = tuple(sorted(set(modules)))

    def scope(target):
        return _interposer_for(key).active()

    return scope


def open_path_engine(engine_class: type, options: dict, events: list):
    keywords = dict(options)
    try:
        takes_events = _takes_events(engine_class)
    except TypeError:                       # a class whose metaclass makes it unhashable: asked every time
        takes_events = _takes_events.__wrapped__(engine_class)
    if takes_events:
        keywords["events"] = events
    return engine_class(STORE_PATH, **keywords)


@functools.lru_cache(maxsize=256)
def _takes_events(engine_class: type) -> bool:
    """Whether the engine's constructor names an `events` parameter (asked once per class: every state opens it)."""
    try:
        return "events" in inspect.signature(engine_class).parameters
    except (TypeError, ValueError):
        return False
