"""A per-state time limit that interrupts engine code stuck in a Python loop.

It uses SIGALRM (the main thread of a process only; elsewhere it does nothing
and the executor's watchdog, which kills a silent worker, is the limit).
"""

from __future__ import annotations

import os
import signal
import threading

from crashsweep.crash_explorer.errors import StateTimeout


def _raise_timeout(signum, frame):
    raise StateTimeout()


_installed_in: list[int] = []   # the pid whose SIGALRM handler is ours (installed once per process)


class time_limit:
    """Example: `with time_limit(2.0): engine.recover()` raises StateTimeout after 2 s.

    The handler is installed once per process; each use costs two setitimer calls (a class, not a generator
    context manager: it runs around every engine call of every state).
    """

    __slots__ = ("seconds", "armed")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = False

    def __enter__(self):
        if threading.get_ident() != threading.main_thread().ident:
            return self
        if _installed_in != [os.getpid()]:
            signal.signal(signal.SIGALRM, _raise_timeout)
            _installed_in[:] = [os.getpid()]
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self.armed = True
        return self

    def __exit__(self, *exc) -> bool:
        if self.armed:
            self.armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        return False
