"""Sweeps on a real Dask cluster (a scheduler and two worker processes started here, on localhost) give the
local executor's results state by state, lose and duplicate no state when a worker is killed mid-sweep,
contain engines that kill their process or signal their parent, ship a user's .py engine to workers that do
not have it, and stop on a budget or Ctrl-C with --resume completing them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# How a state ran, not what it found: timings, the engine's output, and whether this process's observation memo
# already knew the answer (which depends on what else the process ran).
TIMING_FIELDS = ("engine_s", "total_s", "output", "memo")


class Cluster:
    """`dask scheduler` and `dask worker` processes, each in a session of its own (so a test can kill one)."""

    def __init__(self, directory, workers: int = 2):
        self.directory = directory
        directory.mkdir(exist_ok=True)
        self.scheduler_file = str(directory / "scheduler.json")
        self.processes = [self._start("distributed.cli.dask_scheduler", "--port", "0", "--dashboard-address", ":0")]
        deadline = time.monotonic() + 60
        while not os.path.exists(self.scheduler_file):
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        self.address = json.loads(open(self.scheduler_file).read())["address"]
        self.workers = [self._start("distributed.cli.dask_worker", "--nthreads", "1", "--no-dashboard",
                                    "--name", f"w{index}") for index in range(workers)]
        self.processes += self.workers
        with distributed.Client(self.address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)

    def _start(self, module, *arguments):
        # Workers start in another directory than the sweeps: a .py engine reaches them only by being shipped.
        return subprocess.Popen([sys.executable, "-m", module, "--scheduler-file", self.scheduler_file, *arguments],
                                cwd="/", start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)))

    def kill_worker(self, index: int) -> None:
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait()

    def stop(self) -> None:
        """SIGTERM first: a worker's nanny then ends its worker and releases what it holds (SIGKILL to the
        whole group left the worker's multiprocessing semaphores in /dev/shm, a dozen per cluster)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)      # whatever is left of its session
            except OSError:
                pass
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = Cluster(tmp_path_factory.mktemp("dask"))
    yield started
    started.stop()


def _sweep(out, *arguments, executor=(), timeout=300, wait=True):
    command = [sys.executable, "-m", "crashsweep", "sweep", "--out", str(out), "--no-corpus", "--quiet",
               "--minimize", "0", *arguments, *executor]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _results(out) -> dict[int, dict]:
    with open(os.path.join(out, "results.jsonl")) as handle:
        lines = [json.loads(line) for line in handle.read().splitlines()[1:]]
    states = [line["state"] for line in lines]
    assert len(states) == len(set(states)), "a state was reported twice"
    return {line["state"]: {k: v for k, v in line.items() if k not in TIMING_FIELDS} for line in lines}


def _same_results(local_out, dask_out) -> None:
    local, remote = _results(local_out), _results(dask_out)
    assert set(local) == set(remote)
    different = [state for state in local if local[state] != remote[state]]
    assert not different, (local[different[0]], remote[different[0]])


BUGGY = ("--engine", "tests/engines/fs_engines.py:RenameWithoutFsync", "--ops", "8")
BETREE = ("--engine", "betree", "--ops", "24")
NATIVE = (*BUGGY, "--medium", "native", "--crash-depth", "0")


@pytest.mark.parametrize("workload", [BETREE, BUGGY, pytest.param(NATIVE, marks=pytest.mark.skipif(
    shutil.which("strace") is None, reason="strace is not installed (.ci/run installs it)"))],
    ids=["betree", "shipped-buggy-user-engine", "shipped-user-engine-native"])
def test_a_dask_sweep_gives_the_local_results_state_by_state(tmp_path, cluster, workload):
    local = _sweep(tmp_path / "local", *workload, "--jobs", "2")
    remote = _sweep(tmp_path / "dask", *workload, executor=("--executor", "dask", "--scheduler", cluster.address))
    assert remote.returncode == local.returncode, remote.stderr
    _same_results(tmp_path / "local", tmp_path / "dask")
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("local", "dask")]
    assert [s["classes"] for s in summaries[0:1]] == [s["classes"] for s in summaries[1:2]]
    assert summaries[1]["distinct_states"] == summaries[1]["distinct_states_planned"] > 0


