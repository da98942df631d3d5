"""User engines named MODULE:CLASS: loading, options, seeded bugs, and one-line errors."""

import pathlib
import subprocess
import sys

import pytest

from crashsweep.engines import EngineError, resolve_engine

ENGINE_FILE = pathlib.Path(__file__).resolve().parents[1] / "engines" / "tiny_block.py"
ENGINE = f"{ENGINE_FILE}:TinyBlockStore"
QUICK = ["--ops", "30", "--jobs", "1", "--crash-depth", "0", "--quiet"]


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "crashsweep", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_a_py_file_and_a_dotted_module_name_the_same_engine(monkeypatch):
    by_path = resolve_engine(ENGINE)
    assert by_path.name == ENGINE and by_path.bugs == {"in-place": "overwrites the synced copy in place, "
                                                       "header unordered"}
    monkeypatch.syspath_prepend(str(ENGINE_FILE.parents[1]))
    by_module = resolve_engine("engines.tiny_block:TinyBlockStore")
    assert by_module.description == "Whole-map copies in two slots behind a one-sector header."
    assert by_module.parse_options({"bug": "in-place"}) == {"bug": "in-place"}


def test_a_correct_user_engine_sweeps_clean_and_its_bug_is_found(tmp_path):
    clean = run_cli("sweep", "--engine", ENGINE, *QUICK, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    buggy = run_cli("sweep", "--engine", ENGINE, "--option", "bug=in-place", *QUICK, "--out", str(tmp_path / "bug"))
    assert buggy.returncode == 1, buggy.stdout + buggy.stderr
    traces = sorted((tmp_path / "bug" / "traces").glob("*.json"))
    assert traces
    replay = run_cli("replay", str(traces[0]))
    assert replay.returncode == 1 and "reproduced" in replay.stdout


def test_user_engine_recovery_paths_reach_the_summary(tmp_path):
    completed = run_cli("sweep", "--engine", ENGINE, *QUICK, "--out", str(tmp_path / "r"))
    assert completed.returncode == 0
    assert '"loaded a copy"' in (tmp_path / "r" / "summary.json").read_text()


def test_bugs_lists_a_user_engines_bugs():
    completed = run_cli("bugs", "--engine", ENGINE)
    assert completed.returncode == 0 and "in-place" in completed.stdout


@pytest.mark.parametrize("engine, message", [
    ("no_such_file.py:Store", "no such file no_such_file.py"),
    (f"{ENGINE_FILE}:Missing", "has no class 'Missing'"),
    (f"{ENGINE_FILE}:NoSync", "lacks method(s) sync"),
    ("no_such_module_xyz:Store", "no module named 'no_such_module_xyz'"),
    (f"{ENGINE_FILE}:", "expected MODULE:CLASS"),
    (f"{ENGINE_FILE}:SLOT_SECTORS", "is not a class"),
])
def test_bad_engine_names_are_one_line_and_exit_two(tmp_path, engine, message):
    completed = run_cli("sweep", "--engine", engine, "--quiet", "--out", str(tmp_path / "r"))
    assert completed.returncode == 2
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1, completed.stderr
    assert not (tmp_path / "r").exists()


def test_an_engine_file_that_fails_to_import_is_one_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    completed = run_cli("sweep", "--engine", f"{broken}:Store", "--quiet", "--out", str(tmp_path / "r"))
    assert completed.returncode == 2 and "RuntimeError: boom" in completed.stderr


def test_an_option_the_constructor_does_not_take_is_refused():
    with pytest.raises(EngineError, match="has no option 'colour'"):
        resolve_engine(ENGINE).parse_options({"colour": "red"})


def test_a_path_engine_runs_on_the_file_system_model(tmp_path):
    """PathStore keeps nothing, so the sweep runs and reports the lost data (exit 1), never a usage error."""
    completed = run_cli("sweep", "--engine", f"{ENGINE_FILE}:PathStore", "--scenario", "random", "--jobs", "1",
                        "--quiet", "--minimize", "0", "--out", str(tmp_path / "r"))
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "violation" in completed.stdout


def test_module_colon_class_resolves_from_the_current_directory(tmp_path):
    """`--engine json_kv:JsonKV` from the engine's directory works with the installed `crashsweep` command (whose
    sys.path does not hold the current directory), as `python -m` would."""
    import os
    import shutil
    import subprocess
    import sys
    command = os.path.join(os.path.dirname(sys.executable), "crashsweep")
    if not os.path.exists(command):
        command = shutil.which("crashsweep")
    assert command, "the crashsweep command is installed with the package"
    shutil.copy(os.path.join(os.path.dirname(__file__), "..", "engines", "json_kv.py"), tmp_path)
    done = subprocess.run([command, "log", "--engine", "json_kv:JsonKV", "--ops", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rename db.json.tmp -> db.json   json_kv.py:29" in done.stdout
