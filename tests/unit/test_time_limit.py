"""The per-state time limit: a stuck engine is interrupted in every state, however many short states came before
it, and a limit that ended never interrupts anything (one SIGALRM timer shared by all limits)."""

import os
import signal
import time

import pytest

from crashsweep.crash_explorer._time_limit import alarm_held, time_limit
from crashsweep.crash_explorer.errors import StateTimeout


def _spin(seconds: float) -> None:
    """Python code that runs for `seconds` (a stuck engine's loop)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _stuck_for(seconds: float) -> float:
    """How long a stuck state under a limit of `seconds` ran before StateTimeout interrupted it."""
    began = time.monotonic()
    with pytest.raises(StateTimeout):
        with time_limit(seconds):
            _spin(5)
    return time.monotonic() - began


def test_a_stuck_state_is_interrupted_after_its_limit():
    assert 0.04 <= _stuck_for(0.05) < 1.0


def test_a_stuck_state_after_many_quick_ones_is_interrupted_on_time():
    """In a unit (`alarm_held`) the timer set by the first state rings during a later one; the later one's own
    deadline is kept."""
    with alarm_held():
        for _ in range(2000):
            with time_limit(0.2):
                pass
        _spin(0.1)              # the first state's timer rings within the next limit, before its deadline
        assert 0.19 <= _stuck_for(0.2) < 1.0


def test_a_limit_that_ended_interrupts_nothing():
    with alarm_held():
        with time_limit(0.05):
            pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0      # left set inside a unit
        _spin(0.2)              # its timer rings here, between states
        with time_limit(5):
            _spin(0.1)


def test_no_timer_is_left_set_outside_a_unit():
    """Code after a sweep may have a SIGALRM handler of its own (or the default one, which ends the process)."""
    with time_limit(5):
        pass
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    with alarm_held():
        with alarm_held():
            with time_limit(5):
                pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_limits_nest_and_the_outer_one_holds_again_after_the_inner_one():
    with pytest.raises(StateTimeout):
        with time_limit(0.3):
            with time_limit(10):
                _spin(0.05)
            _spin(5)
    with pytest.raises(StateTimeout):
        with time_limit(10):
            with time_limit(0.05):
                _spin(5)


def test_a_timer_taken_off_by_an_engine_is_set_again_once_its_ring_time_has_passed():
    with alarm_held():
        with time_limit(0.05):
            signal.setitimer(signal.ITIMER_REAL, 0)     # an engine that takes the process's timer off
        _spin(0.1)
        with pytest.raises(StateTimeout):
            with time_limit(0.05):
                _spin(5)


def test_a_forked_child_has_a_limit_of_its_own():
    with time_limit(10):
        pid = os.fork()
        if pid == 0:                                # (the child's own timer: none is inherited)
            code = 1
            try:
                with time_limit(0.05):
                    _spin(5)
            except StateTimeout:
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
