"""End-to-end CLI: the real `crashsweep` entry point, exit codes, and every bad-input path."""

import json
import os
import subprocess
import sys

import pytest

from crashsweep.cli import main

FAST = ["--engine", "example-wal", "--option", "checkpoint_sectors=16", "--option", "log_sectors=16", "--option", "checkpoint_every_syncs=2",
        "--ops", "40", "--jobs", "2", "--quiet"]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "crashsweep", *args], capture_output=True, text=True, timeout=300)


def test_sweep_of_correct_engine_exits_zero_and_writes_outputs(tmp_path):
    out = tmp_path / "report"
    completed = run_cli("sweep", *FAST, "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    summary = json.loads((out / "summary.json").read_text())
    for field in ("engine", "scenario", "strategy", "seed", "crash_points", "states_explored", "distinct_states",
                  "violations", "elapsed_s", "states_per_s"):
        assert field in summary
    assert summary["violations"] == 0 and summary["distinct_states"] > 0
    assert (out / "results.jsonl").exists() and (out / "junit.xml").exists()
    assert "reproduce the sweep with: crashsweep sweep" in completed.stdout


def test_buggy_engine_exits_one_then_replay_and_minimize(tmp_path):
    out = tmp_path / "report"
    assert main(["sweep", *FAST, "--option", "bug=checkpoint-in-place", "--out", str(out)]) == 1
    traces = sorted((out / "traces").glob("*.json"))
    assert traces
    replay = run_cli("replay", str(traces[0]))
    assert replay.returncode == 1 and "reproduced" in replay.stdout
    minimized = tmp_path / "small.json"
    done = run_cli("minimize", str(traces[0]), "--out", str(minimized), "--budget-seconds", "60")
    assert done.returncode == 0, done.stderr
    small = json.loads(minimized.read_text())
    assert small["minimized"]["ops_after"] < small["minimized"]["ops_before"]
    assert run_cli("replay", str(minimized)).returncode == 1


def test_replay_of_a_trace_that_no_longer_fails_exits_zero(tmp_path):
    out = tmp_path / "report"
    main(["sweep", *FAST, "--option", "bug=checkpoint-in-place", "--out", str(out)])
    trace_path = sorted((out / "traces").glob("*.json"))[0]
    trace = json.loads(trace_path.read_text())
    trace["spec"]["options"].pop("bug")
    trace_path.write_text(json.dumps(trace))
    completed = run_cli("replay", str(trace_path))
    assert completed.returncode == 0 and "no longer fails" in completed.stdout


@pytest.mark.parametrize("args, message", [
    (["sweep", "--engine", "nope"], "unknown engine 'nope'"),
    (["sweep", "--scenario", "nope"], "unknown scenario 'nope'"),
    (["sweep", "--scenario", "missing.json"], "does not exist"),
    (["sweep", "--strategy", "all"], "invalid choice"),
    (["sweep", "--option", "bug=nope"], "no seeded bug 'nope'"),
    (["sweep", "--option", "fanout=many"], "expected int"),
    (["sweep", "--engine", "example-wal", "--option", "log_sectors=many"], "expected int"),
    (["sweep", "--option", "node_size_bytes=5000"], "multiple of the sector size"),
    (["sweep", "--option", "colour=red"], "has no option 'colour'"),
    (["sweep", "--option", "novalue"], "expected KEY=VALUE"),
    (["sweep", "--faults", "crash,melt"], "unknown fault 'melt'"),
    (["sweep", "--seed", "-3"], "expected a number >= 0"),
    (["sweep", "--jobs", "0"], "expected a number >= 1"),
    (["sweep", "--shard", "3/2"], "need 0 <= I < N"),
    (["sweep", "--sector-size", "1000"], "not a power of two"),
    (["sweep", "--device-sectors", "10"], "needs"),
    (["sweep", "--budget-seconds", "soon"], "expected a number of seconds"),
    (["sweep", "--crash-depth", "9"], "crash-depth must be in"),
    (["replay", "missing-trace.json"], "does not exist"),
    (["minimize", "missing-trace.json"], "does not exist"),
    (["bugs", "--engine", "nope"], "unknown engine"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_two(tmp_path, args, message):
    completed = subprocess.run([sys.executable, "-m", "crashsweep", *args], capture_output=True, text=True,
                               cwd=tmp_path, timeout=60)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in completed.stderr
    assert not (tmp_path / "crashsweep-report").exists()   # nothing written for bad input


def test_out_that_is_a_file_or_unwritable_exits_two(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    for out in (blocker, blocker / "inside"):
        completed = run_cli("sweep", *FAST, "--out", str(out))
        assert completed.returncode == 2 and len(completed.stderr.strip().splitlines()) == 1
        assert "Traceback" not in completed.stderr
    assert blocker.read_text() == "keep me"


def test_malformed_trace_and_scenario_files_exit_two(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args in (["replay", str(bad)], ["sweep", "--scenario", str(bad)]):
        completed = run_cli(*args)
        assert completed.returncode == 2 and len(completed.stderr.strip().splitlines()) == 1


def test_bad_input_does_not_destroy_an_existing_report(tmp_path):
    out = tmp_path / "report"
    assert main(["sweep", *FAST, "--out", str(out)]) == 0
    before = (out / "results.jsonl").read_bytes()
    assert main(["sweep", "--engine", "nope", "--out", str(out)]) == 2
    assert (out / "results.jsonl").read_bytes() == before


def test_bugs_lists_every_seeded_bug():
    completed = run_cli("bugs")
    assert completed.returncode == 0 and "node-written-in-place" in completed.stdout
    assert len(completed.stdout.strip().splitlines()) >= 8
    completed = run_cli("bugs", "--engine", "example-wal")
    assert completed.returncode == 0 and "checkpoint-in-place" in completed.stdout


def test_module_and_console_script_agree():
    assert run_cli("--version").stdout.startswith("crashsweep ")


def test_ctrl_c_keeps_results_valid_and_resume_finishes_the_same_sweep(tmp_path):
    import signal
    import time

    from crashsweep.crash_explorer import read_results
    out = tmp_path / "report"
    args = [sys.executable, "-m", "crashsweep", "sweep", "--ops", "56", "--jobs", "2", "--quiet", "--out", str(out)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not results.exists() or results.read_bytes().count(b"\n") < 20):
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode == 130
    _, partial, _ = read_results(str(results))
    assert 0 < len(partial) and all(r["kind"] is None for r in partial)   # no bogus results from the interrupt
    resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["distinct_states"] == summary["distinct_states_planned"] and summary["completed"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_that_python_loses_still_interrupts_the_sweep():
    """Python raises a signal's KeyboardInterrupt in whatever code runs next; in a `__del__` or a weakref
    callback it is printed and lost. The sweep asks again between results (`raise_if_interrupted`)."""
    import signal
    from crashsweep.crash_explorer._signals import raise_if_interrupted, sigterm_as_interrupt

    class InterruptedWhileCollected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)      # the handler runs here, inside __del__: its exception is lost

    with sigterm_as_interrupt(lambda: set()):
        InterruptedWhileCollected()                  # collected at once: Python prints "Exception ignored"
        with pytest.raises(KeyboardInterrupt):
            raise_if_interrupted()
        raise_if_interrupted()                       # taken once: nothing more to raise


LEAVE_SIGTERM_HANDLING = """
import os, signal, threading, time
from crashsweep.crash_explorer import _signals
_signals.WAIT_INTERVAL_S = 3600.0
with _signals.sigterm_as_interrupt(lambda: set()):
    helper = next(thread for thread in threading.enumerate() if thread.name == "crashsweep-sigterm")
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):                        # interrupted here, once the helper has taken the signal
            time.sleep(0.01)                         # (not in helper.join: Python then marks the helper ended)
        raise SystemExit("SIGTERM inside the context did not interrupt")
    except _signals.Terminated:
        _signals.interrupt_taken()
assert not helper.is_alive()
assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, set())
print("left")
"""


def test_leaving_sigterm_handling_wakes_its_helper_instead_of_waiting_out_its_interval():
    """Every command ends by leaving `sigterm_as_interrupt`, whose helper thread waits in `sigtimedwait`: it
    must be woken, not joined after its interval (here an hour, so leaving would never end in time). SIGTERM
    inside the context still interrupts, and the wake signal ends nothing (a real-time signal nobody handles
    would end the process)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", LEAVE_SIGTERM_HANDLING], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert (done.returncode, done.stdout.strip()) == (0, "left"), done.stderr[-2000:]
