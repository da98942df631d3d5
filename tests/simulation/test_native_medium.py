"""The native medium end to end: a C engine compiled here, real engines (LevelDB, LMDB, SQLite's own VFS),
and two independent interpositions that must agree (DESIGN §3: the native medium checks the in-process one)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crashsweep import api
from tests.simulation.planned_sweep import planned_sweep, state_results

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


@pytest.mark.parametrize("engine", [f"{FS_ENGINES}:RenameWithoutFsync", f"{FS_ENGINES}:LinkCommit",
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
    # Findings in the engine's own terms on both: the same exceptions of the engine's and the same engine lines
    # (the native host tells a Python engine's lines in-band; the model's file objects write when the real ones do).
    assert _raised(model) == _raised(native), (_raised(model), _raised(native))
    assert _lines(model) == _lines(native), (_lines(model), _lines(native))
    if engine.endswith(":RenameWithoutFsync"):
        titles = {entry["title"] for entry in model.summary["classes"]}
        assert titles == {entry["title"] for entry in native.summary["classes"]} and _lines(model), titles


@pytest.mark.parametrize("engine", [f"{FS_ENGINES}:WrongOrderTwoFiles", "dbm-dumb", "tinydb",
                                    os.path.join(ROOT, "tests", "engines", "json_kv.py") + ":JsonKV",
                                    f"{FS_ENGINES}:TornAppendNoChecksum", f"{FS_ENGINES}:ChecksummedLog",
                                    f"{FS_ENGINES}:InPlaceUpdate", f"{FS_ENGINES}:MissingDirectoryFsync"])
def test_the_model_records_the_calls_the_engine_really_makes(engine):
    """A crash state is made of the micro-ops a run recorded: the file-system model must record what the same
    Python engine's system calls do on a real file system (strace, the native medium's recording), micro-op by
    micro-op: every write with its offset and bytes (none split or merged otherwise), size change, link, unlink,
    rename and sync. Python's file objects decide where a write reaches the OS (their buffer, sized by
    `st_blksize`; when it fills; flush and close), so the model's must be CPython's own, given the real block
    size. Inode numbers differ between the two; they are compared in order of first appearance."""
    from crashsweep import cli
    from crashsweep.crash_explorer._recording import record

    def micro_ops(*medium: str) -> list[tuple]:
        spec = cli.spec_from_args(cli.parse_with_settings(["sweep", "--engine", engine, "--ops", "24", *medium]))
        numbers: dict[int, int] = {}

        def number(inode: int) -> int:
            return numbers.setdefault(inode, len(numbers)) if inode else -1
        return [(op.kind, number(op.inode), number(op.directory), op.name, number(op.directory2), op.name2,
                 op.offset, bytes(op.data), op.size, op.entry_kind) for op in record(spec).log.ops]

    model, native = micro_ops(), micro_ops("--medium", "native")
    writes = [(op[6], len(op[7])) for op in model if op[0] == "write"]
    assert writes == [(op[6], len(op[7])) for op in native if op[0] == "write"], "writes split or merged otherwise"
    assert model == native and len(writes) > 3


_INDEX = st.sampled_from((0, 0, 0, 1, 2))    # most calls on the first file opened
_OPEN = st.tuples(st.just("open"), st.sampled_from(("a", "b", "sub/c")),
                  st.sampled_from(("w", "wb", "a", "ab", "r+", "r+b", "w+", "w+b", "a+b", "x", "xb")),
                  st.sampled_from((-1, -1, 0, 1, 64, 4096, 10000)))
_OS_OPEN = st.tuples(st.just("os_open"), st.sampled_from(("a", "b", "d/e")),
                     st.sampled_from(("create", "trunc", "append", "read")))
_SCRIPT_CALLS = st.one_of(
    _OPEN,
    *[st.tuples(st.just("write"), _INDEX, st.sampled_from((0, 1, 7, 100, 4095, 4096, 4097, 8191, 9000, 20000)),
                st.integers(0, 9))] * 4,
    st.tuples(st.just("lines"), _INDEX, st.lists(st.sampled_from((0, 3, 80, 5000)), max_size=4)),
    st.tuples(st.just("flush"), _INDEX), st.tuples(st.just("read"), _INDEX, st.sampled_from((-1, 1, 5000))),
    st.tuples(st.just("seek"), _INDEX, st.sampled_from((0, 5, 4000, 9000)), st.sampled_from((0, 1, 2))),
    st.tuples(st.just("truncate"), _INDEX, st.sampled_from((None, 0, 3, 5000))),
    st.tuples(st.just("fsync"), _INDEX), st.tuples(st.just("close"), _INDEX),
    st.tuples(st.just("rename"), st.sampled_from(("a", "b")), st.sampled_from(("a", "b", "sub/c"))),
    st.tuples(st.just("unlink"), st.sampled_from(("a", "b"))),
    st.tuples(st.just("mkdir"), st.sampled_from(("sub", "d"))), st.tuples(st.just("rmdir"), st.sampled_from(("sub", "d"))),
    st.tuples(st.just("link"), st.sampled_from(("a", "b")), st.sampled_from(("b", "d/e"))),
    st.tuples(st.just("path_write"), st.sampled_from(("a", "b", "d/e")), st.sampled_from((0, 5, 4096, 9001))),
    st.tuples(st.just("copy"), st.sampled_from(("a", "b")), st.sampled_from(("b", "d/e"))),
    st.tuples(st.just("dir_fsync")),
    _OS_OPEN,
    *[st.tuples(st.just("os_write"), _INDEX, st.sampled_from((1, 100, 5000)))] * 2,
    st.tuples(st.just("os_pwrite"), _INDEX, st.sampled_from((1, 100, 5000)), st.sampled_from((0, 7, 9000))),
    st.tuples(st.just("os_ftruncate"), _INDEX, st.sampled_from((0, 10, 6000))),
    st.tuples(st.just("os_fsync"), _INDEX), st.tuples(st.just("os_fdatasync"), _INDEX),
    st.tuples(st.just("os_close"), _INDEX))


def _scripted_micro_ops(script: list, *medium: str) -> list[tuple]:
    from crashsweep import cli
    from crashsweep.crash_explorer._recording import record
    argv = ["sweep", "--engine", f"{FS_ENGINES}:ScriptedFiles",
            "--ops", "12", "--option", "script=" + json.dumps(script), *medium]
    numbers: dict[int, int] = {}

    def number(inode: int) -> int:
        return numbers.setdefault(inode, len(numbers)) if inode else -1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # "line buffering isn't supported in binary mode"
        log = record(cli.spec_from_args(cli.parse_with_settings(argv))).log
    return [(op.kind, number(op.inode), number(op.directory), op.name, number(op.directory2), op.name2, op.offset,
             bytes(op.data), op.size, op.entry_kind) for op in log.ops]


@settings(max_examples=int(os.environ.get("CRASHSWEEP_CALLS_EXAMPLES", "25")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(st.builds(lambda first, second, rest: [first, second, *rest], _OPEN, _OS_OPEN,
                 st.lists(_SCRIPT_CALLS, min_size=3, max_size=12)))
@example([("open", "a", "w", -1), ("write", 0, 9000, 1), ("write", 0, 7, 2), ("lines", 0, [80, 5000]),
          ("open", "sub/c", "a+b", 64), ("write", 1, 4097, 3), ("seek", 1, 5, 0), ("write", 1, 100, 4),
          ("truncate", 1, None), ("fsync", 1), ("rename", "a", "b")])
@example([("os_open", "a", "append"), ("link", "a", "b"), ("unlink", "a")])      # found by this test: "unlink b"
@example([("open", "a", "w", -1), ("os_open", "a", "create"), ("os_pwrite", 0, 1, 9000), ("link", "a", "b")])
@example([("open", "a", "w", -1), ("path_write", "a", 5), ("copy", "a", "b")])   # found: sendfile's "[0] => [5]"
@example([("os_open", "a", "create"), ("link", "a", "b"), ("rename", "a", "b")])   # found: both renamed a no-op
@example([("mkdir", "sub"), ("rmdir", "sub")])                 # found by this test: a link wrote the file again;
def test_generated_file_calls_are_recorded_as_the_system_makes_them(script):      # rmdir logged a file's unlink
    """The same mechanism over call sequences no engine here makes: Python file calls (every open mode, buffer
    sizes around the block size, text and bytes, writelines, flush, seek, read, truncate, fsync, rename), run by
    one engine on the model and on a real directory under strace, must give the same micro-ops; and the `os`
    level (descriptors, pwrite, ftruncate, fdatasync, mkdir, rmdir, link, a directory's fsync), pathlib, shutil."""
    model = _scripted_micro_ops(script)
    assert model == _scripted_micro_ops(script, "--medium", "native")


@pytest.mark.long
def test_many_generated_file_call_sequences_are_recorded_as_the_system_makes_them():
    settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))(
        given(st.builds(lambda first, second, rest: [first, second, *rest], _OPEN, _OS_OPEN,
                        st.lists(_SCRIPT_CALLS, min_size=3, max_size=16)))(
            test_generated_file_calls_are_recorded_as_the_system_makes_them.hypothesis.inner_test))()


