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

import gc
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait

from crashsweep.crash_explorer import _wire
from crashsweep.crash_explorer._limits import OUTPUT_BYTES_MAX
from crashsweep.crash_explorer._sandbox import child_ended, enter_worker_process, kill_children, kill_group, kill_group_except_self
from crashsweep.crash_explorer._shipping import install
from crashsweep.crash_explorer._worker import run_unit
from crashsweep.crash_explorer.errors import EngineBypass
from crashsweep.engines._native import pooled_hosts
from crashsweep.disk_model import InterpositionBypass

WATCHDOG_SLACK_S = 5.0
POLL_INTERVAL_S = 0.2
FEED_POLL_S = 0.01      # while workers are busy and a feed plans elsewhere: how often to look for its progress
BATCH_STATES_MAX = 32
BATCH_SECONDS_MAX = 0.05
MESSAGE_BYTES_MAX = 1 << 30     # one batch of results from a worker
RESULT_FIELDS_MAX = 64


def _well_formed(result, worker) -> bool:
    """A worker's result names a state of its unit not reported yet (an engine could write to the pipe)."""
    return (isinstance(result, dict) and len(result) <= RESULT_FIELDS_MAX and isinstance(result.get("state"), int)
            and result["state"] in worker.expected and result["state"] not in worker.reported
            and isinstance(result.get("outcome"), str) and (result.get("kind") is None or isinstance(result["kind"], str)))


def _death(exit_code: int | None) -> tuple[str, str]:
    """(kind, detail) of a worker that died mid-unit."""
    if exit_code is not None and exit_code < 0:
        number = -exit_code
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        if number == signal.SIGKILL:
            return "recovery-error", (f"the worker process was killed by signal {number} ({name}): by the engine, "
                                      "or by the kernel for memory (see --memory-limit)")
        return "recovery-error", f"the engine killed its worker process (signal {number}, {name})"
    return "recovery-error", f"the engine ended its worker process (exit code {exit_code})"


def plan_on(feed, busy: bool, should_stop: Callable[[], bool]) -> float | None:
    """One turn of a feed's planning beside the units out (`busy`): never waiting on planning while a unit
    is out (its results come first). The time to wait for results next, or None when `should_stop` says so."""
    if should_stop():
        return None
    progressed = feed.pump(0.0 if busy else POLL_INTERVAL_S)
    return 0 if progressed or not busy else FEED_POLL_S


class InlineExecutor:
    """Runs units here, in order. Example: `InlineExecutor().run(units, print)`. A feed (`LocalExecutor.run`)
    is pumped a step at a time and every unit it has is run at once (as early as a unit can be)."""

    takes_feed = True

    def run(self, units, on_result: Callable[[dict], None],
            should_stop: Callable[[], bool] = lambda: False) -> bool:
        feed = units if hasattr(units, "pump") else None
        while True:
            for unit in units if feed is None else iter(feed.take, None):
                for result in run_unit(unit):
                    on_result(result)
                    if should_stop():
                        return False
            if feed is None or feed.finished:
                return True
            feed.pump(None)


def _worker_main(connection, memory_limit_bytes: int | None, setup: dict | None = None) -> None:
    # Its own session (Ctrl-C and a CI's SIGTERM reach only the parent, which stops the workers; anything the
    # engine starts is in this worker's process group), the memory limit, and the engine's output captured.
    # `setup`: a shipped engine's files on this machine (`_shipping.install`).
    gc.freeze()     # what the fork brought is the sweep's, alive for good: the worker's collections skip it
    output = _OutputCapture()
    enter_worker_process(memory_limit_bytes, output.fd)
    install(setup)
    while True:
        unit = connection.recv()
        if unit is None:
            return
        try:
            _run_and_send(unit, output, connection)
        except InterpositionBypass as bypass:      # the engine escaped its medium: the sweep must stop
            connection.send_bytes(_wire.encode(["bypass", str(bypass)]))


