"""The command line: `crashsweep sweep | replay | minimize | bugs | scenarios | engines`.

Exit codes (DESIGN §6): 0 no violation; 1 violations found (for `replay`: the
violation reproduced); 2 bad input or usage, with one line naming what is
wrong; 130 interrupted by Ctrl-C, 143 by SIGTERM (results so far are kept, the summary and
reports written; `--resume` continues); 70 a bug in crashsweep itself (with its traceback).
"""

from __future__ import annotations

import argparse
import os
import traceback
import shlex
import shutil
import time

from rich.console import Console

from crashsweep import __version__
from crashsweep.crash_explorer import (
    BOUND_DEFAULT, SAMPLES_DEFAULT, STRATEGIES, STRATEGY_DEFAULT, ExplorerError, SweepOptions, SweepRun, SweepSpec,
    execute, load_trace, make_options, merge_results, prepare, summarize, summarize_results, write_trace,
)
from crashsweep.crash_explorer._limits import default_memory_limit_bytes
from crashsweep.crash_explorer._manifest import Manifest
from crashsweep.crash_explorer._class_traces import class_details, minimize_classes, remove_fixed_minimized
from crashsweep.crash_explorer._minimize import minimize_contained
from crashsweep.crash_explorer._profiles import allow_engine, engine_profile, known_bugs
from crashsweep.crash_explorer._replay import replay_contained
from crashsweep.crash_explorer._executor import worker_sessions
from crashsweep.crash_explorer._sandbox import engine_sessions
from crashsweep.crash_explorer._signals import Terminated, sigterm_as_interrupt
from crashsweep.disk_model import (
    FS_MODEL_DEFAULT, FS_MODELS, SECTOR_COUNT_DEFAULT, SECTOR_SIZE_DEFAULT_BYTES, FaultPlan, check_geometry,
)
from crashsweep.disk_model.errors import DiskModelError
from crashsweep.engines import ADAPTERS, DEFAULT_ENGINE, EngineError, parse_option_pairs
from crashsweep.reports import SweepProgress, print_summary, render_html, write_junit, write_summary
from crashsweep.reports._values import value_difference
from crashsweep.scenarios import ScenarioError, describe, resolve_scenario

USER_ERRORS = (ExplorerError, EngineError, ScenarioError, DiskModelError)
EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143
EXIT_INTERNAL = 70        # EX_SOFTWARE: a bug in crashsweep itself (never confused with 1, "violations found")


