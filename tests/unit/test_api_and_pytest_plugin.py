"""The Python sweep API and the pytest plugin (run in a child pytest with pytester)."""

import json
import pathlib

import pytest

from crashsweep.api import SweepUsageError, sweep

ENGINE_FILE = pathlib.Path(__file__).resolve().parents[1] / "engines" / "tiny_block.py"
ENGINE = f"{ENGINE_FILE}:TinyBlockStore"


def test_api_sweep_writes_the_same_reports_as_the_command_line(tmp_path):
    outcome = sweep(ENGINE, out=str(tmp_path / "r"), ops=30, jobs=1, crash_depth=0)
    assert outcome.violations == 0 and outcome.traces == []
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["distinct_states"] == \
        outcome.summary["distinct_states"] > 0
    assert (tmp_path / "r" / "index.html").exists() and (tmp_path / "r" / "junit.xml").exists()
    assert outcome.reproduce.startswith(f"crashsweep sweep --engine {ENGINE} --scenario default --ops 30")


def test_api_failure_message_names_traces_and_replay_commands(tmp_path):
    outcome = sweep(ENGINE, out=str(tmp_path / "r"), options={"bug": "in-place"}, ops=30, jobs=1)
    classes = outcome.summary["classes"]
    assert outcome.violations > 0 and len(outcome.traces) == len(classes) >= 1     # a trace per failure class
    message = outcome.failure_message()
    assert all(pathlib.Path(trace).exists() for trace in outcome.traces + outcome.minimized)
    for number, entry in enumerate(classes, 1):
        shown = str(tmp_path / "r" / (entry.get("minimized") or entry["trace"]))
        assert f"class {number}: {entry['title']}" in message
        assert f"replay: crashsweep replay {shown}" in message and f"explain: crashsweep explain {shown}" in message
    assert "reproduce the sweep: crashsweep sweep --engine" in message and "--option bug=in-place" in message


@pytest.mark.parametrize("settings, message", [
    ({"strategy": "everything"}, "invalid choice: 'everything'"),
    ({"ops": 0}, "--ops"),
    ({"colour": "red"}, "unrecognized arguments: --colour"),
    ({"options": {"bug": "nope"}}, "no seeded bug 'nope'"),
])
def test_api_bad_settings_raise_one_line(tmp_path, settings, message):
    with pytest.raises(SweepUsageError, match=message.replace("(", r"\(")):
        sweep(ENGINE, out=str(tmp_path / "r"), **settings)


PLUGIN_TESTS = f'''
import json, pytest

ENGINE = {ENGINE!r}

@pytest.mark.crashsweep_quick
def test_quick_clean(crashsweep):
    outcome = crashsweep.check(ENGINE, ops=30)
    assert outcome.summary["strategy"] == "bounded" and outcome.summary["bound"] == 1
    assert outcome.summary["crash_depth"] == 1

@pytest.mark.crashsweep_exhaustive
def test_exhaustive_clean(crashsweep):
    summary = crashsweep.check(ENGINE, ops=20).summary
    assert summary["bound"] == 3 and summary["crash_depth"] == 2

@pytest.mark.crashsweep(ops=25)
def test_default_mode_and_marker_settings(crashsweep):
    outcome = crashsweep.check(ENGINE)
    assert "--ops 25" in outcome.reproduce
    assert outcome.summary["bound"] == 2 and outcome.summary["crash_depth"] == 1

@pytest.mark.crashsweep_quick
def test_buggy_fails(crashsweep):
    crashsweep.check(ENGINE, ops=30, options={{"bug": "in-place"}})

def test_sweep_returns_without_failing(crashsweep):
    outcome = crashsweep.sweep(ENGINE, ops=30, options={{"bug": "in-place"}}, crash_depth=0)
    assert outcome.violations > 0

def test_bad_setting_fails_readably(crashsweep):
    crashsweep.check(ENGINE, strategy="everything")
'''


def test_plugin_fixture_markers_and_failure_message(pytester):
    pytester.makepyfile(test_engine=PLUGIN_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=2)
    text = result.stdout.str()
    assert "crash-consistency violation(s) in engine" in text
    assert "replay: crashsweep replay " in text and "/traces/" in text
    assert "crashsweep: bad sweep settings: argument --strategy: invalid choice: 'everything'" in text
    assert "Traceback" not in text and "During handling" not in text


def test_plugin_mode_option_wins_over_markers_and_selection_by_marker(pytester):
    pytester.makepyfile(test_engine=PLUGIN_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-m", "crashsweep_exhaustive",
                                "--crashsweep-mode", "quick")
    result.assert_outcomes(failed=1, deselected=5)
    assert "assert (1 == 3)" in result.stdout.str()      # the quick mode's k = 1, not the marker's k = 3


def test_plugin_keeps_reports_under_crashsweep_out(pytester, tmp_path):
    pytester.makepyfile(test_engine=PLUGIN_TESTS)
    keep = tmp_path / "kept"
    result = pytester.runpytest("-p", "no:cacheprovider", "-k", "buggy_fails", "--crashsweep-out", str(keep))
    result.assert_outcomes(failed=1)
    reports = list(keep.glob("*/sweep-1/index.html"))
    assert len(reports) == 1 and str(reports[0].parent) in result.stdout.str()
