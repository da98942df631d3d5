"""What one recovery of a pure-Python path engine costs in crashsweep, beside running the engine natively.

Run: python benchmarks/bench_native_recovery.py [--states 600] [--repeat 5] [--out benchmarks/results/native-recovery.json]

Side by side in one process, over the same planned crash states of each engine (crash depth 0):
- crashsweep: `run_unit` on the states as a worker process runs them — build the state's tree, open the engine
  on the file-system model, read everything out, check, run the continuation and check it, take the engine's
  output and reap its processes;
- native: the same state's tree written to a directory on tmpfs (/dev/shm; not in the ratio, reported as
  `native_tree_copy_ms_per_state` with its removal), then the engine opened on it with the real `os`, read
  out, the same continuation run, closed.
The sides alternate pass by pass, each keeping its best of `--repeat`. The states are spread over the
whole plan (every k-th planned state).
The ratio is crashsweep's per-state cost over the native one (DESIGN §3's file-system model
against the real thing). `crashsweep_state_build_ms_per_state` is the part of crashsweep's cost that makes
each state (its tree built and loaded into the model; the native side's counterpart is the tree copy, not
timed), and `ratio_after_state_build` the rest against native. Engines: the tests' JSON-file store and
ChecksummedLog, and TinyDB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ENGINES = [("tests/engines/json_kv.py:JsonKV", "24"), ("tests/engines/fs_engines.py:ChecksummedLog", "24"),
           ("tinydb", "24")]


def materialize(tree, target: str) -> str:
    """Write a state's tree under `target`; returns the engine's directory there."""
    from crashsweep.disk_model import STORE_PATH
    from crashsweep.disk_model.fs._log import DIRECTORY
    for path, kind, inode in tree.walk():
        real = target + path
        if kind == DIRECTORY:
            os.makedirs(real, exist_ok=True)
        else:
            with open(real, "wb") as handle:
                handle.write(tree.content(inode))
    os.makedirs(target + STORE_PATH, exist_ok=True)
    return target + STORE_PATH


def native_class(engine: str):
    """The engine's own class: a user engine's, or the built-in path store's (`tinydb`)."""
    from crashsweep.engines._user import load_class
    if ":" in engine:
        return load_class(engine)
    from crashsweep.engines._python_stores import TinyDbStore
    return {"tinydb": TinyDbStore}[engine]


def native_run(opener, directory: str, history_keys: list[bytes], continuation) -> None:
    store = opener(directory)
    # The read-out crashsweep's recovery does (`_recover.read_out`): get() of every key, then every pair.
    reads = {key: store.get(key) for key in history_keys}
    items = getattr(store, "items", None)
    recovered = dict(items()) if callable(items) else {key: value for key, value in reads.items() if value is not None}
    for op in continuation(recovered):
        if op.kind == "put":
            store.put(op.key, op.value)
        elif op.kind == "delete":
            store.delete(op.key)
        elif op.kind == "get":
            store.get(op.key)
        else:
            store.sync()
    store.close()


