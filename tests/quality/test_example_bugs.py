"""The harness finds every seeded bug of the example engine with the default sweep settings,
each trace replays, and minimization shrinks it; the correct engine shows zero violations."""

import pytest

from crashsweep.crash_explorer import SweepOptions, execute, load_trace, minimize_trace, prepare, replay_trace, summarize
from crashsweep.engines.examples import WAL_BUGS


@pytest.mark.parametrize("bug", sorted(WAL_BUGS))
def test_seeded_bug_is_found_replays_and_minimizes(bug, spec_factory, tmp_path):
    spec = spec_factory(bug=bug)
    run = execute(prepare(spec, SweepOptions(out_dir=str(tmp_path), jobs=2)))
    summary = summarize(run)
    assert summary["violations"] > 0, f"{bug} not found"
    trace_path = str(tmp_path / summary["traces"][0])
    loaded_spec, trace = load_trace(trace_path)
    result, _ = replay_trace(loaded_spec, trace)
    assert result["kind"] == trace["violation"]["kind"]
    small_spec, small = minimize_trace(loaded_spec, trace, budget_seconds=60, states_per_candidate=1500)
    assert small["minimized"]["ops_after"] < small["minimized"]["ops_before"]
    again, _ = replay_trace(small_spec, small)
    assert again["kind"] == trace["violation"]["kind"]


@pytest.mark.parametrize("strategy", ["exhaustive", "bounded", "prefix", "random"])
def test_correct_engine_has_no_violation_under_any_strategy(strategy, spec_factory, tmp_path):
    spec = spec_factory(strategy=strategy, states_per_point_max=512)
    summary = summarize(execute(prepare(spec, SweepOptions(out_dir=str(tmp_path), jobs=2))))
    assert summary["violations"] == 0 and summary["distinct_states"] > 50


def test_correct_engine_refuses_corruption_but_never_lies(spec_factory, tmp_path):
    from crashsweep.disk_model import FaultPlan
    spec = spec_factory(faults=FaultPlan.parse("all", variants_per_point=8), crash_depth=0)
    summary = summarize(execute(prepare(spec, SweepOptions(out_dir=str(tmp_path), jobs=2))))
    assert summary["violations"] == 0
    assert summary["refused"] > 0   # damage was injected and detected


def test_no_volatile_cache_mode_is_clean_and_finds_missing_barrier(spec_factory, tmp_path):
    clean = summarize(execute(prepare(spec_factory(volatile_cache=False),
                                      SweepOptions(out_dir=str(tmp_path / "a"), jobs=2))))
    assert clean["violations"] == 0


def test_bug_in_recovery_writes_is_found_only_by_crashing_during_recovery(spec_factory, tmp_path):
    from crashsweep.crash_explorer import make_options
    options = make_options({"checkpoint_sectors": "16", "log_sectors": "16", "checkpoint_every_syncs": "2",
                            "bug": "open-checkpoint-no-barrier"})
    shallow = summarize(execute(prepare(spec_factory(options=options, crash_depth=0),
                                        SweepOptions(out_dir=str(tmp_path / "d0"), jobs=2))))
    deep_run = execute(prepare(spec_factory(options=options, crash_depth=1),
                               SweepOptions(out_dir=str(tmp_path / "d1"), jobs=2)))
    assert shallow["violations"] == 0
    violations = [r for r in deep_run.results.values() if r.get("kind")]
    assert violations and all(r.get("nested") for r in violations)
    # the second crash fell inside the recovering engine's own writes (op -1: while opening)
    spec, trace = load_trace(str(tmp_path / "d1" / summarize(deep_run)["traces"][0]))
    result, _ = replay_trace(spec, trace)
    assert result["kind"] == trace["violation"]["kind"] and result["nested"] == trace["nested"]


def test_correct_engine_that_writes_during_recovery_survives_crashes_there(spec_factory, tmp_path):
    from crashsweep.crash_explorer import make_options
    options = make_options({"checkpoint_sectors": "16", "log_sectors": "16", "checkpoint_every_syncs": "2",
                            "checkpoint_on_open": "true"})
    summary = summarize(execute(prepare(spec_factory(options=options, crash_depth=2, nested_states_max=4),
                                        SweepOptions(out_dir=str(tmp_path), jobs=2))))
    assert summary["violations"] == 0 and summary["nested_states"] > summary["distinct_states"]
