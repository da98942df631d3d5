"""A whole sweep: record, plan, run the units, stream results, write traces and the summary.

Invariants:
- every input is validated before the output directory is touched;
- results.jsonl is the source of truth; summary.json and junit.xml are derived
  from it (so `--resume` and merging shards give the same summary);
- a violation's trace is written the moment its result arrives.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from crashsweep.crash_explorer._collector import collector_paused
from crashsweep.crash_explorer._executor import LocalExecutor
from crashsweep.crash_explorer._plan import (
    UNIT_STATES_MAX, Plan, PlannedState, Planner, approximate, make_units, plan_states, point_weights,
)
from crashsweep.crash_explorer._profiles import engine_flag
from crashsweep.crash_explorer._limits import default_memory_limit_bytes
from crashsweep.crash_explorer.media import medium_of
from crashsweep.crash_explorer._recording import encode_recorded, Recording, record_contained
from crashsweep.crash_explorer._results import RESULTS_NAME, ResultsError, ResultsWriter, read_results, tally
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._manifest import Manifest
from crashsweep.crash_explorer._signals import Terminated, interrupt_taken, raise_if_interrupted
from crashsweep.crash_explorer._classes import (
    ClassNamer, class_table, class_trace_name, compact, representative_order,
)
from crashsweep.crash_explorer._trace import MINIMIZED_SUFFIX, make_trace, pending_fates, trace_name, write_trace
from crashsweep.crash_explorer._worker import remember

RECORD_FAILURE_STATE = -1


@dataclass
class SweepOptions:
    out_dir: str = "crashsweep-report"
    jobs: int = 1
    shard: tuple[int, int] = (0, 1)
    budget_states: int | None = None
    budget_seconds: float | None = None
    resume: bool = False
    memo: bool = True        # let an engine's observation memo answer states (same results, faster)
    memory_limit_bytes: int | None = field(default_factory=default_memory_limit_bytes)   # per engine process
    traces: str = "classes"  # "classes": one trace per failure class; "all": one per violating state too
    check_deadline: float | None = None   # time.monotonic() when checking stops (None: budget_seconds from its start)
    executor: str = "local"  # "local" (worker processes here) or "dask"
    scheduler: str | None = None   # with "dask": the address of a running cluster's scheduler (None: start one)
    stream: bool = True      # check states while planning goes on where the sweep allows it (`_streams`; same results)


@dataclass
class SweepRun:
    spec: SweepSpec
    options: SweepOptions
    recording: Recording
    planned: Plan | None           # None while `planner` plans (a streamed sweep; `plan` finishes it)
    planner: Planner | None = None
    streamed: dict = field(default_factory=dict)   # a streamed sweep: states checked while planning, checked again
    results: dict[int, dict] = field(default_factory=dict)
    traces: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    completed: bool = False
    interrupted: bool = False
    terminated: bool = False     # interrupted by SIGTERM (exit 143), not Ctrl-C (130)
    already_done: int = 0
    started_at: float = 0.0
    class_first: dict[str, tuple] = field(default_factory=dict)   # class id -> its representative's order

    @property
    def plan(self) -> Plan:
        """The whole plan: a run still planning (`prepare` of a streamed sweep) plans the rest first, and is
        then checked as a planned sweep is."""
        if self.planned is None:
            planner = self.planner
            try:
                while not planner.done:
                    planner.step()
                self.planned = planner.finish()
            finally:
                planner.close()
        return self.planned

    @plan.setter
    def plan(self, plan: Plan) -> None:
        self.planned = plan


def prepare(spec: SweepSpec, options: SweepOptions, planning_deadline: float | None = None,
            on_phase=lambda name, total: None, on_point=lambda done, total: None, executor=None) -> SweepRun:
    """Record (in a contained process: the engine boundary) and plan (no output written yet). Planning samples
    points so as to end by `planning_deadline`; `on_phase(name, total)` and `on_point(done, total)` report.
    An `executor` that plans (`plan_slices`: a Dask cluster) enumerates slices of the points on its workers."""
    spec = _kept_recording(spec, options)
    recording = record_contained(spec, options.memory_limit_bytes)
    if medium_of(recording.context).name == "native" and not spec.recorded and recording.failure is None:
        # A native engine's I/O is not a function of the spec (threads, clocks, its own randomness): the
        # recording made here is the one every state, worker, trace and replay of this sweep uses.
        spec = replace(spec, recorded=encode_recorded(recording.log))
        recording = replace(recording, spec=spec)
    remember(recording)
    on_phase(f"planning crash states of {len(recording.walk.points):,} crash points", len(recording.walk.points))
    slices = getattr(executor, "plan_slices", None)
    jobs = executor.threads if slices is not None else options.jobs
    if _streams(options, recording, executor):
        planner = Planner(recording, jobs=jobs, deadline=planning_deadline, on_point=on_point, slices=slices,
                          slices_per_job=STREAM_SLICES_PER_JOB, niceness=STREAM_PLANNING_NICENESS)
        return SweepRun(spec, options, recording, None, planner)
    plan = plan_states(recording, options.budget_states, jobs=jobs, deadline=planning_deadline,
                       on_point=on_point, slices=slices)
    return SweepRun(spec, options, recording, plan)


def _streams(options: SweepOptions, recording: Recording, executor) -> bool:
    """Whether states are checked while planning goes on: not where the plan must be whole first (a
    --budget-states prefix, a shard's units, the states a resumed sweep already has), nor on an executor
    that cannot take units as they come (`takes_feed`: the local processes and Dask can), nor where planning
    takes a fraction of a second (nothing to overlap: `STREAM_WEIGHT_MIN`)."""
    feeds = getattr(executor, "takes_feed", False) if executor is not None else options.executor == "local"
    return (options.stream and feeds and options.budget_states is None and tuple(options.shard) == (0, 1)
            and not (options.resume and os.path.exists(os.path.join(options.out_dir, RESULTS_NAME)))
            and recording.failure is None and sum(point_weights(recording)) >= STREAM_WEIGHT_MIN)


def _kept_recording(spec: SweepSpec, options: SweepOptions) -> SweepSpec:
    """On --resume, the recorded log of the sweep being resumed (a native engine's recording is not a function
    of the spec, and the states already checked are states of that recording); else `spec` unchanged."""
    path = os.path.join(options.out_dir, RESULTS_NAME)
    if not options.resume or spec.recorded or not os.path.exists(path):
        return spec
    try:
        header = read_results(path)[0]
        kept = SweepSpec.from_json(header["spec"])
    except (ResultsError, KeyError, TypeError, ValueError):
        return spec          # the resume check that follows names what is wrong with the file
    return kept if kept.recorded and replace(kept, recorded="") == spec else spec


def header_for(run: SweepRun) -> dict:
    plan = run.plan
    return {"spec_id": run.spec.spec_id, "spec": run.spec.to_json(), "shard": list(run.options.shard),
            "warnings": list(run.recording.warnings) + _sampling_warning(plan),
            "plan": {"crash_points": plan.crash_points, "states_enumerated": plan.states_enumerated,
                     "distinct_total": plan.distinct_total, "planned": len(plan.states),
                     "space_total": str(plan.space_total), "exhausted": plan.exhausted,
                     "per_point": plan.per_point}}


def _sampling_warning(plan: Plan) -> list[str]:
    if not plan.sampled_points:
        return []
    return [f"planning sampled the states of {plan.sampled_points:,} of {plan.crash_points:,} crash points to fit "
            "--budget-seconds (which states were kept depends on this machine's speed; --budget-states or "
            "--strategy random --samples N cut the space reproducibly)"]


def execute(run: SweepRun, on_result: Callable[[dict, SweepRun], None] = lambda result, run: None,
            executor=None, on_planned: Callable[[SweepRun], None] = lambda run: None) -> SweepRun:
    """Run the planned states, streaming to OUT/results.jsonl; Ctrl-C stops cleanly, keeping every result.
    `executor`: one opened by `executor_for` (None: open the one `run.options` asks for, for this call).
    A run `prepare` left planning (`run.planner`) checks states as planning settles them (`_StreamFeed`);
    `on_planned(run)` is called once the plan is whole (at once for a planned run). Nothing is written
    before then: results, traces and state ids wait for the plan (an interrupt while planning keeps none)."""
    options = run.options
    sink = _ResultSink(run)
    sink.on_result = on_result
    started = run.started_at = time.monotonic()
    deadline = options.check_deadline
    if deadline is None and options.budget_seconds is not None:
        deadline = started + options.budget_seconds
    planner = run.planner if run.planned is None else None
    feed = None

    def stop() -> bool:
        raise_if_interrupted()          # an interrupt a signal asked for and Python lost (`_signals`)
        return deadline is not None and time.monotonic() > deadline

    def begin(sent: set[int] = frozenset()) -> list[dict]:
        """The plan is whole: open the results and say so; the units of the states not checked yet (nor `sent`
        while planning)."""
        sink.open()
        on_planned(run)
        if run.recording.failure is not None and RECORD_FAILURE_STATE not in run.results:
            sink.accept({"state": RECORD_FAILURE_STATE, "point": None, **run.recording.failure,
                         "engine_s": 0.0, "total_s": 0.0})
        return _lean(make_units(run.spec.to_json(), run.plan.states, options.shard, set(run.results) | sent,
                                run.spec.spec_id), options)

    objects = len(run.planned.states) if run.planned is not None else len(run.recording.walk.points) * 100
    with collector_paused(objects):   # results hold no cycles: collecting over them costs time
        try:
            with executor_for(run.spec, options, executor) as opened:
                if planner is None:
                    run.completed = opened.run(begin(), sink.accept, stop)
                else:
                    feed = _StreamFeed(run, sink, begin)
                    try:
                        run.completed = opened.run(feed, feed.on_result, stop)
                        while run.planned is None:      # stopped by the budget while planning: keep what was checked
                            feed.pump(None)
                        feed.drain()
                    finally:
                        planner.close()
                        run.streamed = feed.counts()
        except KeyboardInterrupt as interrupt:     # Ctrl-C, or SIGTERM from outside (Terminated)
            if run.planned is None:
                raise                # interrupted while planning: as before checking starts, nothing to keep
            interrupt_taken()
            run.interrupted = True
            run.terminated = isinstance(interrupt, Terminated)
            if feed is not None:
                feed.drain()         # results checked while planning, not written yet: kept
        finally:
            sink.close()
            run.elapsed_s = time.monotonic() - started
    return run


def _lean(units: list[dict], options: SweepOptions) -> list[dict]:
    for unit in units:
        unit["lean"] = True         # results come back without the choices and windows sent out
        if not options.memo:
            unit["memo"] = False
    return units


class _ResultSink:
    """Where results go once the plan is whole: results.jsonl, the class traces, `run.results`."""

    def __init__(self, run: SweepRun):
        self.run = run
        self.writer = None
        self.on_result = lambda line, run: None

    def open(self) -> None:
        run, options = self.run, self.run.options
        os.makedirs(options.out_dir, exist_ok=True)
        self.traces_dir = os.path.join(options.out_dir, "traces")
        self.manifest = Manifest(options.out_dir)
        self.writer = ResultsWriter(os.path.join(options.out_dir, RESULTS_NAME), header_for(run), options.resume)
        if not options.resume:      # traces an earlier sweep wrote here would mislead; nothing else is touched
            self.manifest.remove_written(keep=lambda relative: relative.endswith(MINIMIZED_SUFFIX))
        self.manifest.add(RESULTS_NAME)
        run.results = dict(self.writer.done)
        run.already_done = len(run.results)
        self.namer = ClassNamer(run.recording)
        for done in run.results.values():
            if done.get("class") and representative_order(done) < run.class_first.get(done["class"], (2, 0)):
                run.class_first[done["class"]] = representative_order(done)
        self.planned = {state.state_id: state for state in run.plan.states}

    def accept(self, result: dict) -> None:
        raise_if_interrupted()
        run, options, namer = self.run, self.run.options, self.namer
        if "windows" not in result and result["state"] in self.planned:      # a lean result: its state gives them
            state = self.planned[result["state"]]
            result["choice"], result["windows"] = state.choice, [list(window) for window in state.windows]
        if result.get("kind"):      # the trace is durable before the result line that links it
            result["class"], result["class_title"] = namer.classify(result)
            first = run.class_first.get(result["class"])
            if first is None or representative_order(result) < first:    # the class's trace (any --jobs)
                run.class_first[result["class"]] = representative_order(result)
                name = class_trace_name(result["class"], result["kind"])
                run.traces.append(write_trace(self.traces_dir, class_trace(run, namer, result), name, durable=True))
                self.manifest.add(os.path.join("traces", name))
            if options.traces == "all":
                name = trace_name(result)
                write_trace(self.traces_dir, class_trace(run, namer, result), name, durable=True)
                self.manifest.add(os.path.join("traces", name))
        line = compact(result)
        self.writer.write(line)
        run.results[result["state"]] = line
        self.on_result(line, run)

    @staticmethod
    def prepare(result: dict, state: PlannedState) -> "_Prepared | None":
        """A passing result of `state`, checked while planning, made into its results.jsonl line but for its
        state id and point count (known when the plan is whole), so that taking it then costs little (the
        workers are idle while the results that waited are taken). None for a failure (classes and traces
        are made when it is taken)."""
        if result.get("kind") or "op" not in result:
            return None
        body = {name: value for name, value in result.items() if name != "state" and name != "points"}
        if "windows" not in body:
            body["choice"], body["windows"] = state.choice, [list(window) for window in state.windows]
        line = compact(body)
        text = json.dumps(line, separators=(",", ":"))
        return _Prepared(result, line, "," + text[1:] if len(text) > 2 else "}")

    def accept_prepared(self, prepared: "_Prepared", state: PlannedState) -> None:
        """`accept` of a prepared result of `state` (the plan is whole, its windows are those it was checked by)."""
        raise_if_interrupted()
        line, state_id = prepared.line, state.state_id
        line["state"] = state_id
        head = f'{{"type":"state","state":{state_id}'
        if state.points > 1:
            line["points"] = state.points
            head += f',"points":{state.points}'
        self.writer.write_text(line, head + prepared.text)
        self.run.results[state_id] = line
        self.on_result(line, self.run)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


STREAM_WEIGHT_MIN = 500_000    # `point_weights` of a plan worth streaming (~0.1-0.5 s of planning)
STREAM_SLICES_PER_JOB = 16    # smaller slices than a whole plan's: the first states settle sooner
STREAM_PLANNING_NICENESS = 10  # planning processes yield the processors to the workers checking beside them
STREAM_UNIT_STATES_MIN = UNIT_STATES_MAX   # states settled before a unit of them goes out while planning
STREAM_ID_BASE = 1 << 48     # states checked while planning carry ids from here until the plan gives theirs
STREAM_BACKLOG_STEP = 256    # results that waited for the plan, taken per `pump` once it is whole (~3 ms)


@dataclass
class _Prepared:
    """A passing result checked while planning, with its line made (`_ResultSink.prepare`)."""
    result: dict
    line: dict                  # the results.jsonl line without "state" and "points"
    text: str                   # its JSON after the opening brace (",..." or "}")


class _StreamFeed:
    """Units for an executor while `run.planner` plans (the executor's feed protocol: `take`, `pump`,
    `finished`). Settled states go out in point order under provisional ids (the plan's ids are positions
    in round-robin order over every point: known when planning ends); their results wait. Once the plan is
    whole, `begin` opens the results and gives the units of the states not sent; each waiting result takes
    its state's id, or, if the state gained windows after it was sent (an image seen again at a point more
    than `SETTLE_EPOCHS` syncs later), is dropped and the state checked again with all of them. So every
    state's result is the one the planned sweep gives."""

    def __init__(self, run: SweepRun, sink: _ResultSink, begin: Callable[[], list[dict]]):
        self.run, self.sink, self.begin = run, sink, begin
        self.spec_json = run.spec.to_json()
        self.ready: deque = deque()          # settled states not sent yet
        self.units: deque[dict] = deque()    # units of the whole plan (and states checked again)
        self.sent: dict[int, tuple] = {}     # provisional id -> (state, its windows' count when sent)
        self.waiting: list[dict] = []        # results of states sent, while planning goes on
        # Those results once the plan is whole, taken a step at a time (`pump`): the plan's own units go out
        # to the workers first (taking ~100,000 waiting results costs ~1 s of this process, workers idle).
        self.backlog: deque[dict] = deque()
        self.next_id = STREAM_ID_BASE
        self.made = 0
        self.early = self.again = 0

    @property
    def finished(self) -> bool:
        return self.run.planned is not None and not self.units and not self.backlog

    def take(self) -> dict | None:
        if self.units:
            return self.units.popleft()
        if not self.ready or len(self.ready) < STREAM_UNIT_STATES_MIN:   # a unit costs a worker ~2 ms of its own
            return None
        states = []
        for _ in range(min(UNIT_STATES_MAX, len(self.ready))):
            state = self.ready.popleft()
            self.sent[self.next_id] = (state, len(state.windows))
            states.append(state.unit_row(self.next_id))
            self.next_id += 1
        self.early += len(states)
        return self._unit(states)

    def _unit(self, states: list) -> dict:
        self.made += 1
        return _lean([{"unit": self.made - 1, "spec": self.spec_json, "spec_id": self.run.spec.spec_id,
                       "states": states}], self.run.options)[0]

    def pump(self, wait_s: float) -> bool:
        """Plan on (waiting at most `wait_s` for a planning process), or once the plan is whole take a step of
        the results that waited for it; whether anything came of it."""
        if self.run.planned is not None:
            return self._take_backlog(STREAM_BACKLOG_STEP)
        planner = self.run.planner
        folded = len(planner.merger.per_point)
        settled = planner.step(wait_s)
        if not planner.done:
            self.ready.extend(settled)
            return len(planner.merger.per_point) > folded
        self.run.planned = planner.finish()
        self.ready.clear()           # the states not sent yet go in the plan's own units
        self.units.extend(self.begin({state.state_id for state, _ in self.sent.values()}))
        self.backlog.extend(self.waiting)
        self.waiting = []
        return True

    def _take_backlog(self, count: int) -> bool:
        backlog = self.backlog
        taken = min(count, len(backlog))
        for _ in range(taken):
            self.on_result(backlog.popleft())
        return taken > 0

    def drain(self) -> None:
        """Take every result that waited for the plan (a budget or an interrupt ended the run: keep them)."""
        if self.run.planned is not None:
            self._take_backlog(len(self.backlog))

    def on_result(self, result) -> None:
        prepared = None
        if result.__class__ is _Prepared:
            prepared, result = result, result.result
        number = result["state"]
        if number < STREAM_ID_BASE:
            self.sink.accept(result)
            return
        if self.run.planned is None:
            prepared = self.sink.prepare(result, self.sent[number][0])
            self.waiting.append(result if prepared is None else prepared)
            return
        state, windows_sent = self.sent.pop(number)
        if prepared is not None and len(state.windows) == windows_sent:
            self.sink.accept_prepared(prepared, state)
            return
        if len(state.windows) != windows_sent:      # checked against fewer windows than it has: again
            self.again += 1
            self.units.extend(_lean([{"unit": -1, "spec": self.spec_json, "spec_id": self.run.spec.spec_id,
                                      "states": [state.unit_row()]}], self.run.options))
            return
        result["state"] = state.state_id
        if "op" in result:           # as a planned unit's worker reports it (not a dead worker's culprit)
            if state.points > 1:
                result["points"] = state.points
            else:
                result.pop("points", None)
        self.sink.accept(result)

    def counts(self) -> dict:
        return {"checked_while_planning": self.early, "checked_again": self.again}


