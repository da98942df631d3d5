"""A per-state time limit that interrupts engine code stuck in a Python loop.

It uses SIGALRM (the main thread of a process only; elsewhere it does nothing
and the executor's watchdog, which kills a silent worker, is the limit).
"""

from __future__ import annotations

import os
import signal
import threading
import time

from crashsweep.crash_explorer.errors import StateTimeout


class _Alarm:
    """The process's one SIGALRM timer, shared by every limit: a limit sets a deadline, and the timer is only
    set again when it would ring after that deadline (or is not set). Inside `alarm_held` (a worker's unit of
    states) a limit that ends leaves the timer set: a timer that rings while no limit is active, or before the
    deadline, is harmless — the handler sets it for the deadline, or leaves it off. So a state's limits cost a
    clock read, not two setitimer calls each. Outside it, a limit takes the timer off as it ends (nothing
    rings later, in code that may have a SIGALRM handler of its own)."""

    def __init__(self) -> None:
        self.deadline: float | None = None      # the active limit's, on time.monotonic()
        self.rings_at: float | None = None      # when the set timer rings (None: not set)
        self.held = 0                           # open `alarm_held` scopes
        self.installed = False                  # whether this process's SIGALRM handler is ours
        self.main_thread = threading.main_thread().ident
        os.register_at_fork(after_in_child=self._forgotten)

    def _forgotten(self) -> None:
        """In a forked child: no timer is set (setitimer's are not inherited); its handler is installed anew."""
        self.deadline = self.rings_at = None
        self.held = 0
        self.installed = False
        self.main_thread = threading.main_thread().ident

    def set_for(self, deadline: float, now: float) -> None:
        if not self.installed:
            signal.signal(signal.SIGALRM, self._rang)
            self.installed, self.rings_at = True, None
        self.deadline = deadline
        # (A ring time already past: it rang and its handler has not run yet, or the timer was taken off by
        # someone else; set it again either way — a handler still to run then sets it for the deadline.)
        if self.rings_at is None or self.rings_at > deadline or self.rings_at <= now:
            self.rings_at = deadline
            signal.setitimer(signal.ITIMER_REAL, max(deadline - now, 1e-6))

    def idle(self) -> None:
        """No limit is active: the timer stays set inside `alarm_held`, else it is taken off."""
        self.deadline = None
        if not self.held and self.rings_at is not None:
            self.rings_at = None
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _rang(self, signum, frame) -> None:
        self.rings_at = None
        deadline = self.deadline
        if deadline is None:
            return
        now = time.monotonic()
        if now >= deadline:
            self.deadline = None
            raise StateTimeout()
        self.rings_at = deadline            # rang early (a timer set for an earlier, finished limit)
        signal.setitimer(signal.ITIMER_REAL, max(deadline - now, 1e-6))


_ALARM = _Alarm()


class time_limit:
    """Example: `with time_limit(2.0): engine.recover()` raises StateTimeout after 2 s.

    Limits nest: the innermost one is in force, and the outer one again after it. A class, not a generator
    context manager: it runs around every engine call of every state (`_Alarm`: no system call in most).
    """

    __slots__ = ("seconds", "outer", "armed")

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.outer: float | None = None
        self.armed = False

    def __enter__(self):
        if threading.get_ident() != _ALARM.main_thread:
            return self
        now = time.monotonic()
        self.outer = _ALARM.deadline
        _ALARM.set_for(now + self.seconds, now)
        self.armed = True
        return self

    def __exit__(self, *exc) -> bool:
        if self.armed:
            self.armed = False
            if self.outer is None:
                _ALARM.idle()
            else:
                _ALARM.set_for(self.outer, time.monotonic())
        return False


class alarm_held:
    """Limits inside leave the timer set when they end (a worker's unit: many short states, each with limits);
    it is taken off when the outermost scope ends. Example: `with alarm_held(): run the unit's states`."""

    __slots__ = ("holding",)

    def __init__(self) -> None:
        self.holding = False

    def __enter__(self):
        if threading.get_ident() == _ALARM.main_thread:     # (limits elsewhere do nothing)
            self.holding = True
            _ALARM.held += 1
        return self

    def __exit__(self, *exc) -> bool:
        if self.holding:
            self.holding = False
            _ALARM.held -= 1
            if _ALARM.deadline is None:
                _ALARM.idle()
        return False
