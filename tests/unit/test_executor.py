"""Engines that raise, hang or kill their worker cost one state, not the sweep; results never depend on --jobs."""

import os
import signal
import time

import pytest

from crashsweep.crash_explorer import SweepOptions, execute, prepare, summarize
from crashsweep.engines import ADAPTERS, EngineAdapter
from crashsweep.engines.examples import WalConfig, WalStore


def _misbehaving(kind):
    def open_store(device, options, events):
        store = WalStore(device, WalConfig(checkpoint_sectors=16, log_sectors=16, checkpoint_every_syncs=2), events)
        if (store.sequence, len(store.map)) == (1, 5) and kind != "hard-hang":   # 16 states of 553
            if kind == "kill":
                os._exit(17)
            if kind == "hang":
                while True:
                    time.sleep(0.01)
            raise RuntimeError("engine exploded")
        if (store.sequence, len(store.map)) == (0, 19) and kind == "hard-hang":   # 1 state of 553
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})   # the soft time limit cannot fire
            time.sleep(3600)
        return store
    return open_store


@pytest.fixture
def misbehaving_engines():
    names = []
    for kind in ("kill", "hang", "raise", "hard-hang"):
        name = f"test-{kind}"
        ADAPTERS[name] = EngineAdapter(name, kind, _misbehaving(kind),
                                       sectors_needed=lambda options, size: 50)
        names.append(name)
    yield names
    for name in names:
        del ADAPTERS[name]


def _sweep(spec_factory, tmp_path, engine, jobs, **fields):
    spec = spec_factory(engine=engine, options=(), crash_depth=0, continuation=False, **fields)
    return execute(prepare(spec, SweepOptions(out_dir=str(tmp_path / f"{engine}-{jobs}"), jobs=jobs)))


def test_engine_killing_its_worker_costs_only_that_state(spec_factory, tmp_path, misbehaving_engines):
    run = _sweep(spec_factory, tmp_path, "test-kill", jobs=2)
    summary = summarize(run)
    killed = [r for r in run.results.values() if "its worker process" in r.get("detail", "")]
    assert len(killed) == 16 and all(r["kind"] == "recovery-error" for r in killed)
    assert summary["distinct_states"] == summary["distinct_states_planned"]   # every state still has a result
    assert summary["outcomes"].get("recovered", 0) > 0


def test_hanging_engine_is_reported_as_hang(spec_factory, tmp_path, misbehaving_engines):
    run = _sweep(spec_factory, tmp_path, "test-hang", jobs=2, state_timeout_s=0.2)
    hangs = [r for r in run.results.values() if r["kind"] == "hang"]
    assert hangs and summarize(run)["distinct_states"] == summarize(run)["distinct_states_planned"]


def test_engine_that_blocks_the_time_limit_is_killed_by_the_watchdog(spec_factory, tmp_path, misbehaving_engines):
    run = _sweep(spec_factory, tmp_path, "test-hard-hang", jobs=2, state_timeout_s=0.2)
    hangs = [r for r in run.results.values() if r["kind"] == "hang"]
    assert len(hangs) == 1 and "silent" in hangs[0]["detail"]
    assert len(run.results) == len(run.plan.states)


def test_engine_exception_is_a_recovery_error(spec_factory, tmp_path, misbehaving_engines):
    run = _sweep(spec_factory, tmp_path, "test-raise", jobs=1)
    errors = [r for r in run.results.values() if r["kind"] == "recovery-error"]
    assert errors and "engine exploded" in errors[0]["detail"]


def test_results_do_not_depend_on_jobs(spec_factory, tmp_path):
    spec = spec_factory(bug="checkpoint-in-place")
    outcomes = []
    for jobs in (1, 2):
        run = execute(prepare(spec, SweepOptions(out_dir=str(tmp_path / f"j{jobs}"), jobs=jobs)))
        outcomes.append({state: (r["outcome"], r.get("matched")) for state, r in run.results.items()})
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) > 10


def test_shards_partition_the_states(spec_factory, tmp_path):
    spec = spec_factory()
    whole = execute(prepare(spec, SweepOptions(out_dir=str(tmp_path / "whole"))))
    parts = [execute(prepare(spec, SweepOptions(out_dir=str(tmp_path / f"s{i}"), shard=(i, 3))))
             for i in range(3)]
    states = [set(part.results) for part in parts]
    assert set().union(*states) == set(whole.results)
    assert sum(len(s) for s in states) == len(whole.results)


def _run_unit_from_json(text):
    import json as json_module

    from crashsweep.crash_explorer import run_unit
    return [(r["state"], r["outcome"], r.get("matched")) for r in run_unit(json_module.loads(text))]


def test_a_work_unit_is_plain_json_and_runs_the_same_in_a_fresh_process(spec_factory, tmp_path):
    import json
    import multiprocessing

    from crashsweep.crash_explorer import make_units, run_unit
    spec = spec_factory(bug="log-epoch-unchecked")
    run = prepare(spec, SweepOptions(out_dir=str(tmp_path)))
    unit = make_units(spec.to_json(), run.plan.states)[3]
    text = json.dumps(unit)   # plain data: no pickled objects, nothing but JSON
    here = [(r["state"], r["outcome"], r.get("matched")) for r in run_unit(unit)]
    with multiprocessing.get_context("spawn").Pool(1) as pool:   # no inherited recording or state
        there = pool.apply(_run_unit_from_json, (text,))
    assert here == there and len(here) > 1