def test_sweeping_many_engines_in_one_process_keeps_a_bounded_pool_of_hosts():
    """A kept host serves one engine and options. A process that sweeps many in turn (a test suite, the API in a
    loop) keeps at most POOLED_MAX of them: before, each distinct options kept its own host, its pipes and files
    for good, until `select` met a descriptor over 1024 and every later state failed as if its engine had."""
    from crashsweep.engines import _native

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))
    for round in range(_native.POOLED_MAX + 6):
        _scripted_micro_ops([("open", "a", "w", -1), ("write", 0, round, 0)], "--medium", "native")
        if round == 0:
            first = descriptors()
    assert len(_native.pooled_hosts()) <= _native.POOLED_MAX
    assert descriptors() <= first + 4 * _native.POOLED_MAX


def test_waiting_on_a_descriptor_numbered_past_1024_works():
    """`select.select` raises ValueError for descriptors from 1024; the harness waits with `poll`."""
    import resource
    from crashsweep.disk_model._fds import readable
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2100:
        pytest.skip(f"this machine allows {hard} descriptors")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2100), hard))
    read_end, write_end = os.pipe()
    high = 2000
    try:
        os.dup2(read_end, high)
        assert not readable(high, 0.01)
        os.write(write_end, b"x")
        assert readable(high, 1.0)
        os.close(write_end)
        os.read(high, 1)
        assert readable(high, 1.0)          # the end of the pipe is readable too
    finally:
        for fd in (read_end, high):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


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


