"""Every seeded bug of the built-in B^ε-tree store is found by a sweep, replays and minimizes;
the correct store shows zero violations under every strategy and fault kind."""

import pytest

from crashsweep.crash_explorer import (
    SweepOptions, SweepSpec, execute, load_trace, make_options, minimize_trace, prepare, replay_trace, summarize,
)
from crashsweep.disk_model import FaultPlan
from crashsweep.engines import resolve_engine
from crashsweep.scenarios import generate
from crashsweep.store import BUGS

# The faults a sweep needs to find each bug: crashes alone, except for a checksum bug, which
# only damage can show.
FAULTS_NEEDED = {bug: "crash,torn,lost" for bug in BUGS}
FAULTS_NEEDED["journal-no-checksum"] = "crash,torn,lost,corrupt"


def betree_spec(bug=None, scenario="default", ops=None, faults="crash,torn,lost", variants=4, **fields):
    options = {"bug": bug} if bug else {}
    adapter = resolve_engine("betree")
    sectors = adapter.sectors_needed(adapter.parse_options(options), 4096)
    values = dict(ops=tuple(generate(scenario, 0, ops)), engine="betree", options=make_options(options),
                  scenario=scenario, sector_size=4096, sector_count=max(256, sectors),
                  faults=FaultPlan.parse(faults, variants_per_point=variants))
    values.update(fields)
    return SweepSpec(**values).validate()


def sweep(spec, out):
    return summarize(execute(prepare(spec, SweepOptions(out_dir=str(out), jobs=2))))


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_seeded_bug_is_found_replays_and_minimizes(bug, tmp_path):
    spec = betree_spec(bug=bug, faults=FAULTS_NEEDED[bug], variants=16)
    summary = sweep(spec, tmp_path)
    assert summary["violations"] > 0, f"{bug} not found"
    loaded_spec, trace = load_trace(str(tmp_path / summary["traces"][0]))
    result, _ = replay_trace(loaded_spec, trace)
    assert result["kind"] == trace["violation"]["kind"]
    small_spec, small = minimize_trace(loaded_spec, trace, budget_seconds=8, states_per_candidate=1500)
    assert small["minimized"]["ops_after"] <= small["minimized"]["ops_before"]
    again, _ = replay_trace(small_spec, small)
    assert again["kind"] == trace["violation"]["kind"]


@pytest.mark.parametrize("strategy", ["exhaustive", "bounded", "prefix", "random"])
def test_correct_store_has_no_violation_under_any_strategy(strategy, tmp_path):
    summary = sweep(betree_spec(strategy=strategy, states_per_point_max=512), tmp_path)
    assert summary["violations"] == 0 and summary["distinct_states"] > 40


@pytest.mark.parametrize("faults", ["corrupt", "misdirect", "latent", "read-error"])
def test_correct_store_refuses_damage_but_never_returns_wrong_data(faults, tmp_path):
    summary = sweep(betree_spec(faults=f"crash,torn,lost,{faults}", variants=12), tmp_path)
    assert summary["violations"] == 0
    assert summary["refused"] > 0           # damage was injected where the store reads, and detected