class UsageError(Exception):
    """Bad command-line usage; printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _memory_size(text: str) -> int:
    """'512M', '4G', '1073741824' -> bytes; at least 64 MiB."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = cleaned[-1:] if cleaned[-1:] in _SIZE_UNITS else ""
    try:
        value = float(cleaned[:len(cleaned) - len(unit)]) * _SIZE_UNITS[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 512M or 4G, got {text!r}") from None
    if not 64 << 20 <= value <= 1 << 50:
        raise argparse.ArgumentTypeError(f"expected a size between 64M and 1P, got {text!r}")
    return int(value)


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/4, got {text!r}") from None
    if not 0 <= shard[0] < shard[1]:
        raise argparse.ArgumentTypeError(f"shard {text}: need 0 <= I < N")
    return shard


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crashsweep", description="Find crash-consistency bugs in storage engines.")
    parser.add_argument("-V", "--version", action="version", version=f"crashsweep {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)

    sweep = commands.add_parser("sweep", help="record a workload, explore its crash states, check every one")
    sweep.add_argument("--engine", default=DEFAULT_ENGINE, help=f"engine name (default {DEFAULT_ENGINE})")
    sweep.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="engine option, repeatable (e.g. bug=no-log-checksum)")
    sweep.add_argument("--scenario", default="default", help="scenario name, or a path to a JSON scenario file")
    sweep.add_argument("--ops", type=_positive_int, help="length of a named scenario (operations)")
    sweep.add_argument("--strategy", default=STRATEGY_DEFAULT, choices=STRATEGIES)
    sweep.add_argument("--bound", type=_positive_int, default=BOUND_DEFAULT, help="k for --strategy bounded")
    sweep.add_argument("--samples", type=_positive_int, default=SAMPLES_DEFAULT,
                       help="states per crash point for --strategy random")
    sweep.add_argument("--faults", default="crash,torn,lost",
                       help="comma-separated: crash,lost,torn,corrupt,misdirect,read-error,latent (or all)")
    sweep.add_argument("--variants", type=_non_negative_int, default=4,
                       help="damaged states per crash point when corruption faults are on")
    sweep.add_argument("--seed", type=_non_negative_int, default=0)
    sweep.add_argument("--budget-states", type=_positive_int, help="stop after this many distinct states")
    sweep.add_argument("--budget-seconds", type=_positive_float, help="stop after this many seconds")
    sweep.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1,
                       help="worker processes (default: all cores)")
    sweep.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N", help="run only slice I of N")
    sweep.add_argument("--out", default="crashsweep-report", help="output directory")
    sweep.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    sweep.add_argument("--sector-size", type=_positive_int, default=SECTOR_SIZE_DEFAULT_BYTES)
    sweep.add_argument("--device-sectors", type=_positive_int, help="device size in sectors (default: what the "
                       f"engine needs, at least {SECTOR_COUNT_DEFAULT})")
    sweep.add_argument("--cache", choices=("volatile", "none"), default="volatile",
                       help="volatile write cache (flush/FUA make writes durable) or none")
    sweep.add_argument("--crash-depth", type=_non_negative_int, default=1,
                       help="crash again during recovery and continuation, to this depth")
    sweep.add_argument("--no-continue", action="store_true", help="do not run operations after recovery")
    sweep.add_argument("--no-memo", action="store_true",
                       help="recover every state with a live engine run, even where the engine's observation "
                            "memo knows the result (SQLite; results are the same, only slower)")
    sweep.add_argument("--state-timeout", type=_positive_float, default=10.0, help="seconds per state (hang)")
    sweep.add_argument("--fs-model", choices=FS_MODELS, default=FS_MODEL_DEFAULT,
                       help="persistence model of the file-system model, for engines on files "
                            "(see docs/fs-models.md; default: %(default)s, the weakest POSIX allows)")
    sweep.add_argument("--minimize", type=_non_negative_int, default=10, metavar="CLASSES",
                       help="after the sweep, minimize the trace of each of the first CLASSES failure classes "
                            "(default %(default)s; 0: none)")
    sweep.add_argument("--minimize-seconds", type=_positive_float, default=60.0,
                       help="time budget of each of those minimizations (default %(default)s)")
    sweep.add_argument("--traces", choices=("classes", "all"), default="classes",
                       help="one trace per failure class (default), or also one per violating state")
    sweep.add_argument("--quiet", action="store_true", help="print only the final line")
    memory_help = ("address-space limit of every process that runs engine code (default: a quarter of this "
                   "machine's memory, here %s); an engine past it is reported as resource-exhausted")
    sweep.add_argument("--memory-limit", type=_memory_size, default=default_memory_limit_bytes(), metavar="SIZE",
                       help=memory_help % _format_size(default_memory_limit_bytes()))

    replay = commands.add_parser("replay", help="rebuild the crash state of a trace and check it again")
    replay.add_argument("trace")
    replay.add_argument("--quiet", action="store_true")

    minimize = commands.add_parser("minimize", help="shrink a failing trace")
    minimize.add_argument("trace")
    for command in (replay, minimize):
        command.add_argument("--engine", metavar="MODULE:CLASS",
                             help="allow the trace's user engine to run (a trace's user engine runs only when "
                                  "named here or when its .py file lies under the current directory)")
        command.add_argument("--memory-limit", type=_memory_size, default=default_memory_limit_bytes(),
                             metavar="SIZE", help="address-space limit of the engine's process")
    minimize.add_argument("--out", help="where to write the smaller trace (default: TRACE with .min.json)")
    minimize.add_argument("--budget-seconds", type=_positive_float, default=300.0)
    minimize.add_argument("--states-per-candidate", type=_positive_int, default=3000)

    report = commands.add_parser("report", help="rebuild index.html, summary.json and junit.xml from results "
                                 "files, merging several (e.g. the shards of one sweep)")
    report.add_argument("results", nargs="+", metavar="RESULTS.jsonl")
    report.add_argument("--out", default="crashsweep-report", help="output directory")

    bugs = commands.add_parser("bugs", help="list the seeded bugs of an engine")
    bugs.add_argument("--engine", default=DEFAULT_ENGINE)
    commands.add_parser("scenarios", help="list the named scenarios")
    commands.add_parser("engines", help="list the built-in engines")
    return parser