@pytest.mark.long
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


@pytest.mark.long
def test_a_native_sweep_resumes_on_its_own_recording(kv_binary, tmp_path):
    engine = f"exec:{kv_binary} {{dir}} --bug=no-fsync"
    out = str(tmp_path / "report")
    first = api.sweep(engine, out=out, ops=10, crash_depth=0, budget_states=40)
    resumed = api.sweep(engine, out=out, ops=10, crash_depth=0, resume=True)
    whole = api.sweep(engine, out=str(tmp_path / "whole"), ops=10, crash_depth=0)
    assert first.summary["distinct_states"] == 40
    assert resumed.summary["distinct_states"] == whole.summary["distinct_states"]
    assert resumed.summary["violations"] == whole.summary["violations"]


# A store on the line protocol written in Python, with the bug of tests/engines' RenameWithoutFsync: it renames
# its rewritten file over the old one without fsyncing it. It refuses to open unless the user's own
# sitecustomize ran (crashsweep's, which tells the program's lines, must not replace it).
PYTHON_PROGRAM = '''#!/usr/bin/env python3
import builtins, json, os, sys
directory = sys.argv[1]
path = os.path.join(directory, "data.json")
data = {}
def save():
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle)
    os.rename(path + ".tmp", path)
def answer(text):
    sys.stdout.write(text + "\\n"); sys.stdout.flush()
for line in sys.stdin:
    words = line.split()
    if words[0] == "open":
        if not getattr(builtins, "USER_SITE_RAN", False):
            answer("error the user's sitecustomize did not run"); continue
        if os.path.exists(path):
            with open(path) as handle:
                data = json.load(handle)
        answer("ok items")
    elif words[0] in ("put", "delete"):
        if words[0] == "put":
            data[words[1]] = words[2]
        else:
            data.pop(words[1], None)
        save()
        answer("ok")
    elif words[0] == "get":
        answer("value " + data[words[1]] if words[1] in data else "none")
    elif words[0] == "items":
        answer("items " + " ".join(f"{key}:{value}" for key, value in data.items()))
    else:
        answer("ok")
'''


