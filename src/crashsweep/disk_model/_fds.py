"""Waiting on a descriptor, whatever its number.

`select.select` refuses descriptors from 1024 up ("filedescriptor out of range in select()"), which a
process reaches once it holds many files or processes; `poll` takes any descriptor. A harness error like
that must never reach an engine's state as if the engine had raised it.
"""

from __future__ import annotations

import math
import select

_EVENTS = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR


def readable(fd: int, timeout_s: float | None = 0.0) -> bool:
    """Whether `fd` has data or its end (EOF, an error) within `timeout_s` seconds (None: wait for it)."""
    poller = select.poll()
    poller.register(fd, _EVENTS)
    return bool(poller.poll(None if timeout_s is None else math.ceil(max(0.0, timeout_s) * 1000)))