def _run_and_send(unit: dict, output: "_OutputCapture", connection) -> None:
    batch, sent_at = [], time.monotonic()
    engine_ran = []

    def after_state(result: dict) -> None:
        if result.get("memo") is not True:   # a state the observation memo answered ran no engine code
            _after_state(result, output)
            engine_ran[:] = [True]

    for result in run_unit(unit, after_state):
        batch.append(result)
        if len(batch) >= BATCH_STATES_MAX or time.monotonic() - sent_at > BATCH_SECONDS_MAX:
            connection.send_bytes(_wire.encode(["results", batch]))
            batch, sent_at = [], time.monotonic()
    left = kill_group_except_self(pooled_hosts()) if engine_ran else 0
    if left and batch:
        batch[-1]["leftovers"] = batch[-1].get("leftovers", 0) + left
    connection.send_bytes(_wire.encode(["results", batch]))
    connection.send_bytes(_wire.encode(["done", unit["unit"]]))


def _after_state(result: dict, output: "_OutputCapture") -> None:
    """What the engine left after one state: its output (kept with the result, capped) and the processes it
    started (killed now: nothing an engine starts outlives its state). It runs inside the medium's scope
    (`run_unit`'s `after_state`): the real `os` of crashsweep's own modules only, never `open`."""
    text = output.take()
    if text:
        result["output"] = text
    left = kill_children(pooled_hosts())
    if left:
        result["leftovers"] = left


class _OutputCapture:
    """The worker's stdout and stderr go to an unlinked file; `take()` returns and clears what one state wrote."""

    def __init__(self) -> None:
        directory = tempfile.mkdtemp(prefix="crashsweep-worker-")
        path = os.path.join(directory, "output")
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        os.unlink(path)
        os.rmdir(directory)

    def take(self) -> str:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:      # noqa: BLE001 - an engine may have replaced or closed the stream
                pass
        size = os.lseek(self.fd, 0, os.SEEK_END)      # (an appending file: its position is no writer's concern)
        if not size:
            return ""
        data = os.pread(self.fd, OUTPUT_BYTES_MAX, 0)
        os.ftruncate(self.fd, 0)
        text = data.decode("utf-8", "replace")
        if size > OUTPUT_BYTES_MAX:
            text += f"\n[... {size - OUTPUT_BYTES_MAX:,} more bytes of output not kept]"
        return text


class _Worker:
    def __init__(self, context, memory_limit_bytes: int | None, setup: dict | None = None):
        parent_end, child_end = context.Pipe()
        self.connection = parent_end
        self.process = context.Process(target=_worker_main, args=(child_end, memory_limit_bytes, setup),
                                       daemon=True)
        self.process.start()
        _workers_alive.add(self.process.pid)
        child_end.close()
        self.unit: dict | None = None
        self.reported: set[int] = set()
        self.expected: set[int] = set()
        self.last_heard = time.monotonic()
        self.specs_sent: set = set()

    def give(self, unit: dict) -> None:
        self.unit, self.reported, self.last_heard = unit, set(), time.monotonic()
        self.expected = {state[0] for state in unit["states"]}
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
        kill_group(self.process.pid)          # whatever its engines started, in its session
        child_ended(self.process.pid)         # what it kept for its lifetime (it ends without atexit hooks)
        _workers_alive.discard(self.process.pid)
        self.connection.close()


_workers_alive: set[int] = set()


def worker_sessions() -> set[int]:
    """Session ids of the executor's workers alive now (each worker leads its own session)."""
    return set(_workers_alive)