def _format_size(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"


def spec_from_args(args) -> SweepSpec:
    adapter = engine_profile(args.engine, args.memory_limit)
    raw_options = parse_option_pairs(args.option)
    options = adapter.parse_options(raw_options)
    name, ops = resolve_scenario(args.scenario, args.seed, args.ops)
    check_geometry(args.sector_size, args.device_sectors or SECTOR_COUNT_DEFAULT)
    sectors = args.device_sectors or max(SECTOR_COUNT_DEFAULT, adapter.sectors_needed(options, args.sector_size))
    spec = SweepSpec(ops=tuple(ops), engine=args.engine, options=make_options(raw_options), scenario=name,
                     seed=args.seed, sector_size=args.sector_size, sector_count=sectors,
                     volatile_cache=args.cache == "volatile", faults=FaultPlan.parse(args.faults, args.variants),
                     strategy=args.strategy, bound=args.bound, samples=args.samples, crash_depth=args.crash_depth,
                     continuation=not args.no_continue, state_timeout_s=args.state_timeout,
                     fs_model=args.fs_model)
    return spec.validate()


def run_sweep(args, progress_quiet: bool) -> tuple[SweepRun, dict, list[str]]:
    """Run the sweep `args` describes, minimize one trace per failure class, write every report;
    (run, summary, paths of the minimized traces)."""
    spec = spec_from_args(args)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} exists and is not a directory")
    options = SweepOptions(out_dir=args.out, jobs=args.jobs, shard=args.shard, budget_states=args.budget_states,
                           budget_seconds=args.budget_seconds, resume=args.resume, memo=not args.no_memo,
                           memory_limit_bytes=args.memory_limit, traces=args.traces)
    run = prepare(spec, options)
    with SweepProgress(len(run.plan.states), quiet=progress_quiet) as progress:
        run = execute(run, lambda result, run: progress.advance(bool(result.get("kind")),
                                                                time.monotonic() - run.started_at))
    summary = summarize(run)
    minimized = [] if run.interrupted else minimize_classes(
        args.out, summary["classes"], args.minimize, args.minimize_seconds, memory_limit_bytes=args.memory_limit)
    if summary["completed"]:
        remove_fixed_minimized(args.out, summary["classes"])
    summary["classes"] = class_details(args.out, summary["classes"])
    write_reports(args.out, summary, run.plan.per_point, list(run.results.values()), spec.engine)
    return run, summary, minimized


def command_sweep(args, console: Console) -> int:
    run, summary, minimized = run_sweep(args, progress_quiet=args.quiet)
    if not args.quiet:
        print_summary(summary, args.out, console)
    verdict = "FAIL" if summary["violations"] else "ok"
    classes = f" in {len(summary['classes']):,} class(es)" if summary["violations"] else ""
    console.print(f"crashsweep: {verdict}: {summary['violations']:,} violation(s){classes} in "
                  f"{summary['distinct_states']:,} "
                  f"distinct states ({summary['coverage']}); report in {args.out}/; reproduce the sweep with: "
                  f"{reproduce_command(args)}", soft_wrap=True, highlight=False)
    if run.interrupted:
        return EXIT_TERMINATED if run.terminated else EXIT_INTERRUPTED
    return EXIT_VIOLATIONS if summary["violations"] else EXIT_OK


def write_reports(out_dir: str, summary: dict, per_point: list[dict], results: list[dict], engine: str) -> None:
    """summary.json, junit.xml and index.html, all derived from the results."""
    write_summary(out_dir, summary)
    write_junit(out_dir, summary)
    render_html(summary, per_point, results, out_dir, known_bugs(engine))


