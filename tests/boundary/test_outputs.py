"""Nothing already produced is lost or damaged: --out removes only what crashsweep wrote, a trace is on disk
before the result line that links it, --resume refuses another slice, any bytes an engine says give valid
junit.xml and index.html, and the reproduce line reproduces the same sweep, shell-quoted."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

from crashsweep.cli import main
from tests.boundary.processes import processes_with

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUGGY = ["--engine", "example-wal", "--option", "bug=no-log-checksum", "--ops", "24", "--jobs", "1", "--quiet",
         "--crash-depth", "0", "--minimize", "0"]

NUL_ENGINE = '''
class Nul:
    """Raises a message with every awkward character an engine can produce."""
    def __init__(self, path):
        import os
        if os.path.exists(os.path.join(path, "x")):
            raise RuntimeError("bad \\x00 nul \\x07 bell \\udcff surrogate <tag> & ]]> \\x1b[31m")
        open(os.path.join(path, "x"), "w").close()
        fd = os.open(path, os.O_RDONLY); os.fsync(fd); os.close(fd)
    def put(self, k, v): pass
    def get(self, k): return None
    def delete(self, k): pass
    def sync(self): pass
    def close(self): pass
'''


def test_sweeping_into_an_out_directory_removes_only_traces_crashsweep_wrote(tmp_path):
    out = tmp_path / "out"
    assert main(["sweep", *BUGGY, "--out", str(out)]) == 1
    ours = sorted(path.name for path in (out / "traces").glob("*.json"))
    mine = out / "traces" / "my-notes.json"
    mine.write_text("{}")
    elsewhere = out / "keep.json"
    elsewhere.write_text("{}")
    assert main(["sweep", "--engine", "example-wal", "--ops", "24", "--quiet", "--out", str(out)]) == 0
    assert mine.exists() and elsewhere.exists()
    assert not any((out / "traces" / name).exists() for name in ours) and ours


def test_resume_refuses_another_shard(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", *BUGGY, "--out", str(out), "--shard", "0/2"]) in (0, 1)
    assert main(["sweep", *BUGGY, "--out", str(out), "--shard", "1/2", "--resume"]) == 2
    assert "same --shard" in capsys.readouterr().err


def test_a_killed_sweep_leaves_a_trace_for_every_violation_it_recorded(tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "crashsweep", "sweep", "--engine", "example-wal", "--option",
                                "bug=sync-without-flush", "--ops", "300", "--out", str(out), "--quiet", "--jobs", "2"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 40):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    time.sleep(0.5)
    assert processes_with(str(out)) == [], "workers outlived a crashsweep killed with SIGKILL"
    lines = results.read_text().splitlines()
    violations = [json.loads(line) for line in lines[1:] if line.endswith("}") and '"kind":"' in line]
    assert violations
    for result in violations:       # each line's failure class has its trace, durable before the line
        assert (out / "traces" / f"{result['kind']}-{result['class']}.json").exists()


def test_any_character_an_engine_says_gives_valid_junit_and_html(tmp_path):
    engine = tmp_path / "nul.py"
    engine.write_text(NUL_ENGINE)
    out = tmp_path / "out"
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"ops": [["put", "a", "1"], ["sync"]]}))
    assert main(["sweep", "--engine", f"{engine}:Nul", "--scenario", str(scenario), "--out", str(out), "--quiet",
                 "--jobs", "1"]) == 1
    junit = ElementTree.parse(out / "junit.xml")
    assert "\\x00 nul" in ElementTree.tostring(junit.getroot(), encoding="unicode")
    html = (out / "index.html").read_bytes()
    assert b"\x00" not in html and b"\x07" not in html and b"\\x00 nul" in html
    assert "&lt;tag&gt;" in html.decode()


def test_the_reproduce_line_is_quoted_and_reproduces_the_same_sweep(tmp_path):
    scenario = tmp_path / "my scenario; rm -rf x.json"
    scenario.write_text(json.dumps({"ops": [["put", "a", "1"], ["sync"], ["put", "b", "2"]]}))
    out = tmp_path / "first"
    completed = subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--scenario", str(scenario), "--out",
                                str(out), "--quiet", "--fs-model", "strict", "--cache", "none", "--crash-depth", "0",
                                "--budget-states", "7", "--state-timeout", "4.5", "--engine", "example-wal",
                                "--seed", "3"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    line = completed.stdout.strip().split("reproduce the sweep with: ", 1)[1]
    words = shlex.split(line)
    for flag in ("--fs-model", "--cache", "--crash-depth", "--budget-states", "--state-timeout", "--seed"):
        assert flag in words, (flag, line)
    assert words[words.index("--scenario") + 1] == str(scenario)
    again = tmp_path / "again"
    assert words[0] == "crashsweep"
    subprocess.run([sys.executable, "-m", "crashsweep", *words[1:], "--out", str(again), "--quiet"],
                   capture_output=True, text=True, cwd=ROOT, timeout=120)
    first, second = (json.loads((d / "summary.json").read_text()) for d in (out, again))
    assert first["spec_id"] == second["spec_id"] and first["distinct_states"] == second["distinct_states"] > 0


def test_a_bug_in_crashsweep_exits_70_never_1(monkeypatch, capsys):
    """Exit 1 means "violations found" to CI; crashsweep's own failure must never look like that."""
    from crashsweep import cli

    def broken(args, console):
        raise RuntimeError("an invariant of crashsweep broke")

    monkeypatch.setattr(cli, "command_sweep", broken)
    assert main(["sweep", "--quiet"]) == 70
    error = capsys.readouterr().err
    assert "internal error" in error and "Traceback" in error