def measure(engine: str, ops: str, states: int, repeat: int = 5) -> dict:
    import random

    from crashsweep import cli
    from crashsweep.crash_explorer._plan import make_units, plan_states
    from crashsweep.crash_explorer._recover import continuation_ops
    from crashsweep.crash_explorer._recording import record
    from crashsweep.crash_explorer._executor import _after_state, _OutputCapture
    from crashsweep.crash_explorer._worker import remember, run_unit
    from crashsweep.crash_explorer._medium import durable_of
    from crashsweep.disk_model import shared_session
    from crashsweep.disk_model.fs._log import UntracedFsLog

    spec = cli.spec_from_args(cli.parse_with_settings(["sweep", "--engine", engine, "--ops", ops,
                                                       "--crash-depth", "0"]))
    recording = record(spec)
    remember(recording)
    every = plan_states(recording).states
    # States spread over the whole plan (every k-th), not its first: later points hold larger files and refuse
    # more often, so the first states alone flatter the model (JSON store: 2.1x on the first 600, 2.4x spread).
    planned = every[::max(1, len(every) // states)][:states]
    units = make_units(spec.to_json(), planned, spec_id=spec.spec_id)
    # As a worker process runs a unit: the engine's output taken and its processes reaped after each state.
    output = _OutputCapture()
    after_state = lambda result: _after_state(result, output)   # noqa: E731
    checked = sum(1 for unit in units for _ in run_unit(unit, after_state))   # warm: the interposition's set-up

    def crashsweep_pass() -> float:
        started = time.perf_counter()
        assert sum(1 for unit in units for _ in run_unit(unit, after_state)) == checked
        return (time.perf_counter() - started) / checked

    opener = _native_opener(engine, spec)
    keys = sorted({op.key for op in spec.ops if op.key is not None})
    durable = durable_of(recording.context, recording.walk, recording.log, hashed=False)
    trees = []
    for state in sorted(planned, key=lambda state: state.point):
        durable.advance(recording.walk.points[state.point].durable_count)
        trees.append((state.state_id, durable.snapshot(durable.overlay(state.choice))))
    scratch = tempfile.mkdtemp(prefix="crashsweep-native-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)

    copy_s = [float("inf")]

    def native_pass() -> float:
        total = copying = 0.0
        for state_id, tree in trees:
            target = os.path.join(scratch, str(state_id))
            made = time.perf_counter()
            directory = materialize(tree, target)
            rng = random.Random(state_id)
            began = time.perf_counter()
            try:
                native_run(opener, directory, keys, lambda recovered: continuation_ops(rng, recovered))
            except Exception:   # noqa: BLE001 - a state the engine cannot recover costs what it cost
                pass
            ended = time.perf_counter()
            shutil.rmtree(target)
            total += ended - began
            copying += (began - made) + (time.perf_counter() - ended)
        copy_s[0] = min(copy_s[0], copying / len(trees))
        return total / len(trees)

    def build_pass() -> float:
        """What of crashsweep's pass is making each state: its tree from the durable image and the landed
        micro-ops, loaded into the model's file system (as `run_unit` does before the engine opens)."""
        state_of = {state.state_id: state for state in planned}
        durable_now = durable_of(recording.context, recording.walk, recording.log, hashed=False)
        started = time.perf_counter()
        for unit in units:
            for state in unit["states"]:
                durable_now.advance(recording.walk.points[state[1]].durable_count)
                shared_session(durable_now.view(durable_now.overlay(state_of[state[0]].choice)), UntracedFsLog())
        return (time.perf_counter() - started) / checked

    # The sides alternate pass by pass and each keeps its best (this machine's speed drifts within minutes).
    harness_s = native_s = build_s = float("inf")
    try:
        for _ in range(repeat):
            harness_s = min(harness_s, crashsweep_pass())
            native_s = min(native_s, native_pass())
            build_s = min(build_s, build_pass())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"engine": engine, "ops": int(ops), "states": checked, "crashsweep_ms_per_state": round(harness_s * 1e3, 3),
            "native_ms_per_state": round(native_s * 1e3, 3), "ratio": round(harness_s / native_s, 2),
            # (in crashsweep's cost) making each state: its tree built and loaded into the model
            "crashsweep_state_build_ms_per_state": round(build_s * 1e3, 3),
            # the rest (the engine's recovery, read-out and continuation on the model, the checks) against native
            "ratio_after_state_build": round((harness_s - build_s) / native_s, 2),
            # (not in the ratio) what a native harness pays on top to write each state's tree and remove it
            "native_tree_copy_ms_per_state": round(copy_s[0] * 1e3, 3)}


def _native_opener(engine: str, spec):
    engine_class = native_class(engine)
    return lambda directory: engine_class(directory, **spec.engine_options())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=5, help="passes per side, alternating; the best is kept")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "native-recovery.json"))
    args = parser.parse_args()
    os.chdir(ROOT)
    rows = []
    for engine, ops in ENGINES:
        row = measure(engine, ops, args.states, args.repeat)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    with open(args.out, "w") as handle:
        json.dump({"rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
