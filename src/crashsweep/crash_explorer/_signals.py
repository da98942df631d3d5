"""SIGTERM handled like Ctrl-C, except when engine code sends it.

A CI job that times out sends SIGTERM: crashsweep then stops like on Ctrl-C (results
kept, summary and reports written) and exits 143. But engine code runs in processes
that crashsweep started, and an engine may send SIGTERM to its parent (crashsweep);
that must not stop the sweep. A Python signal handler is not told who sent a signal,
so SIGTERM is blocked and a helper thread takes it with `sigtimedwait`, which says
who sent it: a sender in the session of a process running engine code (each such
process leads its own session) is ignored and counted; any other sender interrupts
the main thread with `Terminated`. Leaving the context wakes the helper at once with a signal sent to that
thread alone (`WAKE_SIGNAL`, blocked there and nowhere else), so a command does not wait out the helper's
polling interval when it ends.

Invariants: inside `sigterm_as_interrupt`, SIGTERM never ends the process by its
default action; processes forked inside it unblock SIGTERM before running engine code
(`_sandbox.enter_worker_process`), so they can still be terminated.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
from collections.abc import Callable

WAIT_INTERVAL_S = 0.2
# Sent by `pthread_kill` to the helper thread only, which blocks it: never delivered to a handler, never seen by
# another thread. A real-time signal, so it cannot be one the engine or the user sends by name.
WAKE_SIGNAL = getattr(signal, "SIGRTMAX", None)
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """crashsweep was sent SIGTERM from outside (a CI timeout): stop as on Ctrl-C, exit 143."""


_ignored: list[int] = []


def ignored_from_engines() -> int:
    """How many SIGTERMs sent by engine code were ignored."""
    return len(_ignored)


def _session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


# Signals delivered as interrupts and not yet acted on. Python raises a signal handler's exception in whatever
# Python code the main thread runs next; when that is a weakref callback or a `__del__`, the exception is
# printed ("Exception ignored in ...") and lost. The sweep asks `raise_if_interrupted` between results, so a
# lost interrupt still stops it.
_pending: list[int] = []


def _raise_terminated(signum, frame):
    _pending.append(signal.SIGTERM)
    raise Terminated()


def _raise_interrupt(signum, frame):
    _pending.append(signal.SIGINT)
    raise KeyboardInterrupt()


def raise_if_interrupted() -> None:
    """Raise the interrupt a signal asked for if nothing acted on it yet (it was lost, see `_pending`)."""
    if _pending:
        signum = _pending[-1]
        _pending.clear()
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def interrupt_taken() -> None:
    """The interrupt was acted on: a later `raise_if_interrupted` raises only for a new one."""
    _pending.clear()


@contextlib.contextmanager
def sigterm_as_interrupt(engine_sessions: Callable[[], set[int]]):
    """Example: `with sigterm_as_interrupt(lambda: {worker.pid}): run()` raises Terminated on an outside SIGTERM."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "sigtimedwait"):
        yield
        return
    previous_handler = signal.signal(signal.SIGTERM, _raise_terminated)
    previous_interrupt = signal.getsignal(signal.SIGINT)
    if previous_interrupt is signal.default_int_handler:        # Ctrl-C as Python raises it, but remembered
        signal.signal(signal.SIGINT, _raise_interrupt)
    _pending.clear()
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    stop = threading.Event()
    wakeable = threading.Event()

    def wait_for_sigterm() -> None:
        waited = {signal.SIGTERM}
        if WAKE_SIGNAL is not None:
            signal.pthread_sigmask(signal.SIG_BLOCK, {WAKE_SIGNAL})
            waited.add(WAKE_SIGNAL)
            wakeable.set()
        while not stop.is_set():
            info = signal.sigtimedwait(waited, WAIT_INTERVAL_S)
            if info is None or info.si_signo != signal.SIGTERM:
                continue
            sender = info.si_pid
            if sender != os.getpid() and _session_of(sender) in engine_sessions():
                _ignored.append(sender)
                continue
            _thread.interrupt_main(signal.SIGTERM)

    waiter = threading.Thread(target=wait_for_sigterm, name="crashsweep-sigterm", daemon=True)
    waiter.start()
    try:
        yield
    finally:
        stop.set()
        # Only once the helper blocks it: a real-time signal nobody handles would end the process.
        if WAKE_SIGNAL is not None and wakeable.wait(WAIT_INTERVAL_S):
            try:
                signal.pthread_kill(waiter.ident, WAKE_SIGNAL)
            except ProcessLookupError:          # the helper already ended
                pass
        waiter.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
        signal.signal(signal.SIGTERM, previous_handler)
        if previous_interrupt is signal.default_int_handler:
            signal.signal(signal.SIGINT, previous_interrupt)
        _pending.clear()
