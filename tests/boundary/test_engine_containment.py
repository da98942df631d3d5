"""Whatever an engine does — raise, exit, kill itself, segfault, signal crashsweep, fork and linger, exhaust
memory, recurse, raise KeyboardInterrupt, raise a 16 MB message, flood the terminal — the sweep finishes, every
state has a result of the right kind, the reports are written and small, the terminal shows one line, and no
process the engine started survives the command."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree

import pytest

from tests.boundary.processes import processes_with

ENGINE = "tests/engines/misbehaving.py:Misbehaving"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPS = {"ops": [["put", "a", "1"], ["sync"], ["put", "b", "2"], ["sync"]]}
OUT_BYTES_MAX = 2 << 20

# mode -> (kinds when it misbehaves in recovery, kinds when it misbehaves in the recording)
EXPECTED = {
    "raise": ({"recovery-error"}, {"engine-error", "recovery-error"}),
    "exit": ({"recovery-error"}, {"engine-error", "recovery-error"}),
    "kill": ({"recovery-error"}, {"engine-error", "recovery-error"}),
    "segfault": ({"recovery-error"}, {"engine-error", "recovery-error"}),
    "sigterm-parent": (set(), set()),
    "fork-linger": (set(), set()),
    "memory": ({"resource-exhausted"}, {"resource-exhausted"}),
    "recursion": ({"recovery-error"}, {"engine-error", "recovery-error"}),
    "keyboard-interrupt": ({"recovery-error"}, {"engine-error", "recovery-error"}),
    "huge-message": ({"recovery-error"}, {"engine-error", "recovery-error"}),
    "print-flood": (set(), set()),
}


def _sweep(tmp_path, *args, marker=None, timeout=240):
    scenario = tmp_path / "ops.json"
    scenario.write_text(json.dumps(OPS))
    env = dict(os.environ, CRASHSWEEP_TEST_MARKER=marker or uuid.uuid4().hex)
    return subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine", ENGINE, "--scenario",
                           str(scenario), "--out", str(tmp_path / "out"), "--jobs", "2", "--memory-limit", "768M",
                           *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def _out_bytes(directory) -> int:
    return sum(os.path.getsize(os.path.join(base, name)) for base, _, names in os.walk(directory) for name in names)


@pytest.mark.parametrize("when", ["recover", "record"])
@pytest.mark.parametrize("mode", [pytest.param(mode, marks=pytest.mark.long) if mode == "print-flood" else mode
                                  for mode in sorted(EXPECTED)])
def test_a_misbehaving_engine_costs_its_states_never_the_sweep(tmp_path, mode, when):
    marker = uuid.uuid4().hex
    completed = _sweep(tmp_path, "--option", f"mode={mode}", "--option", f"when={when}", "--quiet", marker=marker)
    expected = EXPECTED[mode][when == "record"]
    assert completed.returncode == (1 if expected else 0), (completed.stdout, completed.stderr)
    assert "Traceback" not in completed.stdout + completed.stderr
    assert len((completed.stdout + completed.stderr).strip().splitlines()) == 1, completed.stdout + completed.stderr
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["violations_by_kind"]) == expected
    assert summary["distinct_states"] == summary["distinct_states_planned"] > 0
    ElementTree.parse(out / "junit.xml")
    assert (out / "index.html").stat().st_size > 0
    assert _out_bytes(out) < OUT_BYTES_MAX
    time.sleep(0.2)
    assert processes_with(marker, "environ") == [], "a process the engine started outlived the sweep"
    if mode == "fork-linger":
        assert any("left processes running" in warning for warning in summary["warnings"])
    if mode == "print-flood":
        outputs = [json.loads(line).get("output", "") for line in (out / "results.jsonl").read_text().splitlines()]
        assert any("engine chatter" in text for text in outputs)
        assert max(len(text) for text in outputs) < 10_000


def test_each_state_is_charged_the_processes_its_engine_left(tmp_path):
    """Reaped after each state, inside the file-system model's interposition that a worker holds over runs of
    states (the reaping reads /proc through the real `os`): each forking recovery is charged its own child,
    not the last state of its unit."""
    marker = uuid.uuid4().hex
    completed = _sweep(tmp_path, "--option", "mode=fork-linger", "--option", "when=recover", "--crash-depth", "0",
                       "--quiet", marker=marker)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    leftovers = [json.loads(line).get("leftovers", 0)
                 for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert max(leftovers) == 1 and sum(leftovers) >= 4, leftovers
    time.sleep(0.2)
    assert processes_with(marker, "environ") == []


def test_a_trace_of_an_engine_that_kills_its_process_replays_and_minimizes(tmp_path):
    _sweep(tmp_path, "--option", "mode=kill", "--minimize", "0", "--quiet")
    traces = sorted((tmp_path / "out" / "traces").glob("*.json"))
    assert traces
    for extra, code in ((["replay"], 1), (["minimize", "--budget-seconds", "20"], 0)):
        completed = subprocess.run([sys.executable, "-m", "crashsweep", *extra, str(traces[0]), "--engine", ENGINE],
                                   capture_output=True, text=True, timeout=240, cwd=ROOT)
        assert completed.returncode == code, completed.stdout + completed.stderr
        assert "Traceback" not in completed.stdout + completed.stderr


@pytest.mark.parametrize("sent,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_from_outside_stop_the_sweep_with_its_summary_written(tmp_path, sent, code):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "crashsweep", "sweep", "--ops", "400", "--out", str(out),
                                "--jobs", "2", "--quiet", "--minimize", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    results = out / "results.jsonl"
    while time.monotonic() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 40):
        time.sleep(0.1)
    process.send_signal(sent)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stdout + stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["distinct_states"] < summary["distinct_states_planned"]
    assert "Traceback" not in stdout + stderr
