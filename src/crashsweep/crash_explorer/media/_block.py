"""The simulated block device (DESIGN §3): an asynchronous bus, sectors, a volatile write cache."""

from __future__ import annotations

import gc
import random
import sys
import weakref

from crashsweep.crash_explorer._crash_points import crash_points
from crashsweep.crash_explorer._image import DurableImage
from crashsweep.crash_explorer.media._base import Medium
from crashsweep.disk_model import EventLog, SimulatedBlockDevice
from crashsweep.disk_model._bypass import GUARD
from crashsweep.disk_model._memo import _recording
from crashsweep.disk_model.block._memo import DeviceMemo, NotedBlockDevice, NotedEventLog, QuietLog


class BlockMedium(Medium):
    name = "block"
    unit_word = "sector"
    explain_as = "block"
    corruption = True
    target_draws_on_rng = True   # the simulated device completes in-flight requests in the rng's order
    memoizable = True            # requests answered by a fresh device on the state's image (block/_memo.py)
    memo_logs = True             # that device logs them as the live one would, operation markers included

    def new_log(self, context, traced: bool = True):
        return NotedEventLog() if _recording[0] is not None else EventLog()

    def new_target(self, context, image, rng: random.Random, log, random_seed: str = "0"):
        device = NotedBlockDevice if _recording[0] is not None else SimulatedBlockDevice
        return device(context.sector_size, context.sector_count, rng, context.volatile_cache, base=image, log=log)

    def new_memo(self):
        return DeviceMemo()

    def memo_target(self, context, image, rng_seed: str, traced: bool = False):
        return SimulatedBlockDevice(context.sector_size, context.sector_count, random.Random(rng_seed),
                                    context.volatile_cache, base=image, log=EventLog() if traced else QuietLog())

    def walked_run(self, target):
        return target.log, target.rng

    def engine_scope(self, context, target):
        return GUARD.active("block")

    def let_go(self, context, engine: list) -> None:
        """A block engine's destructor touches only its own device: run it now, its errors unreported."""
        if not engine:
            return
        probe = _probe(engine[0])
        unraisable, sys.unraisablehook = sys.unraisablehook, lambda report: None
        try:
            engine.clear()
            if probe() is not None:
                gc.collect()
        finally:
            sys.unraisablehook = unraisable

    def points_of(self, context, log, history, ops_offset: int = 0):
        return crash_points(log, history, context.volatile_cache, ops_offset)

    def durable_of(self, context, walk, log, base=None, hashed: bool = True):
        return DurableImage(walk, log.payloads, context.sector_size, base=base, hashed=hashed)


def _probe(engine):
    """A weak reference to the engine, or a stand-in that says "collect to be safe"."""
    try:
        return weakref.ref(engine)
    except TypeError:
        return lambda: True
