"""Python's cyclic garbage collector, paused around phases that build many long-lived objects.

Planning builds a state per image and a sweep keeps every result; none of them form
cycles, so reference counting frees them. With 100,000 of them alive, the collector's
repeated passes over them took a quarter of the parent's time (and starved the workers
on two cores). Paused: objects already alive move to the permanent generation
(`gc.freeze`), the collector is off for the phase, and what the phase built is frozen
before it is switched back on, so the first collection afterwards does not scan it all.
Cyclic garbage made before the phase is collected first; made during it, it is kept (an
engine kept alive by a cycle is collected explicitly by `_medium.let_go`).
"""

from __future__ import annotations

import contextlib
import gc


PAUSE_OBJECTS_MIN = 10_000     # below this many states or results the collector costs little: leave it be


@contextlib.contextmanager
def collector_paused(objects: int):
    """Pause around a phase that keeps about `objects` long-lived objects (states, results)."""
    if objects < PAUSE_OBJECTS_MIN:
        yield
        return
    gc.collect()        # garbage cycles made before the phase are freed, not frozen
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
