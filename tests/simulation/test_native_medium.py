"""The native medium end to end: a C engine compiled here, real engines (LevelDB, LMDB, SQLite's own VFS),
and two independent interpositions that must agree (DESIGN §3: the native medium checks the in-process one)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from crashsweep import api

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FS_ENGINES = os.path.join(ROOT, "tests", "engines", "fs_engines.py")
pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def kv_binary(tmp_path_factory):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    binary = str(tmp_path_factory.mktemp("kv") / "kv")
    subprocess.run([compiler, "-O2", "-Wall", "-o", binary, os.path.join(ROOT, "examples", "native", "kv.c")],
                   check=True)
    return binary


def _kinds(outcome) -> set[str]:
    return {entry["kind"] for entry in outcome.summary["classes"]}


@pytest.mark.parametrize("bug, kind", [("", None),
                                       pytest.param(" --bug=no-fsync", "lost-synced-data", marks=pytest.mark.long),
                                       pytest.param(" --bug=no-checksum", None, marks=pytest.mark.long)])
def test_c_engine_over_the_line_protocol(kv_binary, tmp_path, bug, kind):
    outcome = api.sweep(f"exec:{kv_binary} {{dir}}{bug}", out=str(tmp_path / "report"), ops=12, crash_depth=0)
    violations = outcome.summary["violations"]
    if not bug:
        assert violations == 0 and outcome.summary["distinct_states"] > 50
    else:
        assert violations > 0
        if kind is not None:
            assert kind in _kinds(outcome)
        trace = json.load(open(outcome.traces[0]))
        assert trace["spec"]["recorded"], "a native trace keeps its recorded I/O log"


@pytest.mark.long
def test_a_native_trace_replays_its_recorded_state(kv_binary, tmp_path):
    engine = f"exec:{kv_binary} {{dir}} --bug=no-fsync"
    outcome = api.sweep(engine, out=str(tmp_path / "report"), ops=10, crash_depth=0)
    assert outcome.traces
    replay = subprocess.run(["crashsweep", "replay", outcome.traces[0], "--engine", engine],
                            capture_output=True, text=True, cwd=tmp_path)
    assert replay.returncode == 1, replay.stdout + replay.stderr      # the violation reproduced


@pytest.mark.parametrize("engine", [f"{FS_ENGINES}:RenameWithoutFsync",
                                    pytest.param(f"{FS_ENGINES}:AtomicReplace", marks=pytest.mark.long),
                                    pytest.param(f"{FS_ENGINES}:ChecksummedLog", marks=pytest.mark.long),
                                    pytest.param(f"{FS_ENGINES}:TornAppendNoChecksum", marks=pytest.mark.long),
                                    pytest.param("dbm-dumb", marks=pytest.mark.long),
                                    pytest.param("tinydb", marks=pytest.mark.long)])
def test_python_path_engines_get_the_same_verdicts_in_process_and_native(tmp_path, engine):
    settings = dict(ops=10, crash_depth=0, minimize=0)      # verdicts are compared, not minimized traces
    model = api.sweep(engine, out=str(tmp_path / "model"), **settings)
    native = api.sweep(engine, out=str(tmp_path / "native"), medium="native", **settings)
    assert (model.summary["violations"] > 0) == (native.summary["violations"] > 0), (model.summary, native.summary)
    assert _kinds(model) == _kinds(native)
    # Findings in the engine's own terms on both: the same exceptions of the engine's, and every engine line the
    # model names in a finding named natively too (the native host tells a Python engine's lines in-band). Native
    # may name more: the real `io` flushes a large buffered write inside `write`, `_pyio` at `close`.
    assert _raised(model) == _raised(native), (_raised(model), _raised(native))
    assert _lines(model) <= _lines(native), (_lines(model), _lines(native))
    if engine.endswith(":RenameWithoutFsync"):
        titles = {entry["title"] for entry in model.summary["classes"]}
        assert titles == {entry["title"] for entry in native.summary["classes"]} and _lines(model), titles


def _raised(outcome) -> set[str]:
    """The engine exceptions that recovery-error classes name ("JSONDecodeError"), without their lines."""
    return {re.sub(r" at \S+$", "", entry["title"]) for entry in outcome.summary["classes"]
            if entry["kind"] == "recovery-error"}


def _lines(outcome) -> set[str]:
    """The engine's source lines named in the titles of the failure classes."""
    return {line for entry in outcome.summary["classes"] for line in re.findall(r"[\w./-]+\.py:\d+", entry["title"])}


