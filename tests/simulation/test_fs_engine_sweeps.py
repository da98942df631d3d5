"""Sweeps of file engines on the file-system model: classic bugs are found, correct engines pass every model."""

import json
import os

import pytest

from crashsweep.api import sweep

ENGINES = "tests/engines/fs_engines.py"
SMALL = {"scenario": "random", "jobs": 1, "minimize": 0, "crash_depth": 0}


def run(tmp_path, engine, **settings):
    return sweep(f"{ENGINES}:{engine}", out=tmp_path / engine, **{**SMALL, **settings})


@pytest.mark.parametrize("engine", ["AtomicReplace", "ChecksummedLog"])
@pytest.mark.parametrize("model", ["posix", "ext4-ordered", "strict"])
def test_correct_engine_has_no_violation_under_any_model(tmp_path, engine, model):
    outcome = run(tmp_path, f"{engine}", fs_model=model)
    assert outcome.summary["violations"] == 0, outcome.failure_message()
    assert outcome.summary["distinct_states"] > 5


@pytest.mark.parametrize("crash_depth", [0, 1])
def test_a_file_under_two_names_at_a_crash_loads_as_one_file(tmp_path, crash_depth):
    """LinkCommit keeps each generation under two names between its link and its unlink: its crash states load
    with one file under both names (they were refused as the engine's "File exists" recovery errors)."""
    outcome = run(tmp_path, "LinkCommit", crash_depth=crash_depth, scenario="default")
    assert outcome.summary["violations"] == 0, outcome.failure_message()
    assert outcome.summary["distinct_states"] > 20


@pytest.mark.parametrize("engine", ["RenameWithoutFsync", "MissingDirectoryFsync", "TornAppendNoChecksum",
                                    "WrongOrderTwoFiles", "InPlaceUpdate"])
def test_classic_bug_is_found_under_posix(tmp_path, engine):
    outcome = run(tmp_path, engine)
    assert outcome.summary["violations"] > 0
    assert outcome.traces and json.load(open(outcome.traces[0]))["spec"]["fs_model"] == "posix"


@pytest.mark.parametrize("engine", ["RenameWithoutFsync", "TornAppendNoChecksum", "InPlaceUpdate"])
def test_reordering_bug_visible_under_posix_is_invisible_under_strict(tmp_path, engine):
    outcome = run(tmp_path, engine, fs_model="strict")
    assert outcome.summary["violations"] == 0, outcome.failure_message()


def test_rename_without_fsync_is_safe_under_ext4_ordered(tmp_path):
    outcome = run(tmp_path, "RenameWithoutFsync", fs_model="ext4-ordered")
    assert outcome.summary["violations"] == 0, outcome.failure_message()


def test_tinydb_loses_a_synced_write_because_it_never_fsyncs_its_directory(tmp_path):
    from crashsweep.reference import encode_ops, put, sync
    scenario = tmp_path / "two.json"
    scenario.write_text(json.dumps({"ops": encode_ops([put(b"a", b"1"), sync()])}))
    outcome = sweep("tinydb", out=tmp_path / "tinydb", scenario=str(scenario), jobs=1, crash_depth=0)
    assert any("lost-synced-data" in os.path.basename(trace) for trace in outcome.traces)


def test_sqlite_wal_full_keeps_every_commit(tmp_path):
    outcome = sweep("sqlite", out=tmp_path / "sqlite", options={"journal_mode": "wal", "synchronous": "full"},
                    scenario="sync-heavy", jobs=1, crash_depth=0, minimize=0, budget_states=300)
    assert outcome.summary["violations"] == 0, outcome.failure_message()
    assert outcome.summary["distinct_states"] >= 100
