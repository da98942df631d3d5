"""Executors: run work units and stream each state's result back, whatever happens to an engine.

`LocalExecutor` runs units in worker processes (one per job). A worker sends
its results in small batches (fewer messages, less pickling). When a worker
dies (an engine that calls os._exit or crashes the interpreter) or is silent
past the watchdog limit and is killed, the states of its unit that were not
reported are run again one per unit: a state that kills (or silences) a worker
on its own is the culprit, and is reported as `recovery-error` (or `hang`);
the others get their normal results. `InlineExecutor` runs units in this process (for replay,
minimize and tests).

Invariants: every state of every unit yields exactly one result; results do not
depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait

from crashsweep.crash_explorer._worker import run_unit

WATCHDOG_SLACK_S = 5.0
POLL_INTERVAL_S = 0.2
BATCH_STATES_MAX = 32
BATCH_SECONDS_MAX = 0.05


class InlineExecutor:
    """Runs units here, in order. Example: `InlineExecutor().run(units, print)`."""

    def run(self, units: Iterable[dict], on_result: Callable[[dict], None],
            should_stop: Callable[[], bool] = lambda: False) -> bool:
        for unit in units:
            for result in run_unit(unit):
                on_result(result)
                if should_stop():
                    return False
        return True


def _worker_main(connection) -> None:
    # Ctrl-C reaches the whole process group: only the parent handles it (and stops the workers),
    # so a worker never dies of it mid-state and is never mistaken for an engine that killed it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        unit = connection.recv()
        if unit is None:
            return
        batch, sent_at = [], time.monotonic()
        for result in run_unit(unit):
            batch.append(result)
            if len(batch) >= BATCH_STATES_MAX or time.monotonic() - sent_at > BATCH_SECONDS_MAX:
                connection.send(("results", batch))
                batch, sent_at = [], time.monotonic()
        connection.send(("results", batch))
        connection.send(("done", unit["unit"]))


class _Worker:
    def __init__(self, context):
        parent_end, child_end = context.Pipe()
        self.connection = parent_end
        self.process = context.Process(target=_worker_main, args=(child_end,), daemon=True)
        self.process.start()
        child_end.close()
        self.unit: dict | None = None
        self.reported: set[int] = set()
        self.last_heard = time.monotonic()
        self.specs_sent: set = set()

    def give(self, unit: dict) -> None:
        self.unit, self.reported, self.last_heard = unit, set(), time.monotonic()
        spec_id = unit.get("spec_id")
        if spec_id is not None and spec_id in self.specs_sent:
            unit = {**unit, "spec": None}       # the worker keeps the recording of a spec it was sent
        self.specs_sent.add(spec_id)
        self.connection.send(unit)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except (OSError, BrokenPipeError):
                pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class LocalExecutor:
    """Worker processes on this machine. Requires: jobs >= 1."""

    def __init__(self, jobs: int, state_timeout_s: float):
        assert jobs >= 1, jobs
        self.jobs = jobs
        self.watchdog_s = 2 * state_timeout_s + WATCHDOG_SLACK_S
        self.context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")

    def run(self, units: Iterable[dict], on_result: Callable[[dict], None],
            should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Returns True when every unit finished, False when `should_stop` ended it early."""
        queue = deque(units)
        workers = [_Worker(self.context) for _ in range(min(self.jobs, max(1, len(queue))))]
        try:
            return self._loop(queue, workers, on_result, should_stop)
        finally:
            for worker in workers:
                worker.stop(kill=worker.unit is not None)

    def _loop(self, queue, workers, on_result, should_stop) -> bool:
        while True:
            for worker in workers:
                if worker.unit is None and queue:
                    worker.give(queue.popleft())
            busy = [worker for worker in workers if worker.unit is not None]
            if not busy:
                return True
            if should_stop():
                return False
            ready = wait([worker.connection for worker in busy], timeout=POLL_INTERVAL_S)
            for worker in busy:
                if worker.connection in ready:
                    self._receive(worker, workers, queue, on_result)
                elif time.monotonic() - worker.last_heard > self.watchdog_s:
                    self._replace(worker, workers, queue, on_result, "hang",
                                  f"the worker was silent for {self.watchdog_s:.0f} s and was killed")

    def _receive(self, worker, workers, queue, on_result) -> None:
        try:
            message, payload = worker.connection.recv()
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            self._replace(worker, workers, queue, on_result, "recovery-error",
                          f"the engine killed its worker process (exit code {code})")
            return
        worker.last_heard = time.monotonic()
        if message == "results":
            for result in payload:
                worker.reported.add(result["state"])
                on_result(result)
        else:
            worker.unit = None

    def _replace(self, worker, workers, queue, on_result, kind: str, detail: str) -> None:
        unit = worker.unit
        left = [state for state in unit["states"] if state[0] not in worker.reported]
        if len(left) == 1:   # alone in its unit: this state is the culprit
            state_id, point, choice, windows, image, _ = left[0]
            on_result({"state": state_id, "point": point, "choice": choice, "windows": windows, "image": image,
                       "kind": kind, "outcome": kind, "detail": detail, "engine_s": 0.0, "total_s": 0.0})
        else:                # isolate: every unreported state runs again in a unit of its own
            queue.extendleft({**unit, "states": [state]} for state in reversed(left))
        worker.unit = None
        worker.stop(kill=True)
        workers[workers.index(worker)] = _Worker(self.context)
