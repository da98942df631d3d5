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
