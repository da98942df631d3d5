"""A per-state time limit that interrupts engine code stuck in a Python loop.

It uses SIGALRM (the main thread of a process only; elsewhere it does nothing
and the executor's watchdog, which kills a silent worker, is the limit).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

from crashsweep.crash_explorer.errors import StateTimeout


def _raise_timeout(signum, frame):
    raise StateTimeout()


_installed_in: list[int] = []   # the pid whose SIGALRM handler is ours (installed once per process)


@contextlib.contextmanager
def time_limit(seconds: float):
    """Example: `with time_limit(2.0): engine.recover()` raises StateTimeout after 2 s.

    The handler is installed once per process; each use costs two setitimer calls.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _installed_in != [os.getpid()]:
        signal.signal(signal.SIGALRM, _raise_timeout)
        _installed_in[:] = [os.getpid()]
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
