"""Run a sweep's work units on a Dask cluster (DESIGN §5 Scale): `--executor dask [--scheduler ADDRESS]`.

The units are the local executor's, plain data. A Dask task hands one unit to a unit
host on the Dask worker's machine (`_unit_host`), which runs it with a local executor of
one engine process, so the engine boundary holds there as here: the engine runs in a
process of its own (session, memory limit, watchdog, captured output), an engine that
kills or hangs its process costs that one state (`recovery-error` / `hang`), and never
the Dask worker. Each Dask worker keeps its host and engine process between tasks, so
a spec is recorded once per worker.

Results come back unit by unit as tasks finish and are checked like a local worker's
(each names a state of its unit, once); a state already reported is never reported
again, so a task that Dask runs twice (its worker died after finishing it) changes
nothing. A Dask worker that dies mid-task (killed, its machine lost) costs nothing:
the scheduler runs the task on another worker.

Before the first unit, every worker is asked what it runs: the same crashsweep (a
digest of its source), the same Python minor version, and the engine: a `.py` engine is
shipped (`_shipping`), a dotted module must be installed there. A mismatch is one line.

Invariants: every state of every unit yields exactly one result; which worker ran a
state never changes its result; at most `IN_FLIGHT_PER_THREAD` units per worker thread
wait on the cluster, so a budget or Ctrl-C stops within one unit per thread.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from crashsweep.crash_explorer import _wire
from crashsweep.crash_explorer._executor import plan_on
from crashsweep.crash_explorer._log_wire import log_to_data
from crashsweep.crash_explorer._plan import enumerate_slice
from crashsweep.crash_explorer._profiles import profile_description, remember_description
from crashsweep.crash_explorer._recording import recording_from_data
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._unit_host import UnitHost
from crashsweep.crash_explorer._shipping import (ShippingError, engine_bundle, materialize, module_problem,
                                                program_setup)
from crashsweep.crash_explorer.errors import EngineBypass, ExplorerError

IN_FLIGHT_PER_THREAD = 4
POLL_INTERVAL_S = 0.2
CHECK_PRIORITY = 1         # units to check run before planning tasks (priority 0) on the workers
CONNECT_TIMEOUT_S = 10.0
RESUBMITS_MAX = 3          # a unit whose task failed (the task itself, not its engine) runs again this often
RESULT_FIELDS_MAX = 64


class DaskUnavailable(ExplorerError):
    """Dask is not installed, the scheduler cannot be reached, or its workers cannot run this sweep (one line)."""


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise DaskUnavailable("--executor dask needs Dask: pip install 'crashsweep[dask]'") from None
    return distributed


_source_digest: list[str] = []


def source_digest() -> str:
    """A digest of this crashsweep's Python source: two processes with the same digest compute the same results."""
    if not _source_digest:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        digest = hashlib.blake2b(digest_size=8)
        for directory, subdirectories, files in sorted(os.walk(root)):
            subdirectories.sort()
            for name in sorted(files):
                if name.endswith((".py", ".j2")):
                    with open(os.path.join(directory, name), "rb") as handle:
                        digest.update(os.path.relpath(os.path.join(directory, name), root).encode() + b"\0")
                        digest.update(handle.read())
        _source_digest.append(digest.hexdigest())
    return _source_digest[0]


def worker_facts(engine: str, program: dict | None = None) -> dict:
    """What a Dask worker runs (asked on every worker before a sweep)."""
    from crashsweep import __version__
    return {"crashsweep": __version__, "source": source_digest(), "python": list(sys.version_info[:2]),
            "engine_problem": module_problem(engine, program)}


# Kept unit hosts of this Dask worker process, by their settings, each lent to one task at a time.
_kept: dict[tuple, list[UnitHost]] = {}
_kept_lock = threading.Lock()


def run_unit_task(unit: dict, spec_json: dict, settings: dict) -> dict:
    """Runs on a Dask worker: the unit's results (`{"results": [...]}`), or `{"bypass": text}`. A unit host that
    died (its engine killed it) fails the task, which the client then submits again."""
    bundle, program = settings.get("bundle"), settings.get("program")
    key = (settings["state_timeout_s"], settings["memory_limit_bytes"], bundle["digest"] if bundle else None,
           program["exec_base"] if program else None)
    with _kept_lock:
        idle = _kept.setdefault(key, [])
        host = idle.pop() if idle else None
    if host is None:
        host = UnitHost({"state_timeout_s": settings["state_timeout_s"],
                         "memory_limit_bytes": settings["memory_limit_bytes"],
                         "setup": materialize(bundle) if bundle else program})
    reply = host.run(dict(unit, spec=spec_json))
    with _kept_lock:
        _kept[key].append(host)
    return reply


_planned_recordings: dict[str, object] = {}     # spec id -> a recording rebuilt from data (planning slices)
PLANNED_RECORDINGS_MAX = 2


