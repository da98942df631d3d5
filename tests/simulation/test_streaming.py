"""Checking while planning goes on (`_plan.Planner`, `_sweep._StreamFeed`) gives every state the result the
planned sweep gives: the same state ids, choices, windows, verdicts and classes.

The hard case is a state sent out before a later crash point leaves the same image: it must be judged by
that point's windows too. `SETTLE_EPOCHS = -1` with one-state units sends every state the moment it is
planned (as early as it can go), so many gain windows after they were checked; they are checked again.
"""

from __future__ import annotations

import pytest

import json
import os

from crashsweep import cli
from crashsweep.crash_explorer import SweepOptions, SweepSpec, execute, plan_states, prepare, read_results, record
from crashsweep.crash_explorer import _plan, _sweep
from crashsweep.crash_explorer._executor import InlineExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FS_ENGINES = os.path.join(ROOT, "tests", "engines", "fs_engines.py")

TIMINGS = ("engine_s", "total_s", "memo")


def same(result: dict) -> dict:
    return {key: value for key, value in result.items() if key not in TIMINGS}


def sweep(spec: SweepSpec, out, stream: bool, executor=None, jobs: int = 2):
    options = SweepOptions(out_dir=str(out), jobs=jobs, stream=stream)
    run = prepare(spec, options, executor=executor)
    assert (run.planned is None) == stream, "a streamed run is planned while it checks"
    return execute(run, executor=executor)


def assert_same_results(planned, streamed) -> None:
    assert set(planned.results) == set(streamed.results)
    differing = [state for state in planned.results
                 if same(planned.results[state]) != same(streamed.results[state])]
    assert not differing, (len(differing), same(planned.results[differing[0]]), same(streamed.results[differing[0]]))
    assert [state.as_data() for state in planned.plan.states] == [state.as_data() for state in streamed.plan.states]


def fs_spec(engine: str, *argv: str) -> SweepSpec:
    """The default sweep of a file engine of the tests, at crash depth 0 unless `argv` says otherwise."""
    return cli.spec_from_args(cli.parse_with_settings(["sweep", "--engine", f"{FS_ENGINES}:{engine}", "--seed", "3",
                                                       "--crash-depth", "0", *argv]))


@pytest.fixture(autouse=True)
def small_plans_stream(monkeypatch):
    """The tests' engines plan in milliseconds (sweeps stream only plans that take longer): stream them too."""
    monkeypatch.setattr(_sweep, "STREAM_WEIGHT_MIN", 0)


@pytest.fixture()
def eager(monkeypatch):
    """Every state goes out the moment it is planned, in a unit of its own."""
    monkeypatch.setattr(_plan, "SETTLE_EPOCHS", -1)
    monkeypatch.setattr(_sweep, "STREAM_UNIT_STATES_MIN", 1)


@pytest.mark.parametrize("engine", ["FlushOnlyLog", "RenameWithoutFsync", "AtomicReplace", "StaleAfterRecovery"])
def test_states_sent_before_their_windows_settle_get_the_planned_result(tmp_path, eager, engine):
    spec = fs_spec(engine, "--ops", "10") if engine == "FlushOnlyLog" else fs_spec(engine)
    planned = sweep(spec, tmp_path / "planned", stream=False)
    streamed = sweep(spec, tmp_path / "streamed", stream=True, executor=InlineExecutor())
    assert streamed.streamed["checked_while_planning"] > 0
    assert_same_results(planned, streamed)
    assert streamed.completed and streamed.plan.states


def test_a_state_that_gains_a_failing_window_after_it_passed_is_checked_again(tmp_path, eager, monkeypatch):
    """The flush-only log passes the image "nothing landed" at the first crash point and fails it after a sync
    (the same image, a window that needs the synced data): checked again, it is a violation, as planned."""
    spec = fs_spec("FlushOnlyLog", "--ops", "10")
    planned = sweep(spec, tmp_path / "planned", stream=False)
    streamed = sweep(spec, tmp_path / "streamed", stream=True, executor=InlineExecutor())
    assert streamed.streamed["checked_again"] > 0
    widened_violations = [result for result in planned.results.values()
                          if result.get("kind") and len(result["windows"]) > 1]
    assert widened_violations, "the workload has states that only a later point's window fails"
    assert_same_results(planned, streamed)
    # Without the second check, the first (passing) result would stand: the comparison above would fail.
    monkeypatch.setattr(_sweep._StreamFeed, "on_result", _accepting_early_results(_sweep._StreamFeed.on_result))
    careless = sweep(spec, tmp_path / "careless", stream=True, executor=InlineExecutor())
    assert any(same(planned.results[state]) != same(careless.results[state]) for state in planned.results)


