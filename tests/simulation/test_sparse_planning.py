"""Planning draws the states of bounded points (sampled or listed whole) as (base, deviations) and makes a
choice only for an image it has not seen (`_plan._enumerate`, `_strategies.sparse_point_states`): the plan is the one
made from whole choices — every state, its choice, windows and image, and every point's counts."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from crashsweep import cli
from crashsweep.crash_explorer import _plan, _strategies
from crashsweep.crash_explorer._recording import record

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FS_ENGINES = os.path.join(ROOT, "tests", "engines", "fs_engines.py")


def plan_shape(plan) -> tuple:
    return ([state.as_data() for state in plan.states], plan.per_point, plan.states_enumerated, plan.distinct_total,
            plan.space_total, plan.exhausted)


@pytest.mark.parametrize("argv, states_max", [
    (["--engine", "sqlite", "--option", "synchronous=off", "--ops", "8"], None),    # hundreds of pages never synced
    (["--engine", f"{FS_ENGINES}:FlushOnlyLog", "--ops", "24", "--seed", "5"], 60),
    (["--engine", f"{FS_ENGINES}:ChecksummedLog", "--ops", "16", "--seed", "2"], 5),  # few writes: bases may meet
    (["--engine", "sqlite", "--option", "journal_mode=delete", "--ops", "24"], None),   # points listed whole
    (["--engine", "sqlite", "--option", "journal_mode=wal", "--ops", "12", "--faults", "crash,torn,lost"], None),
], ids=["sqlite-synchronous-off", "flush-only-log", "checksummed-log-few-states", "sqlite-delete-listed-whole",
        "sqlite-wal-torn"])
def test_a_plan_drawn_sparse_is_the_plan_of_whole_choices(argv, states_max, monkeypatch):
    spec = cli.spec_from_args(cli.parse_with_settings(["sweep", *argv]))
    if states_max is not None:
        spec = replace(spec, states_per_point_max=states_max)
    recording = record(spec)
    drawn = []
    sparse_point_states = _strategies.sparse_point_states

    def counted(*args, **kwargs):
        result = sparse_point_states(*args, **kwargs)
        drawn.append(result is not None)
        return result
    monkeypatch.setattr(_plan, "sparse_point_states", counted)
    sparse = _plan.plan_states(recording)
    assert sum(drawn) > 0, "no point was drawn sparse: the comparison would show nothing"
    monkeypatch.setattr(_plan, "SPARSE_POINTS", False)
    assert plan_shape(_plan.plan_states(recording)) == plan_shape(sparse)


def test_a_persistence_model_that_rewrites_choices_plans_from_whole_ones(monkeypatch):
    recording = record(cli.spec_from_args(cli.parse_with_settings(
        ["sweep", "--engine", "sqlite", "--option", "synchronous=off", "--ops", "4", "--fs-model", "ext4-ordered"])))
    monkeypatch.setattr(_plan, "sparse_point_states", lambda *args: pytest.fail("drawn sparse under ext4-ordered"))
    assert _plan.plan_states(recording).states


def test_points_whose_pending_writes_do_not_extend_the_last_ones_plan_as_whole_choices(monkeypatch):
    """States of one chain of points are named by index (`_plan._chain_name`); a point whose pending writes are
    not a prefix of the next one's starts another chain. Here every other point leaves out one of its pending
    writes (as if it had landed): the plan drawn sparse is still the plan of whole choices."""
    recording = record(cli.spec_from_args(cli.parse_with_settings(
        ["sweep", "--engine", "sqlite", "--option", "journal_mode=delete", "--ops", "12"])))
    walk = recording.walk
    points = [replace(point, pending=point.pending[:1] + point.pending[2:])
              if point.index % 2 and len(point.pending) > 6 else point for point in walk.points]
    assert points != walk.points
    recording = replace(recording, walk=replace(walk, points=points))
    sparse = _plan.plan_states(recording)
    monkeypatch.setattr(_plan, "SPARSE_POINTS", False)
    assert plan_shape(_plan.plan_states(recording)) == plan_shape(sparse)