@pytest.mark.long
@pytest.mark.parametrize("fs_model", ["posix", "ext4-ordered", "strict"])
@pytest.mark.parametrize("journal_mode, synchronous", [(mode, level) for mode in ("delete", "truncate", "persist", "wal")
                                                       for level in ("off", "normal", "full", "extra")])
def test_sqlite_through_apsw_and_sqlite_native_agree(tmp_path, journal_mode, synchronous, fs_model):
    """Every journal mode x synchronous setting under each persistence model."""
    options = {"journal_mode": journal_mode, "synchronous": synchronous}
    settings = dict(ops=8, crash_depth=0, minimize=0, fs_model=fs_model)
    model = api.sweep("sqlite", out=str(tmp_path / "model"), options=options, **settings)
    native = api.sweep("sqlite-native", out=str(tmp_path / "native"), options=options, **settings)
    assert (model.summary["violations"] > 0) == (native.summary["violations"] > 0), (model.summary, native.summary)
    assert _kinds(model) == _kinds(native)


@pytest.mark.long
@pytest.mark.parametrize("engine, options", [("lmdb", {}), ("leveldb", {"sync_writes": "true"}), ("rocksdb", {})])
def test_real_native_engines_run(tmp_path, engine, options):
    pytest.importorskip({"lmdb": "lmdb", "leveldb": "plyvel", "rocksdb": "rocksdict"}[engine])
    outcome = api.sweep(engine, out=str(tmp_path / "report"), options=options, ops=8, crash_depth=0,
                        budget_states=200)
    assert 10 < outcome.summary["distinct_states"] <= 200


NONCE_ENGINE = '''
import os


class NonceLog:
    """Appends records to a log named by a random nonce; sync() forgets to fsync (a bug)."""

    def __init__(self, path):
        names = [name for name in os.listdir(path) if name.startswith("log-")]
        self.file = os.path.join(path, names[0] if names else "log-" + os.urandom(4).hex())
        self.data = {}
        if os.path.exists(self.file):
            for line in open(self.file, "rb").read().split(b"\\n")[:-1]:
                key, _, value = line.partition(b"=")
                self.data[bytes.fromhex(key.decode())] = bytes.fromhex(value.decode())

    def put(self, key, value):
        with open(self.file, "ab") as handle:
            handle.write(key.hex().encode() + b"=" + value.hex().encode() + b"\\n")
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.put(key, b"")
        self.data.pop(key, None)

    def sync(self):
        pass

    def close(self):
        pass
'''


def test_replay_says_when_a_new_recording_differs_and_uses_the_trace_s_own(tmp_path):
    engine_file = tmp_path / "nonce_log.py"
    engine_file.write_text(NONCE_ENGINE)
    engine = f"{engine_file}:NonceLog"
    outcome = api.sweep(engine, out=str(tmp_path / "report"), medium="native", ops=6, crash_depth=0)
    assert outcome.traces, outcome.summary
    replay = subprocess.run(["crashsweep", "replay", outcome.traces[0], "--engine", engine],
                            capture_output=True, text=True, cwd=tmp_path)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "a new recording of this workload differs from the trace's" in replay.stdout + replay.stderr


def test_a_native_sweep_resumes_on_its_own_recording(kv_binary, tmp_path):
    engine = f"exec:{kv_binary} {{dir}} --bug=no-fsync"
    out = str(tmp_path / "report")
    first = api.sweep(engine, out=out, ops=10, crash_depth=0, budget_states=40)
    resumed = api.sweep(engine, out=out, ops=10, crash_depth=0, resume=True)
    whole = api.sweep(engine, out=str(tmp_path / "whole"), ops=10, crash_depth=0)
    assert first.summary["distinct_states"] == 40
    assert resumed.summary["distinct_states"] == whole.summary["distinct_states"]
    assert resumed.summary["violations"] == whole.summary["violations"]