@pytest.mark.parametrize("command", ["python3 kv.py {dir}", pytest.param("./kv.py {dir}", marks=pytest.mark.long)])
def test_an_exec_python_program_is_run_from_where_you_are_and_named_by_its_own_lines(tmp_path, command):
    """The command means what it means in the user's shell (relative paths from the directory crashsweep runs
    in, though the program runs in the state's directory); a Python program, by interpreter or by `#!`, gets
    its source lines in findings (told in-band, as the native host tells a hosted engine's), and the
    sitecustomize the user already has still runs."""
    program = tmp_path / "kv.py"
    program.write_text(PYTHON_PROGRAM)
    program.chmod(0o755)
    user_site = tmp_path / "site"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITE_RAN = True\n")
    environment = {**os.environ, "PYTHONPATH": str(user_site)}
    done = subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine", f"exec:{command}", "--ops", "4",
                           "--crash-depth", "0", "--budget-states", "60", "--minimize", "0", "--no-corpus",
                           "--quiet", "--out", "report"], capture_output=True, text=True, cwd=tmp_path,
                          env=environment, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    kinds = _kinds_of(summary)
    assert "lost-synced-data" in kinds and "engine-error" not in kinds, summary["classes"]
    lines = {line for entry in summary["classes"] for line in re.findall(r"kv\.py:\d+", entry["title"])}
    assert lines and lines <= {"kv.py:7", "kv.py:8", "kv.py:9", "kv.py:19"}, [entry["title"] for entry in summary["classes"]]
    # It died of an exception: the class names the exception and the line, from the traceback on its stderr.
    assert "recovery-error: JSONDecodeError at kv.py:19" in {entry["title"] for entry in summary["classes"]}
    # Every printed replay command works as printed: a program runs only when named, so the command names it.
    junit = (tmp_path / "report" / "junit.xml").read_text()
    replay = re.search(r"replay: (crashsweep replay .*)", junit).group(1).replace("&apos;", "'")
    assert f"--engine 'exec:{command}'" in replay and f"--engine 'exec:{command}'" in \
        (tmp_path / "report" / "index.html").read_text().replace("&#39;", "'")
    replayed = subprocess.run([sys.executable, "-m", *shlex.split(replay)], capture_output=True, text=True,
                              cwd=tmp_path, env=environment, timeout=300)
    assert replayed.returncode == 1 and "reproduced" in replayed.stdout + replayed.stderr, replayed.stderr


def _kinds_of(summary) -> set[str]:
    return {entry["kind"] for entry in summary["classes"]}


