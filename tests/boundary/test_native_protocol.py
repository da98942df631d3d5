"""A native engine (any program on the line protocol) cannot crash, hang or fool crashsweep: an engine that dies
mid-request, answers outside the protocol, hangs, prints more lines than it was asked for, or fails an operation
inside a pipelined sequence costs the states it ran on — each a finding of its own — and the sweep ends with its
exit code and reports. The outcome of a pipelined sequence is the one-by-one outcome: the first failure wins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (.ci/run installs it)")

# A correct store (a JSON file rewritten, fsynced, renamed, directory fsynced) with one misbehaviour, chosen by
# its argument, after it has recovered (so the workload's recording is clean and every state meets it).
ENGINE = textwrap.dedent('''
    import json, os, sys, time
    root, mode = sys.argv[1], sys.argv[2]
    path = os.path.join(root, "db.json")
    data, recovered, continued = {}, False, False
    def save():
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle); handle.flush(); os.fsync(handle.fileno())
        os.rename(path + ".tmp", path)
        fd = os.open(root, os.O_RDONLY); os.fsync(fd); os.close(fd)
    def answer(text):
        sys.stdout.write(text + "\\n"); sys.stdout.flush()
    for line in sys.stdin:
        words = line.split()
        command = words[0]
        after = recovered and os.environ.get("CRASHSWEEP_TEST_AFTER", "1") == "1"
        if command == "open":
            recovered = os.path.exists(path)
            if recovered:
                data = json.load(open(path))
            answer("ok")
        elif command == "put":
            if after and mode == "die-on-put":
                os._exit(7)
            if after and mode == "error-on-second-put" and "continued" not in bytes.fromhex(words[1]).decode():
                answer("error second put refused"); continue
            data[words[1]] = words[2]; save(); answer("ok")
            continued = continued or after
        elif command == "delete":
            if after and mode == "extra-lines":
                answer("ok"); answer("ok")              # two answers to one request: every later one misaligned
                continue
            data.pop(words[1], None); save(); answer("ok")
        elif command == "get":
            if after and mode == "garbage-get":
                answer("maybe"); continue
            if after and mode == "wrong-then-die" and continued:
                answer("none"); os._exit(9)
            value = data.get(words[1])
            answer("none" if value is None else "value " + value)
        elif command == "sync":
            if after and mode == "hang-on-sync":
                time.sleep(3600)
            answer("ok")
        elif command == "items":
            answer("items " + " ".join(f"{k}:{v}" for k, v in data.items()))
        elif command == "close":
            answer("ok"); break
''')


@pytest.fixture(scope="module")
def engine_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("protocol") / "engine.py"
    path.write_text(ENGINE)
    return str(path)


def _sweep(tmp_path, engine_file, mode, *extra):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine",
                           f"exec:{sys.executable} {engine_file} {{dir}} {mode}", "--ops", "6", "--crash-depth", "0", "--budget-states", "40",
                           "--minimize", "0", "--no-corpus", "--quiet", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else None
    return done, summary


def test_a_correct_program_passes(tmp_path, engine_file):
    done, summary = _sweep(tmp_path, engine_file, "none")
    assert done.returncode == 0, done.stdout + done.stderr
    assert summary["violations"] == 0 and summary["distinct_states"] > 5


@pytest.mark.parametrize("mode, outcome", [
    ("die-on-put", "the engine process exited with code 7"),
    pytest.param("garbage-get", "get answered 'maybe'", marks=pytest.mark.long),
    pytest.param("error-on-second-put", "second put refused", marks=pytest.mark.long),
    pytest.param("extra-lines", "get answered 'ok'", marks=pytest.mark.long),
    ("wrong-then-die", None),
])
def test_a_misbehaving_program_is_a_finding_never_a_harness_failure(tmp_path, engine_file, mode, outcome):
    done, summary = _sweep(tmp_path, engine_file, mode)
    assert done.returncode == 1, done.stdout + done.stderr          # findings, not a crash of crashsweep (3)
    assert summary is not None and summary["violations"] > 0
    details = (tmp_path / "report" / "results.jsonl").read_text()
    if outcome is not None:
        assert outcome in details
    if mode == "die-on-put":        # the class says how the program ended, not crashsweep's exception type
        titles = [entry["title"] for entry in summary["classes"]]
        assert titles and all(title.endswith("exited with code 7") for title in titles), titles
    if mode == "wrong-then-die":
        # Pipelined, the engine's death after its wrong answer is read later: the wrong read came first and
        # is the finding, exactly as one request at a time.
        assert {entry["kind"] for entry in summary["classes"]} == {"wrong-read"}, summary["classes"]


def test_a_program_that_hangs_costs_its_states_a_timeout(tmp_path, engine_file):
    # A few states are enough: each one that reaches the hanging sync waits out its whole time limit.
    done, summary = _sweep(tmp_path, engine_file, "hang-on-sync", "--state-timeout", "0.5", "--budget-states", "8")
    assert done.returncode == 1, done.stdout + done.stderr
    assert {entry["kind"] for entry in summary["classes"]} == {"hang"}
    leftover = [name for name in os.listdir("/proc") if name.isdigit()
                and engine_file.encode() in open(f"/proc/{name}/cmdline", "rb").read()] \
        if os.path.isdir("/proc") else []
    assert not leftover, "a hung engine process outlived its sweep"


@pytest.mark.parametrize("command, said", [("./missing {dir}", "missing is not an executable program (relative paths "
                                                               "are taken from "),
                                           ("no-such-program-here {dir}", "is not an executable program (not on PATH)"),
                                           ("./data.txt {dir}", "data.txt is not an executable program")])
def test_a_program_that_cannot_start_is_one_line_and_exit_2(tmp_path, command, said):
    (tmp_path / "data.txt").write_text("not a program")
    done = subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine", f"exec:{command}", "--quiet",
                           "--out", "report"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_python_program_is_known_by_its_interpreter_or_its_first_line(tmp_path):
    from crashsweep.disk_model.native import python_program
    scripts = {"env.py": "#!/usr/bin/env python3\n", "direct": "#!/usr/bin/python3.11 -u\n",
               "split": "#!/usr/bin/env -S pypy3 -O\n", "shell": "#!/bin/sh\necho python\n", "binary": "\x7fELF"}
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    assert python_program(sys.executable) and python_program("python3")
    assert [name for name in scripts if python_program(str(tmp_path / name))] == ["env.py", "direct", "split"]
    assert not python_program("sh") and not python_program(str(tmp_path / "absent"))


def test_a_python_program_s_death_is_told_by_its_last_traceback(tmp_path):
    """The exception it died of (the last of a chain) and its innermost line of its own, not the library's."""
    from crashsweep.engines._native import traceback_reported
    library = os.path.join(os.path.dirname(json.__file__), "decoder.py")
    engine = str(tmp_path / "kv.py")
    text = (f'noise\nTraceback (most recent call last):\n  File "{engine}", line 3, in <module>\n    x = d["k"]\n'
            f'KeyError: \'k\'\n\nDuring handling of the above exception, another exception occurred:\n\n'
            f'Traceback (most recent call last):\n  File "{engine}", line 9, in <module>\n    load()\n'
            f'  File "{engine}", line 5, in load\n    json.loads(text)\n  File "{library}", line 355, in raw_decode\n'
            f'    raise JSONDecodeError("Expecting value", s, err.value) from None\n'
            f'json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)\n')
    kind, site, message = traceback_reported(text)
    assert kind == "JSONDecodeError" and site.endswith("kv.py:5"), (kind, site)
    assert message == "Expecting value: line 1 column 1 (char 0)"
    assert traceback_reported("segmentation fault\n") is None
    assert traceback_reported("Traceback (most recent call last):\n") is None          # cut off: no exception line
