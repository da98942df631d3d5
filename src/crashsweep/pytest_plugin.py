"""pytest plugin: sweep an engine inside a test.

Installed with crashsweep (entry point `pytest11`), so nothing needs enabling:

    def test_my_store_is_crash_safe(crashsweep):
        crashsweep.check("my_store.py:MyStore", scenario="default")

`check` runs a sweep and fails the test with a readable message that names the
trace files and the exact replay command; `sweep` returns the outcome
(`crashsweep.api.SweepOutcome`) without failing. Keywords are the flags of
`crashsweep sweep` (`crash_depth=2`, `faults="crash,torn,lost,misdirect"`, ...).

How thorough a sweep is comes from a mode, the command line's profiles (`--profile`):
- `quick`: bounded k = 1 — seconds, and still finds every seeded bug;
- `default`: the command line's defaults (bounded k = 2, crash depth 1);
- `exhaustive`: bounded k = 3, crash depth 2, for nightly runs.
Settings in pyproject.toml's `[tool.crashsweep]` apply as they do on the command line.
Choose it per test with a marker (`@pytest.mark.crashsweep_quick`,
`@pytest.mark.crashsweep_exhaustive`), or for a whole run with
`--crashsweep-mode quick|default|exhaustive` (which wins over markers), and select
tests with `-m crashsweep_exhaustive` as usual. `@pytest.mark.crashsweep(**settings)`
adds settings to every sweep of a test. `--crashsweep-executor dask` and
`--crashsweep-scheduler ADDRESS` run every sweep on a Dask cluster (or per sweep:
`crashsweep.check(..., executor="dask", scheduler=ADDRESS)`). Reports go under the test's tmp_path, or
under `--crashsweep-out DIR/<test name>/`.
"""

from __future__ import annotations

import os
import re

import pytest

from crashsweep.api import SweepOutcome, SweepUsageError, sweep

MODES = {"quick": {"profile": "quick"}, "default": {}, "exhaustive": {"profile": "exhaustive"}}   # `_settings`
MODE_MARKERS = {"crashsweep_quick": "quick", "crashsweep_exhaustive": "exhaustive"}


def pytest_addoption(parser):
    group = parser.getgroup("crashsweep", "crash-consistency sweeps")
    group.addoption("--crashsweep-mode", choices=sorted(MODES), default=None,
                    help="thoroughness of every crashsweep sweep (wins over markers)")
    group.addoption("--crashsweep-out", default=None, metavar="DIR",
                    help="keep sweep reports under DIR/<test name>/ instead of the test's tmp_path")
    group.addoption("--crashsweep-jobs", type=int, default=1, metavar="N",
                    help="worker processes per sweep (default 1)")
    group.addoption("--crashsweep-executor", choices=("local", "dask"), default=None,
                    help="where sweeps run their states: here, or on a Dask cluster (see --crashsweep-scheduler)")
    group.addoption("--crashsweep-scheduler", default=None, metavar="ADDRESS",
                    help="the Dask scheduler of the cluster sweeps run on (implies --crashsweep-executor dask)")


def pytest_configure(config):
    config.addinivalue_line("markers", "crashsweep_quick: sweeps in this test use the quick mode")
    config.addinivalue_line("markers", "crashsweep_exhaustive: sweeps in this test use the exhaustive mode")
    config.addinivalue_line("markers", "crashsweep(**settings): settings for every sweep of this test")


class CrashSweeper:
    """The `crashsweep` fixture."""

    def __init__(self, mode: str, base_settings: dict, out_root: str, jobs: int, executor: dict | None = None):
        self.executor = executor or {}
        self.mode = mode
        self.base_settings = base_settings
        self.out_root = out_root
        self.jobs = jobs
        self.outcomes: list[SweepOutcome] = []

    def sweep(self, engine: str, **settings) -> SweepOutcome:
        """Run one sweep; return its outcome (violations do not fail the test)."""
        merged = {"jobs": self.jobs, **self.executor, **MODES[self.mode], **self.base_settings, **settings}
        out = settings.pop("out", None) or os.path.join(self.out_root, f"sweep-{len(self.outcomes) + 1}")
        merged.pop("out", None)
        try:
            outcome = sweep(engine, out=out, **merged)
        except SweepUsageError as error:
            problem = str(error)
        else:
            self.outcomes.append(outcome)
            return outcome
        pytest.fail(f"crashsweep: bad sweep settings: {problem}", pytrace=False)

    def check(self, engine: str, **settings) -> SweepOutcome:
        """Run one sweep; fail the test, naming traces and replay commands, if it found a violation."""
        outcome = self.sweep(engine, **settings)
        if outcome.interrupted:
            pytest.fail("crashsweep: the sweep was interrupted", pytrace=False)
        if outcome.violations:
            pytest.fail(outcome.failure_message(), pytrace=False)
        return outcome


@pytest.fixture
def crashsweep(request, tmp_path) -> CrashSweeper:
    config = request.config
    mode = "default"
    for marker_name, marker_mode in MODE_MARKERS.items():
        if request.node.get_closest_marker(marker_name) is not None:
            mode = marker_mode
    mode = config.getoption("--crashsweep-mode") or mode
    settings: dict = {}
    for marker in reversed(list(request.node.iter_markers("crashsweep"))):
        settings.update(marker.kwargs)
    root = config.getoption("--crashsweep-out")
    if root:
        out_root = os.path.join(root, re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid))
    else:
        out_root = str(tmp_path / "crashsweep")
    executor = {}
    if config.getoption("--crashsweep-executor") or config.getoption("--crashsweep-scheduler"):
        executor["executor"] = config.getoption("--crashsweep-executor") or "dask"
        executor["scheduler"] = config.getoption("--crashsweep-scheduler")
    return CrashSweeper(mode, settings, out_root, config.getoption("--crashsweep-jobs"), executor)
