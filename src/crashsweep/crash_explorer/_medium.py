"""The explorer's one door to the medium an engine runs on (`media/`: block, file-system model, native).

Everything in the explorer that depends on the medium goes through here: the event
log a run writes, the target an engine is given, its crash points, and the durable
image. The rest (strategies, plans, results, traces, replay, minimization) is the
same on every medium.

Invariant: a block engine never sees a file system and a file-system engine never
sees a block device; nothing here asks which medium it has beyond `medium_of`.
"""

from __future__ import annotations

import random

from crashsweep.crash_explorer.media import medium_of


def uses_fs(context) -> bool:
    """The medium's log is an `FsLog` (file-system model or native)."""
    return medium_of(context).explain_as == "fs"


def new_log(context, traced: bool = True):
    return medium_of(context).new_log(context, traced)


def new_target(context, image, rng: random.Random, log, random_seed: str = "0"):
    return medium_of(context).new_target(context, image, rng, log, random_seed)


def engine_scope(context, target):
    return medium_of(context).engine_scope(context, target)


def hold(context):
    return medium_of(context).hold(context)


def let_go(context, engine: list) -> None:
    medium_of(context).let_go(context, engine)


def points_of(context, log, history, ops_offset: int = 0):
    return medium_of(context).points_of(context, log, history, ops_offset)


def durable_of(context, walk, log, base=None, hashed: bool = True):
    return medium_of(context).durable_of(context, walk, log, base=base, hashed=hashed)


def prepares_ahead(context) -> bool:
    return medium_of(context).prepares_ahead


def ahead(context, upcoming) -> None:
    medium_of(context).ahead(context, upcoming)


def forget_ahead(context) -> None:
    medium_of(context).forget_ahead()
