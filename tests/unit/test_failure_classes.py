"""Failure classes, essential fates, compact results, settings: the parts that need no sweep."""

import json

import pytest

from crashsweep import cli
from crashsweep._settings import PROFILES, SettingsError, settings_argv
from crashsweep.crash_explorer._classes import DIFF_KEYS_MAX, DIFF_VALUE_CHARS_MAX, class_table, compact
from crashsweep.crash_explorer._fates import explain_state, sentences
from crashsweep.crash_explorer._explain import render


def _fails_when(rule):
    """A check over choices: `rule(persisted set, torn dict)` says the state fails."""
    def check(choice):
        torn = {unit: pieces for unit, pieces in choice.get("torn", ())}
        return rule(set(choice.get("persist", ())), torn)
    return check


def test_ordering_names_the_lost_write_and_the_later_rename():
    # pending: 0 create, 1 write, 2 size, 3 rename; fails when the rename landed without the write
    check = _fails_when(lambda persisted, torn: 3 in persisted and 1 not in persisted)
    explained = explain_state([0, 1, 2, 3], {"persist": [0, 3]}, check)
    assert explained["ordering"] == [[[1], 3]]
    assert not explained["atomicity"] and explained["durability"] is None
    assert check(explained["choice"]), "the essential state must itself fail"


def test_extra_deviations_that_do_not_matter_are_undone():
    check = _fails_when(lambda persisted, torn: 3 in persisted and 1 not in persisted)
    explained = explain_state([0, 1, 2, 3], {"persist": [3]}, check)   # 0 and 2 lost too: irrelevant
    assert explained["ordering"] == [[[1], 3]]
    assert explained["choice"] == {"persist": [0, 2, 3]}


def test_a_tear_that_matters_is_an_atomicity_claim():
    check = _fails_when(lambda persisted, torn: 5 in torn)
    explained = explain_state([5, 6], {"torn": [[5, [0]]], "persist": [6]}, check)
    assert explained["atomicity"] == [5]
    assert explained["ordering"] == [] and check(explained["choice"])


def test_a_tear_that_does_not_matter_is_dropped():
    check = _fails_when(lambda persisted, torn: 6 in persisted and 4 not in persisted)
    explained = explain_state([4, 5, 6], {"torn": [[5, [1]]], "persist": [6]}, check)
    assert explained["atomicity"] == [] and explained["ordering"] == [[[4], 6]]


def test_in_order_loss_names_the_write_assumed_durable():
    # fails unless unit 8 (say, a rename nobody made durable) persisted: a durability assumption
    check = _fails_when(lambda persisted, torn: 8 not in persisted)
    explained = explain_state([7, 8, 9], {}, check)
    assert explained["in_order"] and explained["durability"] == 8
    said = sentences(explained, lambda unit: f"rename u{unit} -> x at s.py:{unit}", "fs", 3)
    assert said == ["assumes rename u8 -> x at s.py:8 durable once the sync at op 3 returned (durability): nothing "
                    "made it durable; an fsync of its directory would"]


def test_failing_with_everything_persisted_blames_recovery_not_io_order():
    explained = explain_state([1, 2], {"persist": [1, 2]}, lambda choice: True)
    said = sentences(explained, str, "block", None)
    assert explained["lost"] == [] and "recovery logic is wrong" in said[0]


def test_checks_are_bounded():
    calls = []

    def check(choice):
        calls.append(choice)
        return True
    explain_state(list(range(200)), {"persist": list(range(100, 200))}, check)
    assert len(calls) <= 64


def test_results_lines_drop_whole_maps_and_cap_diffs():
    big = "hex:" + "ab" * 5000
    result = {"state": 1, "kind": "lost-synced-data", "outcome": "lost-synced-data", "actual": {"k": big},
              "expected": {"k": big}, "diff": {"missing": {f"k{i}": big for i in range(50)},
                                               "wrong": {"w": [big, big]}}}
    line = compact(result)
    assert "actual" not in line and "expected" not in line
    assert len(line["diff"]["missing"]) == DIFF_KEYS_MAX and line["diff_keys"] == 51
    assert all(len(value) <= DIFF_VALUE_CHARS_MAX for value in line["diff"]["missing"].values())
    assert len(json.dumps(line)) < 20_000 < len(json.dumps(result))


def test_a_class_is_represented_by_a_single_crash_before_a_double_one():
    results = [{"state": 3, "kind": "recovery-error", "class": "c1", "class_title": "t", "nested": [{}]},
               {"state": 9, "kind": "recovery-error", "class": "c1", "class_title": "t"},
               {"state": 5, "kind": "lost-synced-data", "class": "c2", "class_title": "u"},
               {"state": 1, "kind": None, "outcome": "recovered"}]
    table = class_table(results)
    assert [entry["id"] for entry in table] == ["c1", "c2"]       # by first appearance
    assert table[0]["states"] == 2 and table[0]["first_state"] == 9