def test_kept_hosts_are_never_taken_for_an_engine_s_leftover_processes(tmp_path):
    """A state crashed again holds its kept host while its nested states use a second one; both go back to the
    pool. (One was forgotten alive, and the worker then killed it as a process the engine had left behind:
    a false warning on every such state, and a host started anew for each.)"""
    outcome = api.sweep(f"{FS_ENGINES}:RenameWithoutFsync", out=str(tmp_path / "report"), medium="native", ops=6,
                        crash_depth=1, budget_states=40, minimize=0)
    assert outcome.summary["nested_states"] > 0, outcome.summary
    results = (tmp_path / "report" / "results.jsonl").read_text().splitlines()[1:]
    assert not [line for line in results if json.loads(line).get("leftovers")]
    assert not any("left processes" in warning for warning in outcome.summary.get("warnings", []))


def test_a_native_sweep_leaves_no_state_directories_behind(tmp_path):
    """Every state's directory goes when its engine is let go (the next state's, prepared while the engine
    worked, too), and the work directory of every process the sweep started goes when that process ends
    (workers and contained children end without their atexit hooks)."""
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine", f"{FS_ENGINES}:RenameWithoutFsync",
                           "--medium", "native", "--ops", "6", "--budget-states", "60", "--work-dir", str(work),
                           "--out", str(tmp_path / "report")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode in (0, 1), done.stderr
    assert sorted(os.listdir(work)) == []


def _state_results(argv: list[str]):
    """A function giving every state's result of the sweep `crashsweep sweep ARGV` (timings left out), each
    time it is called: the same planned states, run again."""
    _, units = planned_sweep(argv)
    return lambda: state_results(units)


def test_preparing_the_next_state_while_the_engine_works_changes_no_result(monkeypatch):
    """The native medium writes state k+1's directory while state k's engine works, and its kept host cleans
    up a dropped state while idle: every state's result is the one-at-a-time result."""
    from crashsweep.crash_explorer.media import NativeMedium

    results = _state_results(["--engine", f"{FS_ENGINES}:RenameWithoutFsync", "--medium", "native", "--ops", "8",
                              "--crash-depth", "0"])
    ahead = results()
    monkeypatch.setattr(NativeMedium, "prepares_ahead", False)
    one_at_a_time = results()
    assert len(ahead) > 50 and any(result["kind"] for result in ahead)
    assert ahead == one_at_a_time


def _with_and_without_the_host_s_continuation(monkeypatch, argv: list[str]) -> tuple[list, list, int]:
    """Every state's result of a sweep with kept hosts running the continuation themselves, then sending its
    operations one request at a time; and how many continuations the hosts ran."""
    from crashsweep.engines._native import NativeEngine

    results = _state_results(argv)
    adopted = []
    adopt = NativeEngine._adopt
    monkeypatch.setattr(NativeEngine, "_adopt", lambda self, *args: adopted.append(1) or adopt(self, *args))
    ahead = results()
    monkeypatch.setattr(NativeEngine, "plan_continuation", lambda self, *args: None)
    return ahead, results(), len(adopted)


@pytest.mark.parametrize("engine, depth", [(f"{FS_ENGINES}:StaleAfterRecovery", 0),
                                           (f"{FS_ENGINES}:SyncFailsAfterRecovery", 0),
                                           pytest.param(f"{FS_ENGINES}:RenameWithoutFsync", 0,
                                                        marks=pytest.mark.long),
                                           pytest.param(f"{FS_ENGINES}:StaleAfterRecovery", 1,
                                                        marks=pytest.mark.long),
                                           pytest.param("lmdb", 0, marks=pytest.mark.long)])