def test_engines_that_kill_their_process_or_signal_their_parent_cost_one_state_on_dask(tmp_path, cluster):
    for mode in ("kill", "sigterm-parent"):
        workload = ("--engine", "tests/engines/misbehaving.py:Misbehaving", "--option", f"mode={mode}", "--ops", "6",
                    "--bound", "1", "--crash-depth", "0")
        local = _sweep(tmp_path / f"local-{mode}", *workload)
        remote = _sweep(tmp_path / f"dask-{mode}", *workload,
                        executor=("--executor", "dask", "--scheduler", cluster.address))
        assert (remote.returncode, local.returncode) == ((1, 1) if mode == "kill" else (0, 0)), remote.stderr
        _same_results(tmp_path / f"local-{mode}", tmp_path / f"dask-{mode}")
    with distributed.Client(cluster.address, timeout=30) as client:
        assert len(client.nthreads()) == 2, "an engine took a Dask worker with it"


@pytest.mark.long
def test_a_budget_stops_a_dask_sweep_and_resume_completes_it(tmp_path, cluster):
    dask = ("--executor", "dask", "--scheduler", cluster.address)
    # ~90 recoveries of 0.2 s each: ~9 s on two workers, whatever the machine, against the 2-4 s of checking
    # that an 8 s budget leaves after connecting, recording and planning.
    workload = ("--engine", "tests/engines/misbehaving.py:Misbehaving", "--option", "mode=slow", "--ops", "10",
                "--crash-depth", "0")
    stopped = _sweep(tmp_path / "dask", *workload, "--budget-seconds", "8", executor=dask)
    assert stopped.returncode == 0, stopped.stderr
    summary = json.loads((tmp_path / "dask" / "summary.json").read_text())
    assert not summary["completed"] and 0 < summary["distinct_states"] < summary["distinct_states_planned"]
    resumed = _sweep(tmp_path / "dask", *workload, "--resume", executor=dask)
    assert resumed.returncode == 0, resumed.stderr
    _sweep(tmp_path / "local", *workload, "--jobs", "2")
    _same_results(tmp_path / "local", tmp_path / "dask")


def test_ctrl_c_stops_a_dask_sweep_keeping_its_results(tmp_path, cluster):
    # 120 operations (thousands of states at crash depth 2, about a minute): the sweep cannot finish between its
    # first results and the signal (24 operations, 259 states, sometimes did, and then rightly was not
    # "interrupted").
    process = _sweep(tmp_path / "dask", "--engine", "betree", "--ops", "120", "--crash-depth", "2", wait=False,
                     executor=("--executor", "dask", "--scheduler", cluster.address))
    _wait_for_results(tmp_path / "dask", 20, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    kept = _results(tmp_path / "dask")
    assert kept and json.loads((tmp_path / "dask" / "summary.json").read_text())["interrupted"]


def _wait_for_results(out, count: int, process) -> None:
    deadline = time.monotonic() + 120
    path = os.path.join(out, "results.jsonl")
    while not (os.path.exists(path) and open(path).read().count("\n") > count):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no results arrived"
        time.sleep(0.05)


def test_killing_a_worker_mid_sweep_loses_and_duplicates_no_state(tmp_path):
    cluster = Cluster(tmp_path / "cluster")
    try:
        workload = (*BETREE, "--crash-depth", "2")
        process = _sweep(tmp_path / "dask", *workload, wait=False,
                         executor=("--executor", "dask", "--scheduler", cluster.address))
        _wait_for_results(tmp_path / "dask", 50, process)
        cluster.kill_worker(1)
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    finally:
        cluster.stop()
    _sweep(tmp_path / "local", *workload, "--jobs", "2")
    _same_results(tmp_path / "local", tmp_path / "dask")


def test_a_local_dask_cluster_runs_a_sweep_with_the_local_results(tmp_path):
    local = _sweep(tmp_path / "local", *BUGGY)
    remote = _sweep(tmp_path / "dask", *BUGGY, executor=("--executor", "dask", "--jobs", "2"))
    assert remote.returncode == local.returncode == 1, remote.stderr
    _same_results(tmp_path / "local", tmp_path / "dask")


def test_workers_without_a_dotted_module_engine_are_refused_in_one_line(tmp_path, cluster):
    (tmp_path / "only_here_store.py").write_text((open(os.path.join(ROOT, "tests/engines/json_kv.py")).read()))
    done = subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine", "only_here_store:JsonKV",
                           "--ops", "4", "--out", str(tmp_path / "out"), "--no-corpus", "--quiet", "--executor", "dask",
                           "--scheduler", cluster.address], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert done.returncode == 2
    assert "cannot load the engine: no module named 'only_here_store' (install it on the workers)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