def command_report(args, console: Console) -> int:
    header, results = merge_results(args.results)
    summary = summarize_results(header, results, elapsed_s=0.0,
                                completed=len(results) >= header["plan"]["planned"])
    os.makedirs(args.out, exist_ok=True)
    copy_traces([os.path.join(os.path.dirname(os.path.abspath(path)), "traces") for path in args.results],
                os.path.join(args.out, "traces"))
    summary["classes"] = class_details(args.out, summary["classes"])
    write_reports(args.out, summary, header["plan"]["per_point"], results, summary["engine"])
    console.print(f"crashsweep: report of {len(args.results)} results file(s): {summary['violations']} violation(s) "
                  f"in {summary['distinct_states']:,} distinct states ({summary['coverage']}); wrote "
                  f"{args.out}/index.html, summary.json, junit.xml", soft_wrap=True, highlight=False)
    return EXIT_VIOLATIONS if summary["violations"] else EXIT_OK


def copy_traces(sources: list[str], target: str) -> None:
    """Bring the traces of merged results beside the merged report, so its links work."""
    for source in sources:
        if not os.path.isdir(source) or os.path.abspath(source) == os.path.abspath(target):
            continue
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(source):
            if name.endswith(".json"):
                shutil.copyfile(os.path.join(source, name), os.path.join(target, name))


REPRODUCE_FLAGS = (("engine", "--engine"), ("scenario", "--scenario"), ("ops", "--ops"),
                   ("strategy", "--strategy"), ("bound", "--bound"), ("samples", "--samples"),
                   ("faults", "--faults"), ("variants", "--variants"), ("seed", "--seed"),
                   ("sector_size", "--sector-size"), ("device_sectors", "--device-sectors"), ("cache", "--cache"),
                   ("crash_depth", "--crash-depth"), ("state_timeout", "--state-timeout"), ("fs_model", "--fs-model"),
                   ("budget_states", "--budget-states"), ("budget_seconds", "--budget-seconds"),
                   ("memory_limit", "--memory-limit"))
REPRODUCE_ALWAYS = ("engine", "scenario", "strategy", "faults", "seed")


def reproduce_command(args) -> str:
    """The sweep command, shell-quoted, with every setting that decides which states run and how they end
    (not --jobs, --out or --quiet, which do not). Example: `crashsweep sweep --engine betree ... --seed 0`."""
    defaults = build_parser().parse_args(["sweep"])
    words = ["crashsweep", "sweep"]
    for name, flag in REPRODUCE_FLAGS:
        value = getattr(args, name)
        if value is not None and (name in REPRODUCE_ALWAYS or value != getattr(defaults, name)):
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    for option in args.option:
        words += ["--option", option]
    if args.shard != (0, 1):
        words += ["--shard", f"{args.shard[0]}/{args.shard[1]}"]
    if args.no_continue:
        words.append("--no-continue")
    return " ".join(shlex.quote(word) for word in words)


def trusted_trace(args):
    """Load a trace as data, then allow its engine (or say, exit 2, how to allow it), then validate the rest."""
    spec, trace = load_trace(args.trace)
    allow_engine(spec.engine, args.engine)
    engine_profile(spec.engine, args.memory_limit)
    spec.validate()
    return spec, trace


def command_replay(args, console: Console) -> int:
    spec, trace = trusted_trace(args)
    result = replay_contained(spec, trace, args.memory_limit)
    expected_kind = trace["violation"]["kind"]
    if result.get("kind") == expected_kind:
        if not args.quiet:
            _print_result(console, result)
        console.print(f"crashsweep: reproduced: {expected_kind}: {result.get('detail', '')}", soft_wrap=True,
                      highlight=False)
        return EXIT_VIOLATIONS
    console.print(f"crashsweep: did not reproduce: the trace recorded {expected_kind}, the replay gave "
                  f"{result.get('kind') or result.get('outcome')} {result.get('detail', '')}".rstrip(),
                  soft_wrap=True, highlight=False)
    return EXIT_OK