@contextmanager
def executor_for(spec: SweepSpec, options: SweepOptions, opened=None):
    """The executor `options` ask for (a Dask one is closed, with the cluster it started, when done), or
    `opened` as it is (its opener closes it)."""
    if opened is not None:
        yield opened
    elif options.executor == "dask":
        from crashsweep.crash_explorer._dask_executor import DaskExecutor
        with DaskExecutor(options.jobs, spec.state_timeout_s, options.memory_limit_bytes, spec.engine,
                          options.scheduler) as executor:
            yield executor
    else:
        yield LocalExecutor(options.jobs, spec.state_timeout_s, options.memory_limit_bytes)


def class_trace(run: SweepRun, namer: ClassNamer, result: dict) -> dict:
    """The trace of a violating state, with its class and the fates of the crash point's pending units."""
    position = None
    points = run.recording.walk.points
    if result.get("point") is not None and 0 <= result["point"] < len(points):
        position = points[result["point"]].position
    trace = make_trace(run.spec, result, position)
    trace["class"] = {"id": result["class"], "title": result["class_title"]}
    if position is not None:
        trace["fates"] = pending_fates(namer, points[result["point"]].pending, result.get("choice") or {})
    return trace


def summarize(run: SweepRun) -> dict:
    summary = summarize_results(header_for(run), list(run.results.values()), run.elapsed_s,
                                completed=run.completed and not run.interrupted, interrupted=run.interrupted,
                                already_done=run.already_done)
    if run.streamed:
        summary["streamed"] = dict(run.streamed)
    if not run.completed and not run.interrupted:
        budget = "--budget-seconds" if run.options.budget_seconds is not None else "a budget"
        summary["stopped_by"] = (f"stopped by {budget} at {summary['distinct_states']:,} of "
                                 f"{len(run.plan.states):,} planned states")
    elif run.options.budget_states is not None and run.plan.distinct_total > len(run.plan.states):
        summary["stopped_by"] = (f"--budget-states kept {len(run.plan.states):,} of "
                                 f"{run.plan.distinct_total:,} distinct states")
    return summary