def test_a_kept_host_running_the_continuation_itself_changes_no_result(monkeypatch, engine, depth):
    """A kept host runs the explorer's continuation right after the read-out when the state will be continued
    (`plan_continuation`: the same rule and operations, reference/_continuation.py): every state's result is the
    one the explorer gets sending the operations one request at a time — wrong reads and errors in the
    continuation included — and the host did run them for the states that were continued."""
    if engine == "lmdb":
        pytest.importorskip("lmdb")
    argv = ["--engine", engine, "--ops", "8" if depth else "12", "--crash-depth", str(depth)]
    ahead, one_request_at_a_time, adopted = _with_and_without_the_host_s_continuation(
        monkeypatch, argv + ([] if engine == "lmdb" else ["--medium", "native"]))
    assert adopted, "the host ran no continuation"
    assert len(ahead) > 20 and any(result.get("continued") for result in ahead)
    if "AfterRecovery" in engine:      # these fail only in the continuation: its findings are compared too
        assert any("continuation" in (result.get("detail") or "") for result in ahead), \
            {result["kind"] for result in ahead}
    assert ahead == one_request_at_a_time


@pytest.mark.parametrize("mode", ["kill", "raise", pytest.param("exit", marks=pytest.mark.long)])
def test_an_engine_that_dies_or_raises_in_the_host_s_continuation_gets_the_same_result(monkeypatch, mode):
    engine = os.path.join(ROOT, "tests", "engines", "misbehaving.py") + ":Misbehaving"
    ahead, one_request_at_a_time, adopted = _with_and_without_the_host_s_continuation(
        monkeypatch, ["--engine", engine, "--medium", "native", "--ops", "8", "--crash-depth", "0",
                      "--option", f"mode={mode}", "--option", "when=continue"])
    failed = [result for result in ahead if result["kind"] == "recovery-error"]
    assert failed and all("continuation after recovery" in result["detail"] for result in failed), ahead[:3]
    assert ahead == one_request_at_a_time


_LISTED_ENGINE = '''
class Listed:
    """Two keys; `extra` lists a third that get() does not find."""

    def __init__(self, path, extra=False):
        self.pairs = {b"a": b"1", b"b": b"\\x00"}
        self.extra = extra

    def get(self, key):
        return self.pairs.get(key)

    def items(self):
        return sorted(self.pairs.items()) + ([(b"c", b"3")] if self.extra else [])
'''


@pytest.mark.parametrize("keys, extra, shortened", [(["61", "62"], False, True),
                                                    (["61", "62", "7a"], False, True),    # a key read as none
                                                    (["62", "61"], False, False),         # another order
                                                    (["61"], False, False),               # a pair not read
                                                    (["61", "62"], True, False)])         # a pair get() misses
def test_a_kept_host_shortens_items_only_when_they_are_the_values_just_read(tmp_path, keys, extra, shortened):
    """`items =` is answered `items =` only when the pairs are exactly the values `getmany` read, in its
    order, those that exist; else with every pair."""
    import io

    from crashsweep import _native_host

    (tmp_path / "listed.py").write_text(_LISTED_ENGINE)
    answers = io.BytesIO()
    requests = [f"open {str(tmp_path).encode().hex()} batch".encode(), ("getmany " + " ".join(keys)).encode(),
                b"items =", b"items", b"close"]
    _native_host.serve(f"{tmp_path / 'listed.py'}:Listed", str(tmp_path), {"extra": extra}, requests, answers)
    lines = answers.getvalue().decode().splitlines()
    full = "items 61:31 62:00" + (" 63:33" if extra else "")
    assert lines[2] == ("items =" if shortened else full)
    assert lines[3] == full                     # plain `items`: every pair, always


def test_items_read_off_the_getmany_answers_change_no_result(monkeypatch):
    """A kept host's `items =` and the full `items` answer give every state the same result."""
    from crashsweep.engines._native import NativeEngine

    pytest.importorskip("lmdb")
    results = _state_results(["--engine", "lmdb", "--ops", "10", "--crash-depth", "0"])
    shortened = []
    pairs = NativeEngine._pairs
    monkeypatch.setattr(NativeEngine, "_pairs", lambda self, answer: shortened.append(answer) or pairs(self, answer))
    short = results()
    assert not shortened, "a kept host sent every pair although they were the values read"
    monkeypatch.setattr(NativeEngine, "POOLED_ITEMS", "items")
    full = results()
    assert shortened and len(short) > 20 and any(result.get("continued") for result in short)
    assert short == full