def test_render_speaks_of_calls_and_source_lines_not_request_ids():
    trace = {"crash": {"op": 7, "point": 6}, "spec": {"ops": [["sync"]] * 8},
             "violation": {"kind": "recovery-error", "detail": "JSONDecodeError"},
             "class": {"id": "b7", "title": "recovery-error: JSONDecodeError at json_kv.py:14"},
             "explanation": {"sentences": ["needs write db.json.tmp [0, 2) at json_kv.py:28 to persist before "
                                           "rename db.json.tmp -> db.json at json_kv.py:29 (ordering)"],
                             "io": [{"op": 7, "call": "rename db.json.tmp -> db.json", "site": "json_kv.py:29",
                                     "fate": "persisted"}]}}
    text = "\n".join(render(trace))
    assert "json_kv.py:29" in text and "[persisted]" in text and "persist" + "[" not in text


def test_unknown_pyproject_setting_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.crashsweep]\nbudget-second = 5\n')
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "unknown setting 'budget-second'" in error


def test_pyproject_bad_value_names_the_file(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text('[tool.crashsweep]\nbound = 0\n')
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep"]) == 2
    assert "pyproject.toml [tool.crashsweep]" in capsys.readouterr().err


def test_settings_order_profile_then_file_then_flags(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.crashsweep]\nprofile = "quick"\ncrash-depth = 1\n'
                                             'option = ["bug=x"]\n[tool.crashsweep.profiles.mine]\nbound = 4\n')
    monkeypatch.chdir(tmp_path)
    args = cli.parse_with_settings(["sweep", "--seed", "3"])
    assert (args.bound, args.crash_depth, args.seed, args.option) == (1, 1, 3, ["bug=x"])
    args = cli.parse_with_settings(["sweep", "--profile", "mine", "--crash-depth", "0"])
    assert (args.bound, args.crash_depth) == (4, 0)
    assert "--bound 4" in cli.reproduce_command(args) and "--crash-depth 0" in cli.reproduce_command(args)
    with pytest.raises(SettingsError):
        settings_argv("nope", {"bound": "store"})
    (tmp_path / "pyproject.toml").write_text('[tool.crashsweep]\nprofile = "quick"\ncrash-depth = 0\n')
    assert cli.parse_with_settings(["sweep"]).crash_depth == 0


def test_profiles_are_the_documented_levels():
    assert PROFILES["quick"]["bound"] == 1 and PROFILES["quick"]["crash-depth"] == 1
    assert PROFILES["exhaustive"]["bound"] > 2


def test_help_lists_defaults_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["sweep", "--help"])
    text = capsys.readouterr().out
    assert "(default: bounded)" in text and "examples:" in text and "exit codes:" in text
    assert "--budget-seconds" in text and "pyproject.toml" in text


def test_a_state_failing_through_a_later_crash_point_is_explained_at_that_point(tmp_path):
    """A rename never made durable leaves the disk of before the first sync at every later crash point: the
    state is planned at its first point (where it is fine) and fails through a later point's window. Its
    explanation must name the missing directory fsync at that later point, not blame the recovery."""
    out = tmp_path / "report"
    assert cli.main(["sweep", "--engine", "tests/engines/fs_engines.py:MissingDirectoryFsync", "--ops", "6",
                     "--crash-depth", "0", "--out", str(out), "--no-corpus", "--quiet"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    for entry in summary["classes"]:
        trace = json.loads((out / entry["minimized"]).read_text())
        said = " ".join(trace["explanation"]["sentences"])
        assert "recovery logic is wrong" not in said, said
        assert "fsync of its directory" in said and "map.json" in said, said
        if trace["crash"]["point"] != trace["explanation"].get("focus", {}).get("point", trace["crash"]["point"]):
            assert "the same disk state is what a crash during" in said


def test_a_class_is_the_codes_not_the_tasks():
    """A native site names the task that made the call when several did ("kv.py:10 (thread 4)"): an engine that
    starts a thread per operation must not get a class per thread. Titles and keys drop the task, keep the line."""
    from types import SimpleNamespace

    from crashsweep.crash_explorer._classes import ClassNamer
    from crashsweep.disk_model import FsLog

    def namer(sites):
        log = FsLog()
        for call, site in enumerate(sites, start=1):
            log.call = call
            log.add("write", 9, offset=0, data=b"x")
            log.sites[call] = site
        return ClassNamer(SimpleNamespace(log=log, spec=SimpleNamespace(ops=())))

    labelled = namer(["kv.py:10 (thread 4)", "thread 2", "libx.so: Compact (process 3)"])
    plain = namer(["kv.py:10", "", "libx.so: Compact"])
    assert labelled.sites == plain.sites
    assert [labelled.unit(op.op_id) for op in labelled.recording.log.ops] == \
        [plain.unit(op.op_id) for op in plain.recording.log.ops]
