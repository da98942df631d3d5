import json
import os

import pytest

from crashsweep.crash_explorer import (
    ResultsError, ResultsWriter, SweepOptions, TraceError, execute, load_trace, prepare, read_results, summarize,
)


def _header(spec_id):
    from tests.conftest import small_spec
    return {"spec_id": spec_id, "spec": small_spec().to_json(), "shard": [0, 1],
            "plan": {"crash_points": 1, "states_enumerated": 1, "distinct_total": 1, "planned": 1, "space_total": "1",
                     "exhausted": True, "per_point": []}}


def test_partial_last_line_is_skipped(tmp_path):
    path = tmp_path / "results.jsonl"
    with ResultsWriter(str(path), _header("x")) as writer:
        writer.write({"state": 0, "outcome": "recovered", "kind": None})
    with open(path, "ab") as handle:
        handle.write(b'{"type": "state", "sta')
    header, results, _ = read_results(str(path))
    assert header["spec_id"] == "x" and [r["state"] for r in results] == [0]


def test_resume_refuses_results_of_another_sweep(tmp_path):
    path = tmp_path / "results.jsonl"
    ResultsWriter(str(path), _header("one")).close()
    with pytest.raises(ResultsError, match="different sweep"):
        ResultsWriter(str(path), _header("two"), resume=True)


def _summary_without_timing(summary):
    return {k: v for k, v in summary.items()
            if k not in ("elapsed_s", "states_per_s", "recoveries_per_s", "engine_share", "streamed")}


def test_interrupted_sweep_resumes_to_the_same_final_result(tmp_path, spec_factory):
    spec = spec_factory(bug="log-epoch-unchecked")
    full = execute(prepare(spec, SweepOptions(out_dir=str(tmp_path / "full"))))
    partial_dir = str(tmp_path / "partial")
    execute(prepare(spec, SweepOptions(out_dir=partial_dir, budget_states=40)))
    # simulate a kill mid-line: chop the file inside its last line
    results_path = os.path.join(partial_dir, "results.jsonl")
    data = open(results_path, "rb").read()
    open(results_path, "wb").write(data[:-17])
    resumed = execute(prepare(spec, SweepOptions(out_dir=partial_dir, resume=True)))
    assert resumed.already_done >= 38
    first, second = summarize(full), summarize(resumed)
    assert _summary_without_timing(first) == _summary_without_timing(second)
    assert first["violations"] > 0


def test_trace_loading_validates_without_executing(tmp_path):
    path = tmp_path / "t.json"
    cases = {
        "{": "not valid JSON",
        '{"format": "other"}': "not a crashsweep trace",
        '{"format": "crashsweep-trace", "version": 99}': "version 99",
        json.dumps({"format": "crashsweep-trace", "version": 1, "spec": {"ops": [["put", "a", "1"]],
                    "engine": "os.system"}}): "unknown engine",
        json.dumps({"format": "crashsweep-trace", "version": 1, "spec": {"ops": [["put", "a", "1"]],
                    "__reduce__": "x"}}): "unknown field",
    }
    for content, message in cases.items():
        path.write_text(content)
        with pytest.raises(TraceError, match=message):
            load_trace(str(path))
    with pytest.raises(TraceError, match="does not exist"):
        load_trace(str(tmp_path / "missing.json"))


def test_tally_counts_as_one_pass_over_each_field_would():
    """`tally` is one pass over the results (a sweep's end waits on it): the same counts, totals and recovery
    paths (most common first, ties in the order first seen) as counting each field on its own."""
    import random
    from collections import Counter
    from crashsweep.crash_explorer._results import tally
    rng = random.Random(5)
    events = ["open", "replay journal", "rollback", "checkpoint", "read superblock"]
    results = []
    for number in range(400):
        result = {"state": number, "outcome": rng.choice(["recovered", "refused", "violation"]),
                  "engine_s": rng.random(), "total_s": rng.random()}
        if result["outcome"] == "violation":
            result["kind"] = rng.choice(["lost-synced-data", "not-a-snapshot"])
        if rng.random() < 0.5:
            result["latest"] = True
        if rng.random() < 0.3:
            result["nested_states"] = rng.randrange(5)
        if rng.random() < 0.1:
            result["leftovers"] = 1
        if rng.random() < 0.7:
            result["events"] = rng.sample(events, rng.randrange(1, 4))
        results.append(result)
    counted = tally(results)
    outcomes = Counter(result["outcome"] for result in results)
    violations = Counter(result["kind"] for result in results if result.get("kind"))
    latest = sum(1 for result in results if result["outcome"] == "recovered" and result.get("latest"))
    paths = Counter(event for result in results for event in result.get("events", ()))
    assert counted == {
        "outcomes": dict(sorted(outcomes.items())), "violations_by_kind": dict(sorted(violations.items())),
        "violations": sum(violations.values()), "recovered_latest": latest,
        "recovered_older": outcomes["recovered"] - latest, "refused": outcomes["refused"],
        "nested_states": sum(result.get("nested_states", 0) for result in results),
        "engine_s": sum(result["engine_s"] for result in results),
        "worker_s": sum(result["total_s"] for result in results),
        "states_with_leftovers": sum(1 for result in results if result.get("leftovers")),
        "recovery_paths": dict(paths.most_common())}
    assert list(counted["recovery_paths"]) == list(dict(paths.most_common()))
