"""From finding to fixing, end to end, on a 30-line JSON-file store with one missing fsync before a rename
(tests/engines/json_kv.py): one failure class, explained by the write and the rename with their source lines,
a small output directory, replay after the fix exits 0, the corpus remembers and forgets."""

import json
import os
import shutil
import time

import pytest

from crashsweep import cli

ENGINE_FILE = os.path.join(os.path.dirname(__file__), "..", "engines", "json_kv.py")
FIX = ("            json.dump({k.hex(): v.hex() for k, v in self.data.items()}, handle)\n",
       "            json.dump({k.hex(): v.hex() for k, v in self.data.items()}, handle)\n"
       "            handle.flush()\n            os.fsync(handle.fileno())\n")
SWEEP = ["sweep", "--engine", "json_kv.py:JsonKV", "--ops", "10", "--jobs", "2", "--quiet"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(ENGINE_FILE, tmp_path / "json_kv.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRASHSWEEP_CORPUS")         # the default: .crashsweep/ beside the project
    return tmp_path


def _fix(project):
    path = project / "json_kv.py"
    text = path.read_text()
    assert FIX[0] in text
    path.write_text(text.replace(FIX[0], FIX[1]))


def _size(directory) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(directory) for name in names)


def test_missing_fsync_is_one_class_explained_in_the_engines_terms(project, capsys):
    assert cli.main(SWEEP) == 1
    summary = json.loads((project / "crashsweep-report" / "summary.json").read_text())
    assert summary["violations"] > 100 and len(summary["classes"]) == 1
    klass = summary["classes"][0]
    assert klass["title"] == "recovery-error: JSONDecodeError at json_kv.py:14"
    why = " ".join(klass["why"])
    assert "write db.json.tmp" in why and "json_kv.py:2" in why            # the write, at its line
    assert "before rename db.json.tmp -> db.json at json_kv.py:29 (ordering)" in why
    traces = sorted(os.listdir(project / "crashsweep-report" / "traces"))
    assert len(traces) == 2 and traces[1].endswith(".min.json")            # one trace per class, and its minimized
    assert _size(project / "crashsweep-report") < 3 << 20
    for line in (project / "crashsweep-report" / "results.jsonl").read_text().splitlines()[1:]:
        assert "actual" not in json.loads(line) and len(line) < 20_000
    junit = (project / "crashsweep-report" / "junit.xml").read_text()
    assert junit.count("<testcase") == 2 and "json_kv.py:29" in junit
    explained = capsys.readouterr()
    assert cli.main(["explain", f"crashsweep-report/{klass['minimized']}"]) == 1
    text = capsys.readouterr().out
    assert "rename db.json.tmp -> db.json   json_kv.py:29   [persisted]" in text
    assert "lost]" in text and "(ordering)" in text and "persist [" not in text
    del explained


@pytest.mark.long
def test_replay_after_the_fix_exits_zero_and_the_corpus_forgets_the_class(project, capsys):
    assert cli.main(SWEEP) == 1
    summary = json.loads((project / "crashsweep-report" / "summary.json").read_text())
    minimized = f"crashsweep-report/{summary['classes'][0]['minimized']}"
    corpus = project / ".crashsweep" / "corpus" / "json_kv.py-JsonKV"
    assert len(os.listdir(corpus)) == 1 and (project / ".crashsweep" / "README.md").exists()
    capsys.readouterr()
    assert cli.main(["replay", minimized]) == 1                             # still the bug
    assert "reproduced" in capsys.readouterr().out
    _fix(project)
    assert cli.main(["replay", minimized]) == 0                             # the fix changed the I/O
    out = capsys.readouterr().out
    assert "no longer fails:" in out and "state(s) at op" in out
    assert cli.main(SWEEP) == 0
    out = capsys.readouterr().out
    assert "1 earlier failure(s) re-checked: 1 fixed, 0 still failing" in out
    assert not os.listdir(corpus)


@pytest.mark.long
def test_a_changed_engine_that_still_fails_gives_a_new_trace_and_exit_1(project, capsys):
    assert cli.main(SWEEP) == 1
    summary = json.loads((project / "crashsweep-report" / "summary.json").read_text())
    minimized = f"crashsweep-report/{summary['classes'][0]['minimized']}"
    path = project / "json_kv.py"       # more I/O (a marker file), the same missing fsync
    path.write_text(path.read_text().replace("        os.rename(temporary, self.file)\n",
                                             "        open(self.file + '.marker', 'w').close()\n"
                                             "        os.rename(temporary, self.file)\n"))
    capsys.readouterr()
    assert cli.main(["replay", minimized]) == 1
    out = capsys.readouterr().out
    assert "still fails:" in out and "new trace:" in out
    new = out.split("new trace: ")[1].split()[0]
    assert os.path.exists(new) and new.endswith(".now.json")
    assert cli.main(SWEEP) == 1
    out = capsys.readouterr().out
    assert "1 still failing" in out
    assert "1 corpus trace(s) still failing" in out.splitlines()[-1]      # the verdict line says what failed


@pytest.mark.long
def test_resweeping_keeps_the_minimized_traces_of_classes_still_failing(project):
    assert cli.main(SWEEP + ["--no-corpus"]) == 1
    traces = project / "crashsweep-report" / "traces"
    minimized = [name for name in os.listdir(traces) if name.endswith(".min.json")]
    assert cli.main(SWEEP + ["--no-corpus", "--minimize", "0"]) == 1       # no new minimization this time
    assert all((traces / name).exists() for name in minimized)
    _fix(project)
    assert cli.main(SWEEP + ["--no-corpus", "--minimize", "0"]) == 0        # fixed: its traces go
    assert not os.listdir(traces)


def test_budget_seconds_bounds_the_whole_command_and_says_where_it_stopped(project, capsys):
    started = time.monotonic()
    assert cli.main(["sweep", "--engine", "json_kv.py:JsonKV", "--jobs", "2", "--budget-seconds", "4",
                     "--no-corpus"]) == 1
    elapsed = time.monotonic() - started
    # the whole default workload takes ~12 s on this engine (2 cores); the budget holds for all of it (slack: a
    # slow machine's process start-up, not a speed claim)
    assert elapsed < 4 + 10, elapsed
    captured = capsys.readouterr()
    assert "stopped by --budget-seconds at" in captured.out
    assert "planning sampled the states of" in captured.out
    assert "--budget-seconds 4" in captured.out.split("reproduce the sweep with:")[1]
    for phase in ("recording 56 operations", "planning crash states", "checking crash states"):
        assert phase in captured.err


def test_log_lists_every_call_with_its_source_line_and_the_crash_points(project, capsys):
    assert cli.main(["log", "--engine", "json_kv.py:JsonKV", "--ops", "4"]) == 0
    out = capsys.readouterr().out
    assert "create db.json.tmp   json_kv.py:27" in out
    assert "rename db.json.tmp -> db.json   json_kv.py:29" in out
    assert "fsync(dir .)   json_kv.py:31" in out and "· crash point" in out
