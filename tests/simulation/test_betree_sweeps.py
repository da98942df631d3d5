"""Sweeps of the correct B^ε-tree store in tiny configurations (4 KiB nodes, fanout 4, a 4-node
cache, an 8-sector journal), where splits, flushes, merges, cache write-backs and checkpoints all
happen within short workloads: zero violations, exhaustively where the space allows."""

import pytest

from crashsweep.crash_explorer import SweepOptions, SweepSpec, execute, make_options, prepare, summarize
from crashsweep.disk_model import FaultPlan
from crashsweep.scenarios import generate

TINY = {"node_size_bytes": "4096", "fanout": "4", "cache_bytes": "16384", "journal_sectors": "8"}


def tiny_spec(scenario, ops, **fields):
    values = dict(ops=tuple(generate(scenario, fields.pop("seed", 0), ops)), engine="betree",
                  options=make_options(TINY), scenario=scenario, sector_size=4096, sector_count=160)
    values.update(fields)
    return SweepSpec(**values).validate()


def sweep(spec, out):
    run = execute(prepare(spec, SweepOptions(out_dir=str(out), jobs=2)))
    return summarize(run), run


@pytest.mark.parametrize("scenario, ops", [("ycsb-load", 120), ("delete-heavy", 120), ("sync-heavy", 60),
                                           ("random", 120), ("ycsb-a", 150)])
def test_tiny_store_is_clean_exhaustively(scenario, ops, tmp_path):
    summary, run = sweep(tiny_spec(scenario, ops, strategy="exhaustive"), tmp_path)
    assert summary["violations"] == 0, summary["violations_by_kind"]
    paths = summary["recovery_paths"]
    assert any(path.startswith("loaded checkpoint") for path in paths)      # checkpoints happened
    assert any(path.startswith("replayed") for path in paths)               # and journal replays


def test_tiny_store_really_splits_writes_back_and_checkpoints_in_these_workloads():
    from crashsweep.disk_model import MemoryBlockDevice
    from crashsweep.store import BetreeStore, StoreConfig
    device = MemoryBlockDevice(4096, 160)
    store = BetreeStore(device, StoreConfig(**{key: int(value) for key, value in TINY.items()}))
    for op in generate("ycsb-load", 0, 120):
        if op.kind == "put":
            store.put(op.key, op.value)
        elif op.kind == "sync":
            store.sync()
    assert store.tree.check_invariants() >= 4 and store.stats()["checkpoints"] >= 2
    assert store.pages.bytes_written > 0


@pytest.mark.parametrize("seed", [1, 2])
def test_tiny_store_survives_crashes_during_recovery_twice(seed, tmp_path):
    summary, _ = sweep(tiny_spec("random", 80, seed=seed, crash_depth=2, strategy="random", samples=8), tmp_path)
    assert summary["violations"] == 0 and summary["nested_states"] > 0


def test_tiny_store_without_a_volatile_cache_is_clean(tmp_path):
    summary, _ = sweep(tiny_spec("delete-heavy", 100, volatile_cache=False), tmp_path)
    assert summary["violations"] == 0


@pytest.mark.long
@pytest.mark.parametrize("scenario", ["default", "ycsb-a", "random", "delete-heavy"])
def test_long_betree_sweep_with_every_fault(scenario, tmp_path):
    if scenario == "default":
        spec_fields = dict(ops=tuple(generate("default", 3, 300)), engine="betree", scenario="default",
                           sector_size=4096, sector_count=256)
        spec = SweepSpec(**spec_fields, faults=FaultPlan.parse("all", variants_per_point=8), crash_depth=1,
                         states_per_point_max=512).validate()
    else:
        spec = tiny_spec(scenario, 400, faults=FaultPlan.parse("all", variants_per_point=8), crash_depth=1,
                         states_per_point_max=512)
    summary, _ = sweep(spec, tmp_path)
    assert summary["violations"] == 0, summary["violations_by_kind"]
    assert summary["refused"] > 0
