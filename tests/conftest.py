"""Shared fixtures: small sweep specs that run in well under a second."""

from __future__ import annotations

import pytest

from crashsweep.crash_explorer import SweepSpec, make_options
from crashsweep.scenarios import generate

pytest_plugins = ("pytester",)

SMALL_DEVICE = dict(sector_size=4096, sector_count=64)


def small_spec(bug: str | None = None, scenario: str = "default", ops: int = 40, **fields) -> SweepSpec:
    options = {"checkpoint_sectors": "16", "log_sectors": "16", "checkpoint_every_syncs": "2"}
    if bug:
        options["bug"] = bug
    values = dict(ops=tuple(generate(scenario, 0, ops)), options=make_options(options), scenario=scenario,
                  **SMALL_DEVICE)
    values.update(fields)
    return SweepSpec(**values).validate()


@pytest.fixture(autouse=True)
def separate_corpus(tmp_path_factory, monkeypatch):
    """Each test's sweeps keep their regression corpus apart (never in the checkout's .crashsweep/)."""
    monkeypatch.setenv("CRASHSWEEP_CORPUS", str(tmp_path_factory.mktemp("corpus")))


@pytest.fixture
def spec_factory():
    return small_spec


# Tests send SIGINT to sweeps they start. A shell that starts pytest as a background job hands it SIGINT
# ignored, and an ignored signal stays ignored across exec: give children the default (Python's handler in
# this process makes exec'd children start with SIGINT at its default action).
import signal as _signal  # noqa: E402

if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
