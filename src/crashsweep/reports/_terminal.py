"""Terminal output with rich: a live progress bar on a TTY, plain lines otherwise, or nothing (--quiet).

The final summary table lists states, distinct states, coverage, violations by
kind and time; every violation line names its trace and the exact replay command.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

PLAIN_PROGRESS_EVERY_STATES = 2000
CLASSES_SHOWN_MAX = 20


class SweepProgress:
    """Example: `with SweepProgress(total, quiet=False) as progress: progress.advance(violation=False)`."""

    def __init__(self, total: int, quiet: bool = False, console: Console | None = None, done: int = 0):
        self.console = console or Console(stderr=True)
        self.total, self.quiet, self.done, self.violations = total, quiet, done, 0
        self.live = self.console.is_terminal and not quiet
        self._progress = None

    def __enter__(self) -> "SweepProgress":
        if self.live:
            self._progress = Progress(TextColumn("[bold]sweeping"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[rate]} states/s"),
                                      TextColumn("[red]{task.fields[violations]} violation(s)"),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      console=self.console, transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task("sweep", total=self.total, completed=self.done,
                                                 violations=0, rate="-")
        return self

    def advance(self, violation: bool, elapsed_s: float) -> None:
        self.done += 1
        self.violations += violation
        if self._progress is not None:
            rate = f"{self.done / elapsed_s:,.0f}" if elapsed_s > 0 else "-"
            self._progress.update(self._task, advance=1, violations=self.violations, rate=rate)
        elif not self.quiet and (self.done % PLAIN_PROGRESS_EVERY_STATES == 0):
            print(f"crashsweep: {self.done}/{self.total} states, {self.violations} violation(s)", file=sys.stderr)

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
        console.print(f"    explain: crashsweep explain {escape(out_dir)}/{escape(trace)}", soft_wrap=True)
    if len(classes) > CLASSES_SHOWN_MAX:
        console.print(f"… and {len(classes) - CLASSES_SHOWN_MAX} more class(es) in {out_dir}/summary.json")
    if summary.get("interrupted"):
        console.print(f"[yellow]interrupted[/yellow]: results so far are in {out_dir}/results.jsonl; "
                      "run the same command with --resume to continue")
