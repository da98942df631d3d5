"""Terminal output with rich: a live progress bar on a TTY, plain lines otherwise, or nothing (--quiet).

The final summary table lists states, distinct states, coverage, violations by
kind and time; every violation line names its trace and the exact replay command.
"""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from crashsweep.reports._text import engine_flag

PLAIN_PROGRESS_EVERY_STATES = 2000
PLAIN_PROGRESS_EVERY_SECONDS = 10.0
CLASSES_SHOWN_MAX = 20


class SweepProgress:
    """What the command is doing, from its first second: a live bar on a TTY, plain lines otherwise.

    Example: `with SweepProgress(quiet=False) as progress: progress.phase("recording"); ...;
    progress.phase("checking", total=n); progress.advance(violation=False, elapsed_s=t)`.
    Phases: recording, re-checking the corpus, planning (`step(points done, points)`), checking (states/s,
    violations, ETA), minimizing (class i/n), reports."""

    def __init__(self, total: int = 0, quiet: bool = False, console: Console | None = None, done: int = 0):
        self.console = console or Console(stderr=True)
        self.total, self.quiet, self.done, self.violations = total, quiet, done, 0
        self.live = self.console.is_terminal and not quiet
        self._progress = None
        self._task = None
        self.name = ""
        self._printed_at = 0.0

    def __enter__(self) -> "SweepProgress":
        if self.live:
            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[rate]}"),
                                      TextColumn("[red]{task.fields[violations]}"),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      console=self.console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=None, violations="", rate="")
        return self

    def phase(self, name: str, total: int | None = None, done: int = 0) -> None:
        """Start a phase (`total`: its steps, None when unknown)."""
        self.name, self.total, self.done = name, total or 0, done
        if self._progress is not None:
            self._progress.reset(self._task, total=total, completed=done, description=name, rate="",
                                 violations="")
        elif not self.quiet:
            steps = f" ({total:,})" if total else ""
            print(f"crashsweep: {name}{steps}…", file=sys.stderr, flush=True)
            self._printed_at = time.monotonic()

    def step(self, done: int, total: int | None = None) -> None:
        """Progress within a phase that is not states (planning: points done of points)."""
        self.done = done
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=total if total is not None else self.total)
        elif not self.quiet and time.monotonic() - self._printed_at > PLAIN_PROGRESS_EVERY_SECONDS:
            print(f"crashsweep: {self.name}: {done:,}/{total if total is not None else self.total:,}",
                  file=sys.stderr, flush=True)
            self._printed_at = time.monotonic()

    def advance(self, violation: bool, elapsed_s: float) -> None:
        self.done += 1
        self.violations += violation
        if self._progress is not None:
            rate = f"{self.done / elapsed_s:,.0f} states/s" if elapsed_s > 0 else ""
            self._progress.update(self._task, advance=1, violations=f"{self.violations:,} violation(s)", rate=rate)
        elif not self.quiet and (self.done % PLAIN_PROGRESS_EVERY_STATES == 0
                                 or time.monotonic() - self._printed_at > PLAIN_PROGRESS_EVERY_SECONDS):
            print(f"crashsweep: {self.name}: {self.done:,}/{self.total:,} states, {self.violations:,} violation(s)",
                  file=sys.stderr, flush=True)
            self._printed_at = time.monotonic()

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)


def print_summary(summary: dict, out_dir: str, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"crashsweep: {summary['engine']} × {summary['scenario']} ({summary['strategy']})",
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("crash points", f"{summary['crash_points']:,}")
    table.add_row("states", f"{summary['states_explored']:,} enumerated, {summary['distinct_states']:,} distinct "
                            f"recovered (+{summary['nested_states']:,} after a second crash)")
    table.add_row("coverage", summary["coverage"])
    table.add_row("outcomes", f"{summary['recovered_latest']:,} to the latest snapshot, "
                              f"{summary['recovered_older']:,} to an older allowed one, {summary['refused']:,} refused")
    kinds = ", ".join(f"{kind}: {count}" for kind, count in summary["violations_by_kind"].items()) or "none"
    table.add_row("violations", f"{summary['violations']:,} ({kinds}) in {len(summary.get('classes', [])):,} "
                                "failure class(es)" if summary["violations"] else "0 (none)")
    table.add_row("faults / seed", f"{summary['faults']} / {summary['seed']}")
    table.add_row("time", f"{summary['elapsed_s']:.1f} s, {summary['states_per_s']:,.0f} states/s "
                          f"({summary.get('recoveries_per_s', 0):,.0f} recoveries/s)")
    console.print(table)
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning[/yellow]: {escape(warning)}", soft_wrap=True)
    classes = summary.get("classes", [])
    for number, entry in enumerate(classes[:CLASSES_SHOWN_MAX], 1):
        trace = entry.get("minimized") or entry["trace"]
        console.print(f"[red]class {number}[/red] {escape(entry['title'])} — {entry['states']:,} state(s)",
                      soft_wrap=True)
        for line in entry.get("why", [])[:4]:
            console.print(f"    {escape(line)}", soft_wrap=True)
        console.print(f"    explain: crashsweep explain {escape(out_dir)}/{escape(trace)}"
                      f"{escape(engine_flag(summary))}", soft_wrap=True)
    if len(classes) > CLASSES_SHOWN_MAX:
        console.print(f"… and {len(classes) - CLASSES_SHOWN_MAX} more class(es) in {out_dir}/summary.json")
    if summary.get("interrupted"):
        console.print(f"[yellow]interrupted[/yellow]: results so far are in {out_dir}/results.jsonl; "
                      "run the same command with --resume to continue")