def _print_result(console: Console, result: dict) -> None:
    choice = result.get("choice", {})
    if result.get("point") is not None:
        console.print(f"crash point {result['point']} (during op {result.get('op')}), windows {result.get('windows')}; "
                      f"landed {choice.get('persist', [])}, torn {choice.get('torn', [])}, "
                      f"faults {choice.get('faults', [])}", soft_wrap=True, highlight=False)
    for step in result.get("nested") or []:
        console.print(f"then crashed again at recovery point {step['point']}: {step['choice']}", highlight=False)
    diff = result.get("diff") or {}
    for key, value in diff.get("missing", {}).items():
        console.print(f"  - missing {key!r} = {value[:60]!r}", highlight=False)
    for key, value in diff.get("extra", {}).items():
        console.print(f"  + extra   {key!r} = {value[:60]!r}", highlight=False)
    for key, (expected, actual) in diff.get("wrong", {}).items():
        console.print(f"  ~ wrong   {key!r}: {value_difference(expected, actual)}", highlight=False)


def command_minimize(args, console: Console) -> int:
    spec, trace = trusted_trace(args)
    result = replay_contained(spec, trace, args.memory_limit)
    if result.get("kind") != trace["violation"]["kind"]:
        console.print(f"crashsweep: error: trace {args.trace} does not reproduce "
                      f"({trace['violation']['kind']} expected, got {result.get('kind') or 'no violation'}); "
                      "nothing to minimize", soft_wrap=True, highlight=False)
        return EXIT_USAGE
    smaller = minimize_contained(spec, trace, args.budget_seconds, args.states_per_candidate, args.memory_limit)
    out = args.out or (args.trace[:-5] if args.trace.endswith(".json") else args.trace) + ".min.json"
    directory, name = os.path.split(os.path.abspath(out))
    write_trace(directory, smaller, name)
    info = smaller["minimized"]
    console.print(f"crashsweep: minimized {trace['violation']['kind']}: {info['ops_before']} → {info['ops_after']} "
                  f"ops, {info['landed_writes_before']} → {info['landed_writes_after']} landed writes "
                  f"({info['candidates_tried']} candidates, {info['seconds']:.1f} s); wrote {out}; "
                  f"replay with: crashsweep replay {out}", soft_wrap=True, highlight=False)
    return EXIT_OK


def command_bugs(args, console: Console) -> int:
    adapter = engine_profile(args.engine)
    if not adapter.bugs:
        console.print(f"engine {adapter.name} has no seeded bugs")
    for name, description in adapter.bugs.items():
        console.print(f"{name:32} {description}  (--engine {adapter.name} --option bug={name})", highlight=False)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    console = Console(highlight=False, soft_wrap=True)
    error_console = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        with sigterm_as_interrupt(lambda: worker_sessions() | engine_sessions()):
            return _dispatch(argv, console, error_console)
    except Terminated:
        error_console.print("crashsweep: terminated (SIGTERM)", markup=False)
        return EXIT_TERMINATED


def _dispatch(argv, console: Console, error_console: Console) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        if args.command == "sweep":
            return command_sweep(args, console)
        if args.command == "replay":
            return command_replay(args, console)
        if args.command == "minimize":
            return command_minimize(args, console)
        if args.command == "report":
            return command_report(args, console)
        if args.command == "bugs":
            return command_bugs(args, console)
        if args.command == "scenarios":
            for name, text in describe().items():
                console.print(f"{name:14} {text}")
            return EXIT_OK
        for name, adapter in ADAPTERS.items():
            console.print(f"{name:14} {adapter.description}")
        return EXIT_OK
    except UsageError as error:
        error_console.print(f"crashsweep: error: {error}", soft_wrap=True, markup=False)
        return EXIT_USAGE
    except USER_ERRORS as error:
        error_console.print(f"crashsweep: error: {error}", soft_wrap=True, markup=False)
        return EXIT_USAGE
    except OSError as error:   # e.g. an output directory that cannot be written
        where = f" {error.filename}" if error.filename else ""
        error_console.print(f"crashsweep: error: cannot write{where}: {error.strerror or error}", markup=False)
        return EXIT_USAGE
    except Terminated:
        raise
    except KeyboardInterrupt:
        error_console.print("crashsweep: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except Exception as error:    # noqa: BLE001 - crashsweep's own bug: never exit 1, which means "violations"
        error_console.print(traceback.format_exc(), markup=False, highlight=False)
        error_console.print(f"crashsweep: internal error: {type(error).__name__}: {error} (a bug in crashsweep, "
                            "not in the engine: please report it with the traceback above)", markup=False)
        return EXIT_INTERNAL