def _accepting_early_results(on_result):
    def accept_as_sent(self, result):
        number = (result.result if isinstance(result, _sweep._Prepared) else result)["state"]
        if number >= _sweep.STREAM_ID_BASE and self.run.planned is not None:
            state, _ = self.sent[number]
            self.sent[number] = (state, len(state.windows))
        return on_result(self, result)
    return accept_as_sent


def test_worker_processes_stream_the_same_results_as_a_planned_sweep(tmp_path, eager, monkeypatch):
    """Worker processes check while two planning processes plan slices of the points (the pool's path)."""
    monkeypatch.setattr(_plan, "PARALLEL_POINTS_MIN", 1)
    spec = fs_spec("RenameWithoutFsync")
    planned = sweep(spec, tmp_path / "planned", stream=False)
    streamed = sweep(spec, tmp_path / "streamed", stream=True)
    assert streamed.streamed["checked_while_planning"] > 0
    assert_same_results(planned, streamed)


@pytest.mark.parametrize("jobs", [1, 2])
def test_planner_settles_every_state_once_in_point_order(eager, monkeypatch, jobs):
    monkeypatch.setattr(_plan, "PARALLEL_POINTS_MIN", 1)     # jobs 2: slices planned in two processes
    recording = record(fs_spec("AtomicReplace"))
    planner = _plan.Planner(recording, jobs=jobs, slices_per_job=8)
    settled = []
    try:
        while not planner.done:
            settled += planner.step(0.01)
        plan = planner.finish()
    finally:
        planner.close()
    assert sorted(id(state) for state in settled) == sorted(id(state) for state in plan.states)
    assert [state.point for state in settled] == sorted(state.point for state in settled)
    assert [state.as_data() for state in plan.states] == [state.as_data() for state in plan_states(recording).states]


def test_planner_holds_states_until_their_point_is_syncs_behind():
    recording = record(fs_spec("AtomicReplace"))
    epochs = {point.index: rank for rank, count in enumerate(sorted({p.durable_count for p in recording.walk.points}))
              for point in recording.walk.points if point.durable_count == count}
    planner = _plan.Planner(recording)
    try:
        while not planner.done:
            settled = planner.step()
            if planner.done:
                break
            current = epochs[planner.merger.per_point[-1]["point"]]
            assert all(current - epochs[state.point] > _plan.SETTLE_EPOCHS for state in settled)
        planner.finish()
    finally:
        planner.close()


@pytest.mark.parametrize("options", [dict(budget_states=20), dict(shard=(1, 2)), dict(stream=False)])
def test_sweeps_that_need_the_whole_plan_first_are_planned_first(tmp_path, options):
    spec = fs_spec("AtomicReplace")
    run = prepare(spec, SweepOptions(out_dir=str(tmp_path), **options))
    assert run.planned is not None and run.planner is None


def test_a_plan_made_in_milliseconds_is_made_first(tmp_path, monkeypatch):
    monkeypatch.undo()
    recording = record(fs_spec("AtomicReplace"))
    assert sum(_plan.point_weights(recording)) < _sweep.STREAM_WEIGHT_MIN
    assert prepare(fs_spec("AtomicReplace"), SweepOptions(out_dir=str(tmp_path))).planned is not None


def test_dask_executor_plans_first(tmp_path):
    class PlansSlices:
        takes_feed = False
        threads = 1

        def plan_slices(self, recording, bounds, deadline):
            for bounds_ in bounds:
                yield _plan.enumerate_slice(recording, bounds_, deadline)
    run = prepare(fs_spec("AtomicReplace"), SweepOptions(out_dir=str(tmp_path)),
                  executor=PlansSlices())
    assert run.planned is not None


def test_a_budget_that_ends_while_planning_keeps_what_was_checked(tmp_path, eager):
    spec = fs_spec("FlushOnlyLog", "--ops", "10")
    options = SweepOptions(out_dir=str(tmp_path), check_deadline=0.0)     # over before it starts
    run = execute(prepare(spec, options, executor=InlineExecutor()), executor=InlineExecutor())
    assert run.plan is not None and not run.completed
    assert len(run.results) < len(run.plan.states)
    header, results, _ = read_results(str(tmp_path / "results.jsonl"))
    assert {result["state"] for result in results} == set(run.results)
    assert all(0 <= state < len(run.plan.states) for state in run.results)


def test_a_streamed_run_asked_for_its_plan_plans_first_and_checks_the_same(tmp_path):
    spec = fs_spec("RenameWithoutFsync")
    run = prepare(spec, SweepOptions(out_dir=str(tmp_path / "asked")))
    assert run.planned is None
    states = len(run.plan.states)             # as code written before streaming reads it
    asked = execute(run)
    assert asked.streamed == {} and len(asked.results) == states
    assert_same_results(sweep(spec, tmp_path / "planned", stream=False), asked)