@pytest.mark.parametrize("options", [("synchronous=off",), ("journal_mode=wal",), ("journal_mode=truncate",)])
def test_skipping_hidden_deviations_plans_exactly_what_hashing_every_state_plans(monkeypatch, options):
    """Recognizing states that deviate from all-landed only where a later micro-op hides it (and hashing by what
    is left) is an optimization: the plan equals the one that hashes every state from its blocks."""
    pytest.importorskip("apsw")
    from crashsweep.crash_explorer import _plan
    from crashsweep.crash_explorer._recording import record
    from crashsweep.crash_explorer._spec import SweepSpec, make_options
    from crashsweep.disk_model.fs import _hash
    from crashsweep.scenarios import generate
    spec = SweepSpec(ops=tuple(generate("random", seed=5, ops_count=14)), engine="sqlite",
                     options=make_options(dict(option.split("=") for option in options))).validate()
    recording = record(spec)
    skipping = _plan.plan_states(recording)
    monkeypatch.setattr(_hash, "SKIP_HIDDEN", False)
    hashing = _plan.plan_states(recording)
    assert len(skipping.states) > 100
    assert [state.as_data() for state in skipping.states] == [state.as_data() for state in hashing.states]
    assert skipping.per_point == hashing.per_point


def test_planning_slices_cover_every_point_once_and_balance_uneven_points():
    """Weighted slices tile the points in order, and no slice weighs much more than its share (a workload that
    never syncs: its last points cost ~100x its first)."""
    from crashsweep.crash_explorer._plan import SLICES_PER_JOB, slice_bounds
    for count, jobs in ((1, 2), (7, 2), (374, 2), (374, 8), (1000, 3)):
        weights = [(index + 1) ** 2 for index in range(count)]
        bounds = slice_bounds(count, jobs, weights)
        assert [start for start, _ in bounds] == [0] + [stop for _, stop in bounds[:-1]]
        assert bounds[-1][1] == count and all(start < stop for start, stop in bounds)
        share = sum(weights) / (jobs * SLICES_PER_JOB)
        assert all(sum(weights[start:stop]) <= share + max(weights[start:stop]) for start, stop in bounds)
        assert len(bounds) <= jobs * SLICES_PER_JOB + 1


@pytest.mark.parametrize("engine,faults,ops", [("betree", "crash,torn,lost,corrupt,misdirect", 120),
                                               ("sqlite", "crash,torn,lost", 24)])
def test_planning_in_several_processes_gives_the_same_plan(monkeypatch, engine, faults, ops):
    """Slices of points enumerated and hashed in forked processes fold into exactly the plan one process
    makes: same states, ids, choices, windows, images, point counts and per-point figures."""
    pytest.importorskip("apsw")
    from crashsweep.crash_explorer import _plan
    from crashsweep.crash_explorer._recording import record
    from crashsweep.crash_explorer._spec import SweepSpec
    from crashsweep.disk_model import FaultPlan
    from crashsweep.scenarios import generate
    spec = SweepSpec(ops=tuple(generate("random", seed=3, ops_count=ops)), engine=engine,
                     faults=FaultPlan.parse(faults)).validate()
    recording = record(spec)
    monkeypatch.setattr(_plan, "PARALLEL_POINTS_MIN", 8)
    alone = _plan.plan_states(recording)
    forked = _plan.plan_states(recording, jobs=2)
    assert len(alone.states) > 100 and alone.crash_points > 8
    assert [state.as_data() for state in forked.states] == [state.as_data() for state in alone.states]
    assert forked.per_point == alone.per_point
    assert (forked.states_enumerated, forked.space_total, forked.exhausted, forked.distinct_total) == \
        (alone.states_enumerated, alone.space_total, alone.exhausted, alone.distinct_total)


def test_a_worker_leaves_what_its_fork_brought_out_of_its_collections(spec_factory, tmp_path):
    """A worker forked from the sweep freezes the objects it inherits (`gc.freeze`): its cyclic collections
    never traverse the sweep's own objects (which would copy every page they sit on, and took tens of
    milliseconds at a worker's first states). The engine, running in the worker, prints what is frozen."""
    import gc
    import json

    def open_store(device, options, events):
        os.write(1, f"frozen {gc.get_freeze_count()}\n".encode())     # fd 1: pytest holds sys.stdout
        return WalStore(device, WalConfig(checkpoint_sectors=16, log_sectors=16, checkpoint_every_syncs=2), events)

    ADAPTERS["test-frozen"] = EngineAdapter("test-frozen", "prints", open_store, sectors_needed=lambda o, s: 50)
    try:
        frozen_here = gc.get_freeze_count()      # what this process froze itself (large sweeps before this test)
        run = _sweep(spec_factory, tmp_path, "test-frozen", jobs=1)
    finally:
        del ADAPTERS["test-frozen"]
    outputs = [json.loads(line).get("output", "") for line in
               open(os.path.join(run.options.out_dir, "results.jsonl")).read().splitlines()[1:]]
    counts = [int(text.split()[1]) for text in outputs if text.startswith("frozen")]
    assert counts and min(counts) > frozen_here + 1_000, (frozen_here, outputs[:3])