def _idle_work_always_runs(monkeypatch) -> None:
    """The harness writes the next state's directory while it waits on an engine's answer, when that answer is
    not there yet (`_native._run_idle`): whether it is there depends on how the two processes were scheduled,
    so on a loaded machine the next state may not be written ahead. Here a zero-time poll always says "not
    yet": the work ahead is done every time, as on an idle machine (the waits with a time limit are real)."""
    from crashsweep.engines import _native

    real = _native.readable
    monkeypatch.setattr(_native, "readable", lambda fd, timeout_s: False if timeout_s == 0 else real(fd, timeout_s))


def _with_and_without_opening_ahead(monkeypatch, argv: list[str]):
    """(every state's result with a kept host sent the next state's `open` with this state's `drop`, how many
    states adopted such an open, every state's result without it)."""
    from crashsweep.crash_explorer.media import _native as native_medium
    from crashsweep.engines._native import NativeEngine

    _idle_work_always_runs(monkeypatch)

    results = _state_results(argv)
    adopted, released = [], []
    start, release = NativeEngine._start_hosted, NativeEngine._release_early
    monkeypatch.setattr(NativeEngine, "_start_hosted",
                        lambda self, command: (start(self, command), adopted.append(self._preopened))[0])
    monkeypatch.setattr(NativeEngine, "_release_early",
                        lambda self: (release(self), released.append(self._released))[0])
    ahead = results()
    assert sum(released) > len(released) // 2, "hosts that ran the continuation were not dropped at once"
    monkeypatch.setattr(native_medium, "_next_prepared", lambda target: None)
    monkeypatch.setattr(NativeEngine, "_release_early", lambda self: None)
    return ahead, sum(adopted), results()


def test_a_kept_host_opening_the_next_state_with_the_drop_changes_no_result(monkeypatch):
    """A unit's next state, already written, is opened by the kept host right after this state's `drop` (one
    write), while the harness finishes this state — the `drop` sent as soon as the continuation the host ran
    is read, before it is judged: every state's result is the one opened in its own turn, dropped after."""
    ahead, adopted, in_turn = _with_and_without_opening_ahead(
        monkeypatch, ["--engine", f"{FS_ENGINES}:RenameWithoutFsync", "--medium", "native", "--ops", "8",
                      "--crash-depth", "0"])
    assert len(ahead) > 50 and any(result["kind"] for result in ahead)
    assert adopted > len(ahead) // 2, adopted
    assert ahead == in_turn


def test_a_state_opened_ahead_that_never_comes_costs_its_host_not_a_result(monkeypatch):
    """A unit cut short after its host was sent the next state's `open` (the directory is then removed): the
    next state to come, another one, gets a new host, and every result is the one opened in its own turn."""
    from crashsweep.crash_explorer._worker import run_unit
    from crashsweep.engines import _native

    _, units = planned_sweep(["--engine", f"{FS_ENGINES}:RenameWithoutFsync", "--medium", "native", "--ops", "8",
                              "--crash-depth", "0"])
    expected = state_results(units)
    _idle_work_always_runs(monkeypatch)
    states = run_unit(units[0])
    for _ in range(3):
        next(states)
    assert any(host.preopened for hosts in _native._pool.values() for host in hosts)
    states.close()                       # the unit ends: its next state's directory is removed, never opened
    killed = []
    kill = _native._PooledHost.kill
    monkeypatch.setattr(_native._PooledHost, "kill", lambda self: killed.append(self) or kill(self))
    assert state_results(units[1:]) == expected[len(units[0]["states"]):]
    assert killed
