"""Reports (DESIGN §6): terminal progress and summary, summary.json, junit.xml. Result data only."""

from crashsweep.reports._html import prepare_report, render_html
from crashsweep.reports._files import write_json_atomically, write_junit, write_summary
from crashsweep.reports._terminal import SweepProgress, print_summary

__all__ = ["SweepProgress", "prepare_report", "print_summary", "render_html", "write_json_atomically", "write_junit", "write_summary"]