PROGRAM = """#!/usr/bin/env python3
import json, os, sys
path = os.path.join(sys.argv[1], "data.json")
data = json.load(open(path)) if os.path.exists(path) else {}
for line in sys.stdin:
    words = line.split()
    if words[0] in ("put", "delete"):
        data.update({words[1]: words[2]}) if words[0] == "put" else data.pop(words[1], None)
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle)
        os.rename(path + ".tmp", path)           # no fsync: a crash may lose it
    answer = {"open": "ok items", "get": "value " + data.get(words[-1], "") if words[-1] in data else "none",
              "items": "items " + " ".join(f"{k}:{v}" for k, v in data.items())}.get(words[0], "ok")
    sys.stdout.write(answer + "\\n"); sys.stdout.flush()
"""


@pytest.mark.long
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (.ci/run installs it)")
def test_an_exec_program_named_by_a_relative_path_runs_on_workers_elsewhere(tmp_path, cluster):
    """The workers run in another directory: `./kv.py` means the client's ./kv.py, and the results are the
    local ones state by state."""
    (tmp_path / "kv.py").write_text(PROGRAM)
    (tmp_path / "kv.py").chmod(0o755)
    runs = {}
    for name, executor in (("local", ("--jobs", "2")), ("dask", ("--executor", "dask", "--scheduler", cluster.address))):
        runs[name] = subprocess.run([sys.executable, "-m", "crashsweep", "sweep", "--engine", "exec:./kv.py {dir}",
                                     "--ops", "4", "--crash-depth", "0", "--budget-states", "16", "--minimize", "0",
                                     "--no-corpus", "--quiet", "--out", name, *executor], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=300)
    assert runs["local"].returncode == runs["dask"].returncode == 1, runs["dask"].stderr
    _same_results(tmp_path / "local", tmp_path / "dask")


@pytest.mark.parametrize("arguments, message", [
    (("--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"), "cannot reach the Dask scheduler at tcp://127.0.0.1:9"),
    (("--scheduler", "tcp://127.0.0.1:9"), "--scheduler names a Dask scheduler: use it with --executor dask"),
])
def test_a_bad_dask_setting_is_one_line_and_exit_2(tmp_path, arguments, message):
    done = _sweep(tmp_path / "out", "--ops", "4", *arguments, timeout=120)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_api_accepts_the_executor_settings(tmp_path, cluster):
    from crashsweep.api import sweep
    outcome = sweep("betree", out=str(tmp_path / "api"), ops=8, executor="dask", scheduler=cluster.address,
                    no_corpus=True)
    assert outcome.summary["completed"] and outcome.summary["distinct_states"] > 0


