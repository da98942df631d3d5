"""Sweeping from Python: the same sweep as `crashsweep sweep`, with the same validation.

Example:

    from crashsweep.api import sweep
    outcome = sweep("my_store.py:MyStore", scenario="default", out="report")
    if outcome.violations:
        print(outcome.failure_message())

Every keyword mirrors a command-line flag (`crash_depth` is `--crash-depth`);
bad values raise `SweepUsageError` with the same one-line message the command
line prints. The reports (index.html, summary.json, junit.xml, results.jsonl,
traces/) are written to `out` exactly as the command line writes them.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

from crashsweep.crash_explorer._profiles import engine_flag
from crashsweep.engines import DEFAULT_ENGINE

FAILURE_CLASSES_LISTED_MAX = 10


class SweepUsageError(ValueError):
    """A sweep was asked for with a bad value; the message is one line."""


@dataclass
class SweepOutcome:
    summary: dict
    out_dir: str
    reproduce: str                       # the command line that reproduces this sweep
    traces: list[str] = field(default_factory=list)      # paths of the traces of every failure class
    minimized: list[str] = field(default_factory=list)   # their minimized traces
    interrupted: bool = False

    @property
    def violations(self) -> int:
        return self.summary["violations"]

    def replay_command(self, trace: str) -> str:
        return f"crashsweep replay {shlex.quote(trace)}{engine_flag(self.summary['engine'])}"

    def failure_message(self) -> str:
        """Readable text for a failed test: each failure class with its explanation, trace and replay command."""
        summary = self.summary
        classes = summary.get("classes", [])
        lines = [f"crashsweep: {summary['violations']:,} crash-consistency violation(s) in engine {summary['engine']} "
                 f"among {summary['distinct_states']:,} distinct crash states, in {len(classes)} failure class(es):"]
        for number, entry in enumerate(classes[:FAILURE_CLASSES_LISTED_MAX], 1):
            trace = os.path.join(self.out_dir, entry.get("minimized") or entry["trace"])
            lines.append(f"class {number}: {entry['title']} — {entry['states']:,} state(s)")
            lines += [f"    {line}" for line in entry.get("why", [])]
            lines.append(f"    explain: crashsweep explain {shlex.quote(trace)}{engine_flag(summary['engine'])}")
            lines.append(f"    replay: {self.replay_command(trace)}")
        if len(classes) > FAILURE_CLASSES_LISTED_MAX:
            lines.append(f"... and {len(classes) - FAILURE_CLASSES_LISTED_MAX} more class(es) in "
                         f"{os.path.join(self.out_dir, 'summary.json')}")
        lines.append(f"report: {os.path.join(self.out_dir, 'index.html')}")
        lines.append(f"reproduce the sweep: {self.reproduce}")
        return "\n".join(lines)


def sweep_argv(engine: str = DEFAULT_ENGINE, *, out: str = "crashsweep-report", options: dict | None = None,
               **settings) -> list[str]:
    """The `crashsweep sweep` arguments for these settings (keyword `crash_depth` -> `--crash-depth`)."""
    argv = ["sweep", "--engine", str(engine), "--out", str(out), "--quiet"]
    for key, value in (options or {}).items():
        argv += ["--option", f"{key}={value}"]
    for name, value in settings.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv


def sweep(engine: str = DEFAULT_ENGINE, *, out: str = "crashsweep-report", options: dict | None = None,
          **settings) -> SweepOutcome:
    """Run one sweep and write its reports to `out`; see the module docstring."""
    from crashsweep import cli   # the command line owns the parser, so both faces validate alike

    if "continuation" in settings:
        settings["no_continue"] = not settings.pop("continuation")
    if "shard" in settings and isinstance(settings["shard"], tuple):
        settings["shard"] = "{}/{}".format(*settings["shard"])
    argv = sweep_argv(engine, out=out, options=options, **settings)
    try:
        args = cli.parse_with_settings(argv)
        run, summary, minimized = cli.run_sweep(args, progress_quiet=True)
    except cli.UsageError as error:
        raise SweepUsageError(str(error)) from None
    except cli.USER_ERRORS as error:
        raise SweepUsageError(str(error)) from None
    traces = [os.path.join(out, entry["trace"]) for entry in summary["classes"]]
    return SweepOutcome(summary=summary, out_dir=out, reproduce=cli.reproduce_command(args), traces=traces,
                        minimized=minimized, interrupted=run.interrupted)
