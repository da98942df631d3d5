"""A whole sweep: record, plan, run the units, stream results, write traces and the summary.

Invariants:
- every input is validated before the output directory is touched;
- results.jsonl is the source of truth; summary.json and junit.xml are derived
  from it (so `--resume` and merging shards give the same summary);
- a violation's trace is written the moment its result arrives.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from crashsweep.crash_explorer._collector import collector_paused
from crashsweep.crash_explorer._executor import LocalExecutor
from crashsweep.crash_explorer._plan import Plan, approximate, make_units, plan_states
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


@dataclass
class SweepRun:
    spec: SweepSpec
    options: SweepOptions
    recording: Recording
    plan: Plan
    results: dict[int, dict] = field(default_factory=dict)
    traces: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    completed: bool = False
    interrupted: bool = False
    terminated: bool = False     # interrupted by SIGTERM (exit 143), not Ctrl-C (130)
    already_done: int = 0
    started_at: float = 0.0
    class_first: dict[str, tuple] = field(default_factory=dict)   # class id -> its representative's order


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
    plan = plan_states(recording, options.budget_states, jobs=jobs, deadline=planning_deadline,
                       on_point=on_point, slices=slices)
    return SweepRun(spec, options, recording, plan)


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
            executor=None) -> SweepRun:
    """Run the planned states, streaming to OUT/results.jsonl; Ctrl-C stops cleanly, keeping every result.
    `executor`: one opened by `executor_for` (None: open the one `run.options` asks for, for this call)."""
    options = run.options
    os.makedirs(options.out_dir, exist_ok=True)
    traces_dir = os.path.join(options.out_dir, "traces")
    manifest = Manifest(options.out_dir)
    writer = ResultsWriter(os.path.join(options.out_dir, RESULTS_NAME), header_for(run), options.resume)
    if not options.resume:      # traces an earlier sweep wrote here would mislead; nothing else is touched
        manifest.remove_written(keep=lambda relative: relative.endswith(MINIMIZED_SUFFIX))
    manifest.add(RESULTS_NAME)
    run.results = dict(writer.done)
    run.already_done = len(run.results)
    started = run.started_at = time.monotonic()
    deadline = options.check_deadline
    if deadline is None and options.budget_seconds is not None:
        deadline = started + options.budget_seconds

    namer = ClassNamer(run.recording)
    for done in run.results.values():
        if done.get("class") and representative_order(done) < run.class_first.get(done["class"], (2, 0)):
            run.class_first[done["class"]] = representative_order(done)

    planned = {state.state_id: state for state in run.plan.states}

    def accept(result: dict) -> None:
        raise_if_interrupted()
        if "windows" not in result and result["state"] in planned:      # a lean result: its state gives them
            state = planned[result["state"]]
            result["choice"], result["windows"] = state.choice, [list(window) for window in state.windows]
        if result.get("kind"):      # the trace is durable before the result line that links it
            result["class"], result["class_title"] = namer.classify(result)
            first = run.class_first.get(result["class"])
            if first is None or representative_order(result) < first:    # the class's trace (any --jobs)
                run.class_first[result["class"]] = representative_order(result)
                name = class_trace_name(result["class"], result["kind"])
                run.traces.append(write_trace(traces_dir, class_trace(run, namer, result), name, durable=True))
                manifest.add(os.path.join("traces", name))
            if options.traces == "all":
                name = trace_name(result)
                write_trace(traces_dir, class_trace(run, namer, result), name, durable=True)
                manifest.add(os.path.join("traces", name))
        line = compact(result)
        writer.write(line)
        run.results[result["state"]] = line
        on_result(line, run)

    with collector_paused(len(run.plan.states)):   # results hold no cycles: collecting over them costs time
        try:
            if run.recording.failure is not None and RECORD_FAILURE_STATE not in run.results:
                accept({"state": RECORD_FAILURE_STATE, "point": None, **run.recording.failure,
                        "engine_s": 0.0, "total_s": 0.0})
            units = make_units(run.spec.to_json(), run.plan.states, options.shard, set(run.results), run.spec.spec_id)
            for unit in units:
                unit["lean"] = True         # results come back without the choices and windows sent out
                if not options.memo:
                    unit["memo"] = False

            def stop() -> bool:
                raise_if_interrupted()          # an interrupt a signal asked for and Python lost (`_signals`)
                return deadline is not None and time.monotonic() > deadline
            with executor_for(run.spec, options, executor) as opened:
                run.completed = opened.run(units, accept, stop)
        except KeyboardInterrupt as interrupt:     # Ctrl-C, or SIGTERM from outside (Terminated)
            interrupt_taken()
            run.interrupted = True
            run.terminated = isinstance(interrupt, Terminated)
        finally:
            writer.close()
            run.elapsed_s = time.monotonic() - started
    return run


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
    if not run.completed and not run.interrupted:
        budget = "--budget-seconds" if run.options.budget_seconds is not None else "a budget"
        summary["stopped_by"] = (f"stopped by {budget} at {summary['distinct_states']:,} of "
                                 f"{len(run.plan.states):,} planned states")
    elif run.options.budget_states is not None and run.plan.distinct_total > len(run.plan.states):
        summary["stopped_by"] = (f"--budget-states kept {len(run.plan.states):,} of "
                                 f"{run.plan.distinct_total:,} distinct states")
    return summary


def summarize_results(header: dict, results: list[dict], elapsed_s: float, completed: bool = True,
                      interrupted: bool = False, already_done: int = 0) -> dict:
    """summary.json from a results header and its state results (one sweep, or merged shards)."""
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
        "elapsed_s": round(elapsed_s, 3),
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