def test_results_encode_no_provisional_ids(tmp_path, eager):
    streamed = sweep(fs_spec("StaleAfterRecovery", "--crash-depth", "1"), tmp_path, stream=True, executor=InlineExecutor())
    assert streamed.streamed["checked_while_planning"] > 0
    assert all(0 <= state < len(streamed.plan.states) for state in streamed.results)
    _, results, _ = read_results(str(tmp_path / "results.jsonl"))
    assert sorted(result["state"] for result in results) == list(range(len(streamed.plan.states)))


def test_the_command_line_streams_unless_told_not_to(tmp_path):
    from crashsweep.api import sweep as api_sweep
    engine = f"{FS_ENGINES}:RenameWithoutFsync"
    streamed = api_sweep(engine, out=str(tmp_path / "streamed"), crash_depth=0, minimize=0, no_corpus=True)
    planned = api_sweep(engine, out=str(tmp_path / "planned"), crash_depth=0, minimize=0, no_corpus=True,
                        no_stream=True)
    assert "checked_while_planning" in streamed.summary["streamed"] and "streamed" not in planned.summary
    _, first, _ = read_results(str(tmp_path / "streamed" / "results.jsonl"))
    _, second, _ = read_results(str(tmp_path / "planned" / "results.jsonl"))
    def lines(results):         # (a line's keys may come in another order: a state checked while planning
        return sorted(json.dumps(same(result), sort_keys=True) for result in results)     # has its line made then)
    assert lines(first) == lines(second)


def _order_of_results(monkeypatch, interrupt_at_first_planned: bool = False) -> list[str]:
    """Which results `_StreamFeed.on_result` takes, in order: "waited" (checked while planning, taken once the
    plan is whole) or "planned" (of a unit made from the whole plan)."""
    order: list[str] = []
    original = _sweep._StreamFeed.on_result

    def on_result(self, result):
        if self.run.planned is not None:
            number = (result.result if isinstance(result, _sweep._Prepared) else result)["state"]
            order.append("waited" if number >= _sweep.STREAM_ID_BASE else "planned")
            if interrupt_at_first_planned and order[-1] == "planned" and order.count("planned") == 1:
                raise KeyboardInterrupt
        return original(self, result)
    monkeypatch.setattr(_sweep._StreamFeed, "on_result", on_result)
    return order


def test_once_the_plan_is_whole_its_units_go_out_before_the_results_that_waited(tmp_path, monkeypatch):
    """Taking ~100,000 results that waited for the plan costs about a second: the plan's own units go to the
    workers first, and the waiting results are taken a step at a time between them."""
    monkeypatch.setattr(_sweep, "STREAM_UNIT_STATES_MIN", 4)
    monkeypatch.setattr(_sweep, "STREAM_BACKLOG_STEP", 3)
    order = _order_of_results(monkeypatch)
    spec = fs_spec("AtomicReplace", "--ops", "12")
    streamed = sweep(spec, tmp_path / "streamed", stream=True, executor=InlineExecutor())
    assert "waited" in order and "planned" in order
    assert order.index("planned") < len(order) - 1 - order[::-1].index("waited")
    assert_same_results(sweep(spec, tmp_path / "planned", stream=False), streamed)
    # The lines of results that waited were made while planning (`_ResultSink.prepare`): the file says the same.
    written = {}
    for name in ("planned", "streamed"):
        _, results, _ = read_results(str(tmp_path / name / "results.jsonl"))
        written[name] = {result["state"]: json.dumps(same(result), sort_keys=True) for result in results}
    assert written["planned"] == written["streamed"]


def test_an_interrupt_once_the_plan_is_whole_keeps_the_results_that_waited(tmp_path, monkeypatch):
    monkeypatch.setattr(_sweep, "STREAM_UNIT_STATES_MIN", 4)
    order = _order_of_results(monkeypatch, interrupt_at_first_planned=True)
    spec = fs_spec("AtomicReplace", "--ops", "12")
    run = prepare(spec, SweepOptions(out_dir=str(tmp_path), stream=True), executor=InlineExecutor())
    run = execute(run, executor=InlineExecutor())
    assert run.interrupted and order.count("planned") == 1
    waited = order.count("waited")
    _, results, _ = read_results(str(tmp_path / "results.jsonl"))
    assert waited == run.streamed["checked_while_planning"] - run.streamed["checked_again"] > 0
    assert len(results) == len(run.results) >= waited