class LocalExecutor:
    """Worker processes on this machine. Requires: jobs >= 1."""

    def __init__(self, jobs: int, state_timeout_s: float, memory_limit_bytes: int | None = None,
                 keep_workers: bool = False, setup: dict | None = None):
        """`setup`: a shipped engine's files on this machine (`_shipping.materialize`)."""
        assert jobs >= 1, jobs
        self.setup = setup
        self.jobs = jobs
        self.keep_workers = keep_workers
        self._kept: list[_Worker] = []
        self.memory_limit_bytes = memory_limit_bytes
        self.watchdog_s = 2 * state_timeout_s + WATCHDOG_SLACK_S
        self.context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")

    takes_feed = True     # `run` takes a feed of units that come while it runs (`_sweep._StreamFeed`)

    def run(self, units, on_result: Callable[[dict], None],
            should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Returns True when every unit finished, False when `should_stop` ended it early. With `keep_workers`,
        idle workers stay alive for the next `run` (many one-state runs, as minimization makes, fork once).
        `units`: an iterable of units, or a feed: `take()` gives a unit ready now (or None), `pump(wait_s)`
        makes more (waiting at most `wait_s`; says whether it did), `finished` once no more will come."""
        feed = units if hasattr(units, "pump") else None
        queue = deque() if feed is not None else deque(units)
        wanted = self.jobs if feed is not None else min(self.jobs, max(1, len(queue)))
        workers = [worker for worker in self._kept if worker.process.is_alive()][:wanted]
        for worker in self._kept:
            if worker not in workers:
                worker.stop(kill=True)
        self._kept = []
        workers += [_Worker(self.context, self.memory_limit_bytes, self.setup) for _ in range(wanted - len(workers))]
        try:
            return self._loop(queue, workers, on_result, should_stop, feed)
        finally:
            for worker in workers:
                if self.keep_workers and worker.unit is None and worker.process.is_alive():
                    self._kept.append(worker)
                else:
                    worker.stop(kill=worker.unit is not None)

    def close(self) -> None:
        """Stop the workers kept between runs."""
        for worker in self._kept:
            worker.stop()
        self._kept = []

    def _loop(self, queue, workers, on_result, should_stop, feed=None) -> bool:
        while True:
            for worker in workers:
                if worker.unit is None:
                    unit = queue.popleft() if queue else feed.take() if feed is not None else None
                    if unit is not None:
                        worker.give(unit)
            busy = [worker for worker in workers if worker.unit is not None]
            timeout = POLL_INTERVAL_S
            if feed is not None and not feed.finished:
                timeout = plan_on(feed, bool(busy), should_stop)
                if timeout is None:
                    return False
            elif not busy:
                return True
            if not busy:
                continue
            if should_stop():
                return False
            ready = wait([worker.connection for worker in busy], timeout=timeout)
            for worker in busy:
                if worker.connection in ready:
                    self._receive(worker, workers, queue, on_result)
                elif time.monotonic() - worker.last_heard > self.watchdog_s:
                    self._replace(worker, workers, queue, on_result, "hang",
                                  f"the worker was silent for {self.watchdog_s:.0f} s and was killed")

    def _receive(self, worker, workers, queue, on_result) -> None:
        try:
            message, payload = _wire.decode(worker.connection.recv_bytes(MESSAGE_BYTES_MAX))
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            self._replace(worker, workers, queue, on_result, *_death(worker.process.exitcode))
            return
        except (_wire.WireError, ValueError, TypeError):
            self._replace(worker, workers, queue, on_result, "recovery-error",
                          "the worker process sent a malformed message (the engine wrote to crashsweep's pipe?)")
            return
        worker.last_heard = time.monotonic()
        if message == "bypass":
            raise EngineBypass(str(payload)[:2000])
        if message == "results" and isinstance(payload, list):
            for result in payload:
                if not _well_formed(result, worker):
                    self._replace(worker, workers, queue, on_result, "recovery-error",
                                  "the worker process sent a malformed result")
                    return
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
                       "kind": kind, "outcome": kind, "detail": detail, "engine_s": 0.0, "total_s": 0.0,
                       "nested": None})     # unknown: the process died somewhere in this state's crashes
        else:                # isolate: every unreported state runs again in a unit of its own
            queue.extendleft({**unit, "states": [state]} for state in reversed(left))
        worker.unit = None
        worker.stop(kill=True)
        workers[workers.index(worker)] = _Worker(self.context, self.memory_limit_bytes, self.setup)
