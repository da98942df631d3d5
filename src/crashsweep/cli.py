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

from rich.console import Console

from crashsweep import __version__
from crashsweep._cli_common import (
    EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, EXIT_VIOLATIONS, UsageError,
)
from crashsweep._cli_traces import command_explain, command_log, command_minimize, command_replay
from crashsweep.crash_explorer import (
    BOUND_DEFAULT, SAMPLES_DEFAULT, STRATEGIES, STRATEGY_DEFAULT, ExplorerError, SweepRun, SweepSpec,
    load_trace, make_options, merge_results, summarize_results,
)
from crashsweep.crash_explorer._limits import default_memory_limit_bytes
from crashsweep._settings import PROFILE_HELP, SECTION_COMMANDS, SettingsError, settings_argv
from crashsweep.crash_explorer._corpus import corpus_default
from crashsweep import _sweep_command as sweep_command
from crashsweep.crash_explorer._class_traces import class_details
from crashsweep.crash_explorer._trace import MINIMIZED_SUFFIX
from crashsweep.crash_explorer._profiles import engine_profile
from crashsweep.crash_explorer.media._native import WORK_DIR_ENVIRONMENT
from crashsweep.crash_explorer._executor import worker_sessions
from crashsweep.crash_explorer._sandbox import engine_sessions
from crashsweep.crash_explorer._signals import Terminated, sigterm_as_interrupt
from crashsweep.disk_model import (
    FS_MODEL_DEFAULT, FS_MODELS, SECTOR_COUNT_DEFAULT, SECTOR_SIZE_DEFAULT_BYTES, FaultPlan, check_geometry,
)
from crashsweep.disk_model.errors import DiskModelError
from crashsweep.engines import ADAPTERS, DEFAULT_ENGINE, EngineError, parse_option_pairs
from crashsweep.reports import print_summary
from crashsweep.scenarios import ScenarioError, describe, resolve_scenario

USER_ERRORS = (ExplorerError, EngineError, ScenarioError, DiskModelError, SettingsError)


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


