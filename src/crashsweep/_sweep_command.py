"""`crashsweep sweep` as a whole: corpus re-check, recording, planning, checking, minimization, reports —
visible from the first second and bounded, all of it, by `--budget-seconds`.

The budget is split as the command goes, each phase getting a share of what is left:
the corpus re-check at most `CORPUS_SHARE`, planning at most `PLANNING_SHARE` (it
samples points past it, and says so), checking until `MINIMIZE_SHARE` of the budget is
left when classes will be minimized, minimization until `REPORTS_RESERVE_S`, then the
reports (milliseconds). A sweep stopped by a budget says where ("stopped by
--budget-seconds at 12,360 of 13,529 states").

Invariant: engine code runs only in contained and worker processes; every phase's
deadline is before the command's.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from crashsweep.crash_explorer import SweepOptions, SweepRun, execute, prepare, summarize
from crashsweep.crash_explorer._class_traces import class_details, minimize_classes, remove_fixed_minimized
from crashsweep.crash_explorer._corpus import Corpus
from crashsweep.crash_explorer._sweep import executor_for
from crashsweep.crash_explorer._profiles import allow_engine, known_bugs
from crashsweep.crash_explorer._recheck import FIXED, check_trace
from crashsweep.crash_explorer.errors import ExplorerError
from crashsweep.engines import EngineError
from crashsweep.reports import SweepProgress, prepare_report, render_html, write_junit, write_summary

CORPUS_SHARE = 0.25
PLANNING_SHARE = 0.35
MINIMIZE_SHARE = 0.2
REPORTS_RESERVE_S = 2.0


@dataclass
class Budget:
    """The command's deadline and each phase's share of what is left. Example: `Budget(60.0).share(0.35)`."""

    seconds: float | None
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float | None:
        return None if self.seconds is None else self.started + self.seconds

    def share(self, fraction: float, reserve_s: float = 0.0) -> float | None:
        """A deadline `fraction` of the time left from now (keeping `reserve_s` for what follows)."""
        if self.seconds is None:
            return None
        left = max(0.0, self.deadline - reserve_s - time.monotonic())
        return time.monotonic() + fraction * left

    def until(self, reserve_s: float) -> float | None:
        return None if self.seconds is None else self.deadline - reserve_s


class _Phases:
    """Seconds each phase of the command took (summary.json's `phases_s`), for benchmarks and slow sweeps."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.seconds: dict[str, float] = {}

    def mark(self, name: str) -> dict[str, float]:
        now = time.monotonic()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now
        return dict(self.seconds)


def recheck_corpus(corpus: Corpus, engine: str, options, memory_limit_bytes: int | None, jobs: int,
                   deadline: float | None, progress: SweepProgress) -> dict:
    """Re-check the corpus entries of `engine` with `options`: {"checked", "fixed", "still_failing": [{"path",
    "message"}], "skipped"}."""
    entries = corpus.entries(engine, options)
    report = {"checked": 0, "fixed": 0, "still_failing": [], "skipped": 0}
    if not entries:
        return report
    progress.phase(f"re-checking {len(entries)} earlier failure(s) from {corpus.root}", total=len(entries))
    for index, path in enumerate(entries):
        if deadline is not None and time.monotonic() > deadline:
            report["skipped"] += len(entries) - index
            break
        loaded = corpus.load(path)
        if loaded is None or loaded[0].engine != engine or dict(loaded[0].options) != dict(options):
            report["skipped"] += 1
            continue
        spec, trace = loaded
        try:
            allow_engine(spec.engine, engine)      # the sweep names this engine: its entries may run
            spec.validate()
            checked = check_trace(spec, trace, memory_limit_bytes, jobs, deadline)
        except (ExplorerError, EngineError):
            report["skipped"] += 1
            continue
        report["checked"] += 1
        if checked["status"] == FIXED:
            report["fixed"] += 1
            corpus.remove(path)
        else:
            report["still_failing"].append({"path": path, "message": checked["message"][:600]})
        progress.step(index + 1)
    return report


def corpus_line(report: dict) -> str | None:
    """"2 earlier failures re-checked: 1 fixed, 1 still failing" (None when there was nothing to re-check)."""
    if not report["checked"] and not report["skipped"]:
        return None
    line = (f"{report['checked']} earlier failure(s) re-checked: {report['fixed']} fixed, "
            f"{len(report['still_failing'])} still failing")
    if report["skipped"]:
        line += f" ({report['skipped']} not re-checked: budget, or not valid traces of this engine)"
    return line


def run_sweep(args, spec, progress_quiet: bool) -> tuple[SweepRun, dict, list[str]]:
    """Run the sweep `args` describes (spec already built and validated): (run, summary, minimized traces)."""
    budget = Budget(args.budget_seconds)
    phases = _Phases()
    corpus = None if args.no_corpus else Corpus(args.corpus)
    minimizing = args.minimize > 0
    with SweepProgress(quiet=progress_quiet) as progress:
        corpus_report = {"checked": 0, "fixed": 0, "still_failing": [], "skipped": 0}
        if corpus is not None and not args.resume:
            corpus_report = recheck_corpus(corpus, spec.engine, spec.options, args.memory_limit, args.jobs,
                                           budget.share(CORPUS_SHARE), progress)
        options = SweepOptions(out_dir=args.out, jobs=args.jobs, shard=args.shard, budget_states=args.budget_states,
                               budget_seconds=args.budget_seconds, resume=args.resume, memo=not args.no_memo,
                               stream=not args.no_stream,
                               memory_limit_bytes=args.memory_limit, traces=args.traces, executor=args.executor,
                               scheduler=args.scheduler)
        phases.mark("corpus")
        if options.executor == "dask":
            progress.phase("connecting to the Dask cluster" if args.scheduler else "starting a local Dask cluster")
        with executor_for(spec, options) as executor:      # a cluster that cannot run the sweep: before any work
            phases.mark("executor")
            progress.phase(f"recording {len(spec.ops):,} operations")
            run = prepare(spec, options, planning_deadline=budget.share(PLANNING_SHARE),
                          on_phase=lambda name, total: progress.phase(name, total), on_point=progress.step,
                          executor=executor)
            options.check_deadline = budget.until(MINIMIZE_SHARE * (args.budget_seconds or 0) if minimizing
                                                  else REPORTS_RESERVE_S)

            def planned(run: SweepRun) -> None:     # states checked while planning are counted from here
                phases.mark("recording_and_planning")
                prepare_report()
                progress.phase("checking crash states", total=len(run.plan.states))
            run = execute(run, lambda result, run: progress.advance(bool(result.get("kind")),
                                                                    time.monotonic() - run.started_at), executor,
                          on_planned=planned)
        phases.mark("checking")
        summary = summarize(run)
        minimized = []
        if not run.interrupted and minimizing and summary["classes"]:
            minimized = minimize_classes(
                args.out, summary["classes"], args.minimize, args.minimize_seconds,
                deadline=budget.until(REPORTS_RESERVE_S), memory_limit_bytes=args.memory_limit,
                on_class=lambda index, total, entry: progress.phase(f"minimizing class {index + 1}/{total}"))
        phases.mark("minimizing")
        progress.phase("writing reports")
        if summary["completed"]:
            remove_fixed_minimized(args.out, summary["classes"])
        summary["classes"] = class_details(args.out, summary["classes"])
        if corpus is not None and not run.interrupted:
            for entry in summary["classes"]:
                if entry.get("minimized"):
                    corpus.add(os.path.join(args.out, entry["minimized"]), spec.engine, entry["id"], spec.options)
        summary["corpus"] = dict(corpus_report, directory=None if corpus is None else corpus.root,
                                 line=corpus_line(corpus_report))
        summary["elapsed_total_s"] = round(time.monotonic() - budget.started, 3)
        summary["phases_s"] = phases.mark("finishing")     # the reports that follow take milliseconds
        write_reports(args.out, summary, run.plan.per_point, list(run.results.values()), spec.engine)
    return run, summary, minimized


def write_reports(out_dir: str, summary: dict, per_point: list[dict], results: list[dict], engine: str) -> None:
    """summary.json, junit.xml and index.html, all derived from the results."""
    write_summary(out_dir, summary)
    write_junit(out_dir, summary)
    render_html(summary, per_point, results, out_dir, known_bugs(engine))