def test_planning_slices_on_dask_workers_fold_into_the_identical_plan(cluster, monkeypatch):
    from crashsweep import cli
    from crashsweep.crash_explorer import _plan
    from crashsweep.crash_explorer._dask_executor import DaskExecutor
    from crashsweep.crash_explorer._recording import record_contained

    monkeypatch.setattr(_plan, "PARALLEL_POINTS_MIN", 8)       # slice even this small workload's points
    spec = cli.spec_from_args(cli.parse_with_settings(["sweep", "--engine", "tests/engines/json_kv.py:JsonKV",
                                                       "--ops", "16"]))
    recording = record_contained(spec)
    assert len(recording.walk.points) >= 16
    here = _plan.plan_states(recording)
    with DaskExecutor(1, spec.state_timeout_s, None, spec.engine, cluster.address) as executor:
        there = _plan.plan_states(recording, jobs=executor.threads, slices=executor.plan_slices)

    def shape(plan):
        return ([state.as_data() for state in plan.states],
                plan.per_point, plan.states_enumerated, plan.distinct_total)
    assert shape(here) == shape(there)


@pytest.mark.parametrize("engine", ["FlushOnlyLog", "AtomicReplace"])
def test_a_sweep_on_dask_checks_while_its_workers_plan_with_the_planned_results(tmp_path, cluster, monkeypatch, engine):
    """Planning slices on the cluster and units checked beside them: every state sent the moment it is planned
    (one-state units), so states are checked before later points widen their windows, and checked again."""
    from crashsweep import cli
    from crashsweep.crash_explorer import SweepOptions, execute, prepare
    from crashsweep.crash_explorer import _plan, _sweep
    from crashsweep.crash_explorer._dask_executor import DaskExecutor

    monkeypatch.setattr(_sweep, "STREAM_WEIGHT_MIN", 0)
    monkeypatch.setattr(_plan, "PARALLEL_POINTS_MIN", 8)      # this small workload's points planned on the workers
    monkeypatch.setattr(_plan, "SETTLE_EPOCHS", -1)
    monkeypatch.setattr(_sweep, "STREAM_UNIT_STATES_MIN", 1)
    spec = cli.spec_from_args(cli.parse_with_settings(
        ["sweep", "--engine", os.path.join(ROOT, "tests", "engines", "fs_engines.py") + ":" + engine, "--seed", "3",
         "--crash-depth", "0", "--ops", "16"]))
    planned = execute(prepare(spec, SweepOptions(out_dir=str(tmp_path / "local"), jobs=2, stream=False)))
    with DaskExecutor(1, spec.state_timeout_s, None, spec.engine, cluster.address) as executor:
        run = prepare(spec, SweepOptions(out_dir=str(tmp_path / "dask"), executor="dask"), executor=executor)
        assert run.planned is None
        streamed = execute(run, executor=executor)
    assert streamed.completed and streamed.streamed["checked_while_planning"] > 0
    if engine == "FlushOnlyLog":
        assert streamed.streamed["checked_again"] > 0
    assert [state.as_data() for state in planned.plan.states] == [state.as_data() for state in streamed.plan.states]
    _same_results(tmp_path / "local", tmp_path / "dask")


def test_two_sweeps_at_once_on_one_cluster_each_get_their_own_results(tmp_path, cluster):
    """Each sweep's spec and recording reach the workers under keys of their own (not shared field names)."""
    dask = ("--executor", "dask", "--scheduler", cluster.address)
    workloads = {"betree": BETREE, "buggy": BUGGY}
    running = {name: _sweep(tmp_path / f"dask-{name}", *workload, "--crash-depth", "2", executor=dask, wait=False)
               for name, workload in workloads.items()}
    for name, workload in workloads.items():
        _, stderr = running[name].communicate(timeout=600)
        assert running[name].returncode in (0, 1), stderr
        _sweep(tmp_path / f"local-{name}", *workload, "--crash-depth", "2", "--jobs", "2")
        _same_results(tmp_path / f"local-{name}", tmp_path / f"dask-{name}")