def _format_size(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"


EXIT_CODES_TEXT = """exit codes:
  0    no violation (replay: the trace no longer fails)
  1    violations found (replay: the violation reproduced, or the same operation still fails)
  2    bad input: one line says what is wrong; nothing already produced is touched
  70   a bug in crashsweep itself (its traceback is printed)
  130  interrupted by Ctrl-C; 143 stopped by SIGTERM (results so far kept; --resume continues)"""

SWEEP_EXAMPLES = """examples:
  crashsweep sweep                                   the built-in B^e-tree on the default workload
  crashsweep sweep --engine my_store.py:Store        your engine (a class taking a directory, or a device)
  crashsweep sweep --profile quick                   seconds, for local edits
  crashsweep sweep --budget-seconds 300              bound the whole command (CI timeouts)
  crashsweep sweep --engine sqlite --option journal_mode=wal --option synchronous=normal

settings may also live in pyproject.toml under [tool.crashsweep] (long option names as keys,
e.g. budget-seconds = 60; profiles under [tool.crashsweep.profiles.NAME]); flags win.
"""


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in --help (none shown for flags and options without one), examples as written."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS, []) or isinstance(action.default, tuple) \
                or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_spec_arguments(command: argparse.ArgumentParser) -> None:
    """The settings that decide the workload, the medium and the crash states (sweep and log)."""
    command.add_argument("--engine", default=DEFAULT_ENGINE,
                         help="engine to test: a built-in name (crashsweep engines), or your own FILE.py:CLASS or "
                              "module:CLASS, found from the current directory")
    command.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="engine option, repeatable (crashsweep bugs lists seeded bugs: bug=NAME)")
    command.add_argument("--scenario", default="default",
                         help="workload: a name (crashsweep scenarios) or a JSON scenario file")
    command.add_argument("--ops", type=_positive_int, help="length of a named scenario, in operations")
    command.add_argument("--seed", type=_non_negative_int, default=0,
                         help="drives the device's ordering, scenarios, samples and the engine's randomness")
    command.add_argument("--sector-size", type=_positive_int, default=SECTOR_SIZE_DEFAULT_BYTES,
                         help="block devices: bytes per sector")
    command.add_argument("--device-sectors", type=_positive_int,
                         help=f"block devices: size in sectors (default: what the engine needs, at least "
                              f"{SECTOR_COUNT_DEFAULT})")
    command.add_argument("--cache", choices=("volatile", "none"), default="volatile",
                         help="block devices: a volatile write cache (flush/FUA make writes durable) or none")
    command.add_argument("--fs-model", choices=FS_MODELS, default=FS_MODEL_DEFAULT,
                         help="file engines: the persistence model (docs/fs-models.md; posix is the weakest "
                              "POSIX allows)")
    command.add_argument("--medium", choices=("model", "native"), default="model",
                         help="Python path engines: in-process on the file-system model, or natively in a process "
                              "of their own on a real directory, system calls recorded (docs/native.md)")
    command.add_argument("--ignore-mmap", action="append", default=[], metavar="GLOB",
                         help="native medium: a file whose writable shared mmap does not matter after a crash "
                              "(lock or shared-memory files), repeatable")
    command.add_argument("--work-dir",
                         help="native medium: where crash states are materialized (default /dev/shm, a tmpfs)")
    command.add_argument("--strategy", default=STRATEGY_DEFAULT, choices=STRATEGIES,
                         help="which crash states of each crash point: bounded (at most k pending writes "
                              "persisted or dropped), exhaustive, prefix, random")
    command.add_argument("--bound", type=_positive_int, default=BOUND_DEFAULT, help="k for --strategy bounded")
    command.add_argument("--samples", type=_positive_int, default=SAMPLES_DEFAULT,
                         help="states per crash point for --strategy random")
    command.add_argument("--faults", default="crash,torn,lost",
                         help="comma-separated: crash,lost,torn,corrupt,misdirect,read-error,latent (or all)")
    command.add_argument("--variants", type=_non_negative_int, default=4,
                         help="damaged states per crash point when corruption faults are on")
    command.add_argument("--crash-depth", type=_non_negative_int, default=1,
                         help="crash again during recovery and continuation, to this depth")
    command.add_argument("--no-continue", action="store_true", help="do not run operations after recovery")
    command.add_argument("--state-timeout", type=_positive_float, default=10.0,
                         help="seconds per state before it counts as hang")
    memory_help = ("address-space limit of every process that runs engine code (default: a quarter of this "
                   "machine's memory, here %s); past it: resource-exhausted")
    command.add_argument("--memory-limit", type=_memory_size, default=default_memory_limit_bytes(), metavar="SIZE",
                         help=memory_help % _format_size(default_memory_limit_bytes()))
    command.add_argument("--profile", help="a named set of settings: " + PROFILE_HELP
                                           + "; or one of pyproject.toml's [tool.crashsweep.profiles]")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crashsweep", description="Find crash-consistency bugs in storage engines.",
                     epilog=EXIT_CODES_TEXT, formatter_class=_Help)
    parser.add_argument("-V", "--version", action="version", version=f"crashsweep {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    sweep = commands.add_parser("sweep", help="record a workload, explore its crash states, check every one",
                                description="Record the workload once, enumerate the crash states a disk could "
                                            "be left in, recover the engine from each and check it against the "
                                            "reference model.", epilog=SWEEP_EXAMPLES + "\n" + EXIT_CODES_TEXT,
                                formatter_class=_Help)
    _add_spec_arguments(sweep)
    sweep.add_argument("--budget-states", type=_positive_int, help="stop after this many distinct states")
    sweep.add_argument("--budget-seconds", type=_positive_float,
                       help="bound the whole command (recording, planning, checking, minimization, reports)")
    sweep.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1,
                       help="worker processes (default: all cores); results never depend on it")
    sweep.add_argument("--executor", choices=("local", "dask"), default="local",
                       help="where states run: worker processes here, or a Dask cluster (pip install "
                            "'crashsweep[dask]'; a local cluster of --jobs workers unless --scheduler names one)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="with --executor dask: the scheduler of a running cluster (tcp://host:8786)")
    sweep.add_argument("--shard", type=_shard, default=(0, 1), metavar="I/N",
                       help="run only slice I of N (a CI matrix; default 0/1, the whole sweep); crashsweep report "
                            "merges them")
    sweep.add_argument("--out", default="crashsweep-report", help="output directory")
    sweep.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    sweep.add_argument("--no-memo", action="store_true",
                       help="recover every state with a live engine run, even where the engine's observation "
                            "memo knows the result (SQLite) or the same nested state already passed after a "
                            "recovery alike (--crash-depth 1; same results, slower)")
    sweep.add_argument("--no-stream", action="store_true",
                       help="plan every crash state before checking any (by default states are checked while "
                            "planning goes on, local executor only; same results)")
    sweep.add_argument("--minimize", type=_non_negative_int, default=10, metavar="CLASSES",
                       help="after the sweep, minimize and explain the trace of each of the first CLASSES failure "
                            "classes (0: none)")
    sweep.add_argument("--minimize-seconds", type=_positive_float, default=60.0,
                       help="time for minimizing all of those classes (shared evenly)")
    sweep.add_argument("--traces", choices=("classes", "all"), default="classes",
                       help="one trace per failure class, or also one per violating state")
    sweep.add_argument("--corpus", default=corpus_default(),
                       help="the regression corpus: minimized traces of earlier failure classes, re-checked first "
                            "(docs/findings.md; the environment's CRASHSWEEP_CORPUS sets the default)")
    sweep.add_argument("--no-corpus", action="store_true", help="neither re-check nor add to the corpus")
    sweep.add_argument("--quiet", action="store_true", help="print only the final line")

    log = commands.add_parser("log", help="list the recorded I/O and crash points of a workload, without sweeping",
                              description="Run the workload once (in a contained process) and list every I/O "
                                          "call the engine made, with its source line, and the crash points.",
                              epilog="example:\n  crashsweep log --engine my_store.py:Store --ops 4",
                              formatter_class=_Help)
    _add_spec_arguments(log)

    replay = commands.add_parser("replay", help="rebuild the crash state of a trace and check it again",
                                 description="Rebuild the trace's crash state and check it. When the engine's I/O "
                                             "changed (a fix), re-check every crash state of the trace's operation "
                                             "instead.", epilog=EXIT_CODES_TEXT, formatter_class=_Help)
    replay.add_argument("trace")
    replay.add_argument("--explain", action="store_true", help="also explain the failing state (as `explain`)")
    replay.add_argument("--quiet", action="store_true", help="print only the final line")

    explain = commands.add_parser("explain", help="say what a failing trace needs, in the engine's terms",
                                  description="The essential fates of a trace's state (which writes must persist "
                                              "before which, which must be atomic, what was assumed durable) and "
                                              "the I/O around the crash, with the engine's source lines.",
                                  formatter_class=_Help)
    explain.add_argument("trace")

    minimize = commands.add_parser("minimize", help="shrink a failing trace", formatter_class=_Help)
    minimize.add_argument("trace")
    for command in (replay, minimize, explain):
        command.add_argument("--engine", metavar="MODULE:CLASS",
                             help="allow the trace's user engine to run (a trace's user engine runs only when "
                                  "named here or when its .py file lies under the current directory)")
        command.add_argument("--memory-limit", type=_memory_size, default=default_memory_limit_bytes(),
                             metavar="SIZE", help="address-space limit of the engine's process")
    minimize.add_argument("--out", help="where to write the smaller trace (default: TRACE with .min.json)")
    minimize.add_argument("--budget-seconds", type=_positive_float, default=300.0, help="time budget")
    minimize.add_argument("--states-per-candidate", type=_positive_int, default=3000,
                          help="states searched in each shorter workload")

    report = commands.add_parser("report", help="rebuild index.html, summary.json and junit.xml from results "
                                 "files, merging several (e.g. the shards of one sweep)", formatter_class=_Help)
    report.add_argument("results", nargs="+", metavar="RESULTS.jsonl")
    report.add_argument("--out", default="crashsweep-report", help="output directory")

    bugs = commands.add_parser("bugs", help="list the seeded bugs of an engine", formatter_class=_Help)
    bugs.add_argument("--engine", default=DEFAULT_ENGINE, help="engine name")
    commands.add_parser("scenarios", help="list the named scenarios")
    commands.add_parser("engines", help="list the built-in engines")
    return parser


def spec_from_args(args) -> SweepSpec:
    medium = "native" if getattr(args, "medium", "model") == "native" else ""
    if getattr(args, "work_dir", None):
        if not os.path.isdir(args.work_dir):
            raise UsageError(f"--work-dir {args.work_dir} is not a directory")
        os.environ[WORK_DIR_ENVIRONMENT] = os.path.abspath(args.work_dir)
    adapter = engine_profile(args.engine, args.memory_limit, medium=medium)
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
                     fs_model=args.fs_model, medium=medium, ignore_mmap=tuple(getattr(args, "ignore_mmap", [])))
    return spec.validate()


def run_sweep(args, progress_quiet: bool) -> tuple[SweepRun, dict, list[str]]:
    """Run the sweep `args` describes: corpus re-check, recording, planning, checking, one minimized trace per
    failure class, every report (see `_sweep_command`); (run, summary, paths of the minimized traces)."""
    spec = spec_from_args(args)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UsageError(f"--out {args.out} exists and is not a directory")
    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler names a Dask scheduler: use it with --executor dask")
    return sweep_command.run_sweep(args, spec, progress_quiet)


def command_sweep(args, console: Console) -> int:
    run, summary, minimized = run_sweep(args, progress_quiet=args.quiet)
    if not args.quiet:
        print_summary(summary, args.out, console)
    corpus = summary.get("corpus") or {}
    if corpus.get("line"):
        console.print(f"crashsweep: {corpus['line']}", soft_wrap=True, highlight=False, markup=False)
        for entry in corpus.get("still_failing", [])[:10]:
            message = " ".join(entry["message"].split())      # one line each (an engine's stderr has many)
            message = message if len(message) <= 200 else message[:199] + "…"
            console.print(f"  still failing: {entry['path']}: {message}", soft_wrap=True, highlight=False,
                          markup=False)
    if summary.get("stopped_by"):
        console.print(f"crashsweep: {summary['stopped_by']}", soft_wrap=True, highlight=False, markup=False)
    failing = bool(summary["violations"]) or bool(corpus.get("still_failing"))
    verdict = "FAIL" if failing else "ok"
    classes = f" in {len(summary['classes']):,} class(es)" if summary["violations"] else ""
    first = summary.get("first_violation_state")
    first_text = f", first at state {first:,}" if first is not None and first >= 0 else ""
    still = len(corpus.get("still_failing", []))
    if still:         # the sweep itself may be clean: say what failed
        first_text += f"; {still:,} corpus trace(s) still failing"
    console.print(f"crashsweep: {verdict}: {summary['violations']:,} violation(s){classes}{first_text} in "
                  f"{summary['distinct_states']:,} distinct states ({summary['coverage']}); report in {args.out}/; "
                  f"{summary.get('elapsed_total_s', summary['elapsed_s']):.1f} s; reproduce the sweep with: "
                  f"{reproduce_command(args)}", soft_wrap=True, highlight=False, markup=False)
    if run.interrupted:
        return EXIT_TERMINATED if run.terminated else EXIT_INTERRUPTED
    return EXIT_VIOLATIONS if failing else EXIT_OK


def command_report(args, console: Console) -> int:
    header, results = merge_results(args.results)
    summary = summarize_results(header, results, elapsed_s=0.0,
                                completed=len(results) >= header["plan"]["planned"], timed=False)
    os.makedirs(args.out, exist_ok=True)
    copy_traces([os.path.join(os.path.dirname(os.path.abspath(path)), "traces") for path in args.results],
                os.path.join(args.out, "traces"))
    summary["classes"] = class_details(args.out, summary["classes"])
    sweep_command.write_reports(args.out, summary, header["plan"]["per_point"], results, summary["engine"])
    console.print(f"crashsweep: report of {len(args.results)} results file(s): {summary['violations']} violation(s) "
                  f"in {summary['distinct_states']:,} distinct states ({summary['coverage']}); wrote "
                  f"{args.out}/index.html, summary.json, junit.xml", soft_wrap=True, highlight=False)
    return EXIT_VIOLATIONS if summary["violations"] else EXIT_OK


def copy_traces(sources: list[str], target: str) -> None:
    """Bring the traces of merged results beside the merged report, so its links work. Shards name a class's
    trace alike: the one kept is the class's representative over all shards (with its minimized trace)."""
    chosen: dict[str, tuple] = {}
    for source in sources:
        if not os.path.isdir(source) or os.path.abspath(source) == os.path.abspath(target):
            continue
        for name in os.listdir(source):
            if name.endswith(".json") and not name.endswith(MINIMIZED_SUFFIX):
                order = _trace_order(os.path.join(source, name))
                if name not in chosen or order < chosen[name][0]:
                    chosen[name] = (order, source)
    if chosen:
        os.makedirs(target, exist_ok=True)
    for name, (_, source) in chosen.items():
        shutil.copyfile(os.path.join(source, name), os.path.join(target, name))
        smaller = name[:-len(".json")] + MINIMIZED_SUFFIX
        if os.path.exists(os.path.join(source, smaller)):
            shutil.copyfile(os.path.join(source, smaller), os.path.join(target, smaller))


def _trace_order(path: str) -> tuple:
    """A class trace's representative order (`_classes.representative_order`); unreadable traces last."""
    try:
        _, trace = load_trace(path)
    except ExplorerError:
        return (3, 0)
    return (1 if trace.get("nested") else 0, trace.get("state", 0))


REPRODUCE_FLAGS = (("engine", "--engine"), ("scenario", "--scenario"), ("ops", "--ops"),
                   ("strategy", "--strategy"), ("bound", "--bound"), ("samples", "--samples"),
                   ("faults", "--faults"), ("variants", "--variants"), ("seed", "--seed"),
                   ("sector_size", "--sector-size"), ("device_sectors", "--device-sectors"), ("cache", "--cache"),
                   ("crash_depth", "--crash-depth"), ("state_timeout", "--state-timeout"), ("fs_model", "--fs-model"),
                   ("medium", "--medium"), ("work_dir", "--work-dir"),
                   ("budget_states", "--budget-states"), ("budget_seconds", "--budget-seconds"),
                   ("memory_limit", "--memory-limit"))
REPRODUCE_ALWAYS = ("engine", "scenario", "strategy", "faults", "seed")


def reproduce_command(args) -> str:
    """The sweep command, shell-quoted, with every setting that decides which states run and how they end
    (not --jobs, --out or --quiet, which do not). Example: `crashsweep sweep --engine betree ... --seed 0`."""
    defaults = build_parser().parse_args(["sweep"])
    words = ["crashsweep", "sweep"]
    configured = {name.replace("-", "_") for name in getattr(args, "configured", [])}
    for name, flag in REPRODUCE_FLAGS:
        value = getattr(args, name)
        if value is not None and (name in REPRODUCE_ALWAYS or name in configured or value != getattr(defaults, name)):
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    for option in args.option:
        words += ["--option", option]
    if args.shard != (0, 1):
        words += ["--shard", f"{args.shard[0]}/{args.shard[1]}"]
    if args.no_continue:
        words.append("--no-continue")
    if getattr(args, "no_corpus", False):
        words.append("--no-corpus")
    return " ".join(shlex.quote(word) for word in words)


def command_bugs(args, console: Console) -> int:
    adapter = engine_profile(args.engine)
    if not adapter.bugs:
        console.print(f"engine {adapter.name} has no seeded bugs")
    for name, description in adapter.bugs.items():
        console.print(f"{name:32} {description}  (--engine {adapter.name} --option bug={name})", highlight=False)
    return EXIT_OK


def parse_with_settings(argv: list[str] | None):
    """Parse the command line with the profile and pyproject.toml's [tool.crashsweep] placed before the user's
    flags (which win), for the commands that take sweep settings (see `_settings`)."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in SECTION_COMMANDS:
        return args
    command_parser = parser._subparsers._group_actions[0].choices[args.command]
    known = {action.option_strings[-1][2:]: _action_kind(action) for action in command_parser._actions
             if action.option_strings and action.option_strings[-1].startswith("--")}
    known.pop("help", None)
    known.pop("profile", None)
    extra, origin = settings_argv(args.profile, known)
    if not extra:
        return args
    try:
        parser.parse_args([args.command] + extra)
    except UsageError as error:
        raise SettingsError(f"{origin}: {error}") from None
    position = argv.index(args.command) + 1
    args = parser.parse_args(argv[:position] + extra + argv[position:])
    args.configured = [flag[2:] for flag in extra if flag.startswith("--")]
    return args


def _action_kind(action) -> str:
    if isinstance(action, argparse._StoreTrueAction):
        return "store_true"
    if isinstance(action, argparse._AppendAction):
        return "append"
    return "store"


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
        args = parse_with_settings(argv)
        if args.command is None:
            build_parser().print_help()
            return EXIT_USAGE
        if args.command == "sweep":
            return command_sweep(args, console)
        if args.command == "replay":
            return command_replay(args, console)
        if args.command == "explain":
            return command_explain(args, console)
        if args.command == "log":
            return command_log(args, console, spec_from_args(args))
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
