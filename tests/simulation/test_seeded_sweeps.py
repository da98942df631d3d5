"""Seeded sweeps of the correct example engine over every named scenario, both cache modes and
several seeds: zero violations, and the same seed gives the same results."""

import pytest

from crashsweep.crash_explorer import SweepOptions, execute, prepare, summarize
from crashsweep.disk_model import FaultPlan
from crashsweep.scenarios import SCENARIOS


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_correct_engine_is_clean_on_every_scenario(scenario, spec_factory, tmp_path):
    extra = {"ops": 30}
    if scenario == "large-values":   # values up to 16 KiB: room in the checkpoint, fewer states per point
        extra = dict(ops=12, sector_count=160, states_per_point_max=128,
                     options=(("checkpoint_every_syncs", "2"), ("checkpoint_sectors", "64"), ("log_sectors", "24")))
    spec = spec_factory(scenario=scenario, crash_depth=0, **extra)
    summary = summarize(execute(prepare(spec, SweepOptions(out_dir=str(tmp_path), jobs=2))))
    assert summary["violations"] == 0, summary["violations_by_kind"]
    assert summary["crash_points"] > 3


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("volatile_cache", [True, False])
def test_correct_engine_is_clean_across_seeds_and_cache_modes(seed, volatile_cache, spec_factory, tmp_path):
    spec = spec_factory(scenario="random", seed=seed, volatile_cache=volatile_cache, strategy="random", samples=16)
    summary = summarize(execute(prepare(spec, SweepOptions(out_dir=str(tmp_path), jobs=2))))
    assert summary["violations"] == 0


def test_same_seed_same_results(spec_factory, tmp_path):
    spec = spec_factory(scenario="random", seed=9, strategy="random", bug="no-log-checksum")
    runs = [execute(prepare(spec, SweepOptions(out_dir=str(tmp_path / str(i)), jobs=2))) for i in range(2)]
    keys = [{s: (r["outcome"], r["image"], r.get("matched")) for s, r in run.results.items()} for run in runs]
    assert keys[0] == keys[1]


def test_budget_stops_cleanly_and_says_so(spec_factory, tmp_path):
    spec = spec_factory()
    summary = summarize(execute(prepare(spec, SweepOptions(out_dir=str(tmp_path), jobs=2, budget_states=50))))
    assert summary["distinct_states"] == 50 and not summary["exhausted"]
    assert "explored of a space of" in summary["coverage"]


@pytest.mark.long
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_long_sweep_with_every_fault(scenario, tmp_path):
    from crashsweep.crash_explorer import SweepSpec
    from crashsweep.scenarios import generate
    room = {}
    if scenario == "large-values":   # 16 KiB values: a large checkpoint area, whose many writes we sample
        room = dict(options=(("checkpoint_sectors", "256"),), sector_count=2 + 2 * 256 + 32, strategy="random")
    spec = SweepSpec(ops=tuple(generate(scenario, 7, 80)), scenario=scenario, seed=7,
                     faults=FaultPlan.parse("all", variants_per_point=16), crash_depth=2, nested_states_max=4,
                     **room).validate()
    summary = summarize(execute(prepare(spec, SweepOptions(out_dir=str(tmp_path), jobs=2))))
    assert summary["violations"] == 0, summary["violations_by_kind"]
