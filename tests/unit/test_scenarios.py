import json

import pytest

from crashsweep.scenarios import SCENARIOS, ScenarioError, generate, load_scenario_file, resolve_scenario


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_named_scenarios_are_seeded_and_end_with_a_sync(name):
    ops = generate(name, 3)
    assert ops == generate(name, 3)
    assert ops[-1].kind == "sync"
    assert all(isinstance(op.key, bytes) for op in ops if op.kind != "sync")


def test_different_seeds_differ():
    assert generate("random", 1) != generate("random", 2)


def test_required_scenarios_exist():
    assert {"default", "ycsb-load", "ycsb-a", "sync-heavy", "delete-heavy", "large-values"} <= set(SCENARIOS)


def test_json_scenario_file_round_trip(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "mine", "ops": [["put", "a", "hex:00ff"], ["sync"], ["get", "a"]]}))
    name, ops = resolve_scenario(str(path), 0)
    assert name == "mine" and ops[0].value == b"\x00\xff"


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"), ('{"x": 1}', "expected an object"), ('{"ops": []}', "no operations"),
    ('{"ops": [["jump"]]}', "unknown operation"),
])
def test_bad_scenario_files_get_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ScenarioError, match=message):
        load_scenario_file(str(path))


def test_unknown_scenario_and_bad_length():
    with pytest.raises(ScenarioError, match="unknown scenario"):
        generate("nope", 0)
    with pytest.raises(ScenarioError, match="length"):
        generate("default", 0, 0)