def summarize_results(header: dict, results: list[dict], elapsed_s: float, completed: bool = True,
                      interrupted: bool = False, already_done: int = 0, timed: bool = True) -> dict:
    """summary.json from a results header and its state results (one sweep, or merged shards). `timed`: False
    where `elapsed_s` is not the sweep's (a report made from results files, which keep no sweep time)."""
    spec = SweepSpec.from_json(header["spec"])
    plan = header["plan"]
    shard = header.get("shard", [0, 1])
    states = [result for result in results if result["state"] != RECORD_FAILURE_STATE]
    counts = tally(results)
    explored = len(states)
    new_states = max(0, explored - already_done)
    new_nested = sum(r.get("nested_states", 0) for r in states) if already_done == 0 else 0
    exhausted = plan["exhausted"] and explored >= plan["distinct_total"]
    damaged = sum(1 for result in states if (result.get("choice") or {}).get("faults"))
    if exhausted:
        coverage = f"{explored:,} of {plan['distinct_total']:,} distinct states: exhausted"
    else:
        coverage = (f"{explored - damaged:,} distinct crash states explored of a space of "
                    f"{approximate(int(plan['space_total']))}")
        if damaged:
            coverage += f", plus {damaged:,} sampled corruption states"
    return {
        "engine": spec.engine, "options": dict(spec.options), "scenario": spec.scenario, "ops": len(spec.ops),
        "traces_need_engine": bool(engine_flag(spec.engine)),
        "strategy": spec.strategy, "bound": spec.bound if spec.strategy == "bounded" else None,
        "samples": spec.samples if spec.strategy == "random" else None, "faults": spec.faults.describe(),
        "seed": spec.seed, "crash_depth": spec.crash_depth, "spec_id": spec.spec_id, "shard": f"{shard[0]}/{shard[1]}",
        "crash_points": plan["crash_points"], "states_explored": plan["states_enumerated"],
        "distinct_states": explored, "distinct_states_planned": plan["planned"],
        "distinct_states_total": plan["distinct_total"], "space_total": plan["space_total"],
        "coverage": coverage, "exhausted": exhausted,
        "violations": counts["violations"], "violations_by_kind": counts["violations_by_kind"],
        "outcomes": counts["outcomes"], "recovered_latest": counts["recovered_latest"],
        "recovered_older": counts["recovered_older"], "refused": counts["refused"],
        "nested_states": counts["nested_states"], "recovery_paths": counts["recovery_paths"],
        "elapsed_s": round(elapsed_s, 3), "timed": timed,
        "states_per_s": round(new_states / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "recoveries_per_s": round((new_states + new_nested) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        "engine_share": round(counts["engine_s"] / counts["worker_s"], 3) if counts["worker_s"] else None,
        "completed": completed, "interrupted": interrupted, "warnings": _warnings(header, counts),
        "traces": [f"traces/{class_trace_name(entry['id'], entry['kind'])}" for entry in class_table(results)],
        "first_violation_state": min((r["state"] for r in results if r.get("kind")), default=None),
        "classes": [{"id": entry["id"], "kind": entry["kind"], "title": entry["title"], "states": entry["states"],
                     "first_state": entry["first_state"],
                     "trace": f"traces/{class_trace_name(entry['id'], entry['kind'])}"}
                    for entry in class_table(results)],
    }


def _warnings(header: dict, counts: dict) -> list[str]:
    """What the engine did that is no violation but a user must hear of (processes it left running)."""
    warnings = [str(warning) for warning in header.get("warnings", []) if isinstance(warning, str)]
    if counts["states_with_leftovers"]:
        warnings.append(f"the engine left processes running after {counts['states_with_leftovers']:,} state(s); "
                        "crashsweep killed them (see \"leftovers\" in results.jsonl)")
    return warnings


def merge_results(paths: list[str]) -> tuple[dict, list[dict]]:
    """One header and the union of the states of several results files of the same sweep (e.g. shards)."""
    if not paths:
        raise ResultsError("no results files given")
    header, merged = None, {}
    for path in paths:
        this_header, results, _ = read_results(path)
        if header is None:
            header = this_header
        elif this_header.get("spec_id") != header.get("spec_id"):
            raise ResultsError(f"{path} is from a different sweep (spec {this_header.get('spec_id')}, "
                               f"not {header.get('spec_id')}): merge only shards of one sweep")
        for result in results:
            merged.setdefault(result["state"], result)
    header = dict(header, shard=[0, 1])
    return header, list(merged.values())