def plan_slice_task(spec_json: dict, log_data, bounds: tuple[int, int], deadline_wall: float | None,
                    described: dict | None = None) -> list:
    """Runs on a Dask worker: one slice of the points enumerated (`_plan.enumerate_slice`). Planning runs no
    engine code (the recording and a user engine's description are data), so it runs in the Dask worker."""
    remember_description(spec_json["engine"], described)
    spec_id = SweepSpec.from_json(spec_json).spec_id
    recording = _planned_recordings.get(spec_id)
    if recording is None:
        if len(_planned_recordings) >= PLANNED_RECORDINGS_MAX:
            _planned_recordings.pop(next(iter(_planned_recordings)))
        recording = _planned_recordings[spec_id] = recording_from_data(spec_json, _wire.decode(log_data))
    deadline = None if deadline_wall is None else time.monotonic() + (deadline_wall - time.time())
    return enumerate_slice(recording, tuple(bounds), deadline)


class DaskExecutor:
    """Work units on a Dask cluster: a `LocalCluster` of `jobs` workers started here, or the cluster of
    `scheduler` ("tcp://host:8786"). Use as a context manager (it closes what it started).
    Example: `with DaskExecutor(2, 10.0, None, "betree") as executor: executor.run(units, print)`."""

    def __init__(self, jobs: int, state_timeout_s: float, memory_limit_bytes: int | None, engine: str,
                 scheduler: str | None = None):
        distributed = _import_distributed()
        self._distributed = distributed
        self.cluster = None
        self._submitted = itertools.count()
        if not os.environ.get("CRASHSWEEP_DASK_LOGS"):
            logging.getLogger("distributed").setLevel(logging.CRITICAL)
        try:
            bundle = engine_bundle(engine)
        except ShippingError as error:
            raise DaskUnavailable(str(error)) from None
        try:
            if scheduler is None:
                self.cluster = distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                                        dashboard_address=None, memory_limit=0,
                                                        silence_logs=logging.CRITICAL)
                self.client = distributed.Client(self.cluster, timeout=CONNECT_TIMEOUT_S)
            else:
                self.client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            self.close()
            where = f"the Dask scheduler at {scheduler}" if scheduler else "a local Dask cluster"
            raise DaskUnavailable(f"cannot reach {where}: {error}") from None
        self.settings = {"state_timeout_s": state_timeout_s, "memory_limit_bytes": memory_limit_bytes,
                         "bundle": bundle, "program": program_setup(engine)}
        self._check_workers(engine, scheduler)

    def _check_workers(self, engine: str, scheduler: str | None) -> None:
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, self._distributed.TimeoutError if hasattr(self._distributed, "TimeoutError")
                else TimeoutError):
            self.close()
            raise DaskUnavailable(f"the Dask scheduler at {scheduler} has no workers (start some: dask worker "
                                  f"{scheduler})") from None
        mine = worker_facts("")
        for address, facts in sorted(self.client.run(worker_facts, engine, self.settings["program"]).items()):
            problem = None
            if facts["python"] != mine["python"]:
                problem = f"runs Python {'.'.join(map(str, facts['python']))}, this machine " \
                          f"{'.'.join(map(str, mine['python']))}"
            elif facts["source"] != mine["source"]:
                problem = (f"runs a different crashsweep ({facts['crashsweep']}, source {facts['source']}; here "
                           f"{mine['crashsweep']}, source {mine['source']}): install the same one on the workers")
            elif facts["engine_problem"] and self.settings["program"]:
                problem = f"cannot run the engine: {facts['engine_problem']} (the workers run it from the same path)"
            elif facts["engine_problem"]:
                problem = f"cannot load the engine: {facts['engine_problem']} (install it on the workers)"
            if problem:
                self.close()
                raise DaskUnavailable(f"Dask worker {address} {problem}")

    @property
    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        client, self.client = getattr(self, "client", None), None
        if client is not None:
            try:
                client.close(timeout=10)
            except Exception:   # noqa: BLE001 - closing a lost connection: nothing left to release
                pass
        cluster, self.cluster = self.cluster, None
        if cluster is not None:
            try:
                cluster.close(timeout=10)
            except Exception:   # noqa: BLE001
                pass

    def plan_slices(self, recording, bounds: list[tuple[int, int]], deadline: float | None) -> "_PlannedSlices":
        """`_plan.Planner`'s `slices`: each slice of points enumerated by a worker, given in order (`next(wait_s)`).
        Units to check go before planning tasks on the workers (`CHECK_PRIORITY`): while a sweep checks as it
        plans, planning fills the time the workers have no state to check."""
        spec_json = self._scatter(recording.spec.to_json())
        log_data = self._scatter(_wire.encode(log_to_data(recording.log)))
        deadline_wall = None if deadline is None else time.time() + (deadline - time.monotonic())
        run_id = uuid.uuid4().hex[:12]
        described = profile_description(recording.spec.engine)
        futures = [self.client.submit(plan_slice_task, spec_json, log_data, bound, deadline_wall, described,
                                      pure=False, key=f"crashsweep-plan-{run_id}-{index}")
                   for index, bound in enumerate(bounds)]
        return _PlannedSlices(self.client, self._distributed, futures)

    def _scatter(self, value):
        """`value` on every worker, as one Dask future under a key of its own. (Scattering a dict itself would
        make each of its items a future keyed by the item's name: two specs scattered at once, by this sweep's
        planning and its checking or by two sweeps on one cluster, would share keys such as "engine", and
        releasing one would lose the other's.)"""
        return self.client.scatter([value], broadcast=True, hash=False)[0]

    takes_feed = True     # `run` takes a feed of units that come while it runs (`_sweep._StreamFeed`)

    def run(self, units, on_result: Callable[[dict], None],
            should_stop: Callable[[], bool] = lambda: False) -> bool:
        """As `LocalExecutor.run`: True when every unit finished, False when `should_stop` ended it early.
        `units`: an iterable of units, or a feed (`LocalExecutor.run` says what it is)."""
        feed = units if hasattr(units, "pump") else None
        queue = deque() if feed is not None else deque(units)
        spec_future = None
        run_id = uuid.uuid4().hex[:12]
        reported: set[int] = set()
        in_flight: dict = {}       # future -> (unit, attempts)
        try:
            while True:
                window = IN_FLIGHT_PER_THREAD * self.threads
                while len(in_flight) < window:
                    unit = queue.popleft() if queue else feed.take() if feed is not None else None
                    if unit is None:
                        break
                    if spec_future is None:
                        spec_future = self._scatter(unit["spec"])
                    self._submit(unit, 0, spec_future, run_id, in_flight)
                timeout = POLL_INTERVAL_S
                if feed is not None and not feed.finished:
                    timeout = plan_on(feed, bool(in_flight), should_stop)
                    if timeout is None:
                        return False
                elif not in_flight and not queue:
                    return True
                if not in_flight:
                    continue
                if should_stop():
                    return False
                try:
                    done = self._distributed.wait(list(in_flight), timeout=timeout or 1e-3,
                                                  return_when="FIRST_COMPLETED").done
                except TimeoutError:
                    continue
                for future in done:
                    unit, attempts = in_flight.pop(future)
                    self._collect(future, unit, attempts, spec_future, run_id, in_flight, reported, on_result)
        finally:
            if in_flight:
                self.client.cancel(list(in_flight), force=True)

    def _submit(self, unit: dict, attempts: int, spec_future, run_id: str, in_flight: dict) -> None:
        # A task's key is unique in the run (a streamed sweep's units share numbers: those sent while planning,
        # the plan's own, the states checked again), so the scheduler never takes one unit for another.
        key = f"crashsweep-unit-{run_id}-{next(self._submitted)}-unit{unit['unit']}-attempt{attempts}"
        plain = {name: value for name, value in unit.items() if name != "spec"}
        future = self.client.submit(run_unit_task, plain, spec_future, self.settings, key=key, pure=False,
                                    priority=CHECK_PRIORITY)
        in_flight[future] = (unit, attempts)

    def _collect(self, future, unit, attempts, spec_future, run_id, in_flight, reported, on_result) -> None:
        try:
            outcome = future.result()
        except Exception as error:      # noqa: BLE001 - the task failed on the cluster (workers lost, ...)
            future.release()
            if attempts < RESUBMITS_MAX:
                self._submit(unit, attempts + 1, spec_future, run_id, in_flight)
                return
            raise DaskUnavailable(f"the Dask cluster failed to run work unit {unit['unit']} {attempts + 1} times "
                                  f"({type(error).__name__}: {str(error)[:200]}); the results so far are kept: "
                                  "--resume continues") from None
        future.release()
        if "bypass" in outcome:
            raise EngineBypass(str(outcome["bypass"])[:2000])
        expected = {state[0] for state in unit["states"]}
        for result in outcome.get("results", []):
            if _well_formed(result, expected) and result["state"] not in reported:
                reported.add(result["state"])
                on_result(result)
        assert expected <= reported, f"unit {unit['unit']}: a local executor reports every state of its unit"


def _well_formed(result, expected: set) -> bool:
    return (isinstance(result, dict) and len(result) <= RESULT_FIELDS_MAX and isinstance(result.get("state"), int)
            and result["state"] in expected and isinstance(result.get("outcome"), str)
            and (result.get("kind") is None or isinstance(result["kind"], str)))


class _PlannedSlices:
    """The planning tasks of one plan, collected in order: `next(wait_s)` gives the next slice's result, raises
    TimeoutError if it is not done within `wait_s` (None: wait for it), StopIteration after the last; `close`
    cancels the tasks not collected (an interrupt, a budget)."""

    def __init__(self, client, distributed, futures: list) -> None:
        self._client, self._distributed = client, distributed
        self._futures = deque(futures)

    def next(self, wait_s: float | None = None):
        if not self._futures:
            raise StopIteration
        future = self._futures[0]
        if wait_s is not None and not future.done():
            if wait_s <= 0:
                raise TimeoutError
            self._distributed.wait([future], timeout=wait_s)     # TimeoutError when it is not done by then
        result = future.result()
        self._futures.popleft()
        future.release()
        return result

    def close(self) -> None:
        futures, self._futures = list(self._futures), deque()
        if futures:
            self._client.cancel(futures, force=True)
