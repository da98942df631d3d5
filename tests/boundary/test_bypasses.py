"""An engine that goes around its medium stops the sweep with exit 2 and one line naming what it did and its
file:line — also when the bypassing call fails, also when it happens only during recovery in a worker —
never as violations. Correct engines that use tempfile + fdopen, default-argument bindings, flock or an
anonymous mmap are not accused."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINES = "tests/engines/bypassing.py"


def _sweep(tmp_path, engine):
    scenario = tmp_path / "ops.json"
    scenario.write_text(json.dumps({"ops": [["put", "a", "1"], ["sync"], ["put", "b", "2"], ["sync"]]}))
    return subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine", f"{ENGINES}:{engine}",
                           "--scenario", str(scenario), "--out", str(tmp_path / "out"), "--quiet", "--jobs", "2"],
                          capture_output=True, text=True, cwd=ROOT, timeout=240)


@pytest.mark.parametrize("engine,what,line", [
    ("StartsAProgram", "started a program (subprocess)", "subprocess.run"),
    ("RunsOsSystem", "started a program (os.system)", "os.system"),
    ("UsesSqlite3", "used sqlite3", "sqlite3.connect"),
    ("MapsItsFile", "mapped a file into memory", "mmap.mmap"),
    ("RecoversThroughAProgram", "started a program (subprocess)", "subprocess.run"),
    ("WritesARealFile", "opened the real file", "open(os.path.join"),
    ("MakesASymlink", "made a symbolic link", "os.symlink"),
])
def test_a_bypass_stops_the_sweep_naming_the_call_and_its_line(tmp_path, engine, what, line):
    completed = _sweep(tmp_path, engine)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    message = completed.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert what in message and "bypassing.py:" in message, message
    number = int(message.split("bypassing.py:")[1].split()[0].rstrip(";"))
    source = open(os.path.join(ROOT, ENGINES)).read().splitlines()[number - 1]
    assert line in source, (message, source)


@pytest.mark.parametrize("engine", ["AnonymousMemory", "DefaultArguments", "LocksItsFile", "_JsonStore"])
def test_correct_engines_using_less_common_file_apis_are_not_accused(tmp_path, engine):
    completed = _sweep(tmp_path, engine)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["violations"] == 0 and summary["distinct_states"] > 3
