"""The native medium's cost per crash state, beside materializing the state and recovering the engine by hand.

Run: python benchmarks/bench_native_medium.py [--states 300] [--repeat 5] [--out benchmarks/results/native-medium.json]

Side by side in one process, over the same planned crash states of each engine (crash depth 0, the
continuation on, as a default sweep runs them):
- crashsweep: `run_unit` on the states — materialize the state's tree on tmpfs, the kept native host (or
  the program, for `exec:`) opens it, reads everything out over the line protocol, runs the continuation,
  and the result is checked against the reference;
- by hand: the same tree written to tmpfs with plain `open`/`write`, the engine opened on it in this
  process (the C store: started as a program), read out, the same continuation run, closed, and the
  directory removed (`shutil.rmtree`) — all timed: a state's cost is its whole life on both sides
  (crashsweep's includes removing the state's directory too; without it the states would fill tmpfs).
Besides wall time per state, the CPU time per state of each side (crashsweep: this process, its kept
hosts and the programs it started, user + system; by hand: this process and the programs it started): what a sweep with every core busy (`--jobs` = cores) pays per
state, where the harness and the host cannot work side by side on cores of their own.
Also the recording's overhead: the workload run under strace (crashsweep's recording, parsed into the
file-system log) beside the same workload run by hand, untraced.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
OPS = "16"


def _kv_binary() -> str:
    binary = os.path.join(tempfile.mkdtemp(prefix="crashsweep-bench-"), "kv")
    subprocess.run(["cc", "-O2", "-o", binary, os.path.join(ROOT, "examples", "native", "kv.c")], check=True)
    return binary


class _Program:
    """The C store by hand: started on the directory, spoken to over its protocol."""

    def __init__(self, command: list[str]):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ask("open")

    def ask(self, line: str) -> str:
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().decode().strip()

    def items(self):
        pairs = self.ask("items").split()[1:]
        return [tuple(bytes.fromhex(part) if part != "-" else b"" for part in pair.split(":")) for pair in pairs]

    def put(self, key, value):
        self.ask(f"put {key.hex() or '-'} {value.hex() or '-'}")

    def delete(self, key):
        self.ask(f"delete {key.hex() or '-'}")

    def get(self, key):
        self.ask(f"get {key.hex() or '-'}")

    def sync(self):
        self.ask("sync")

    def close(self):
        self.ask("close")
        self.process.wait()


def _opener(engine: str, options: dict):
    if engine.startswith("exec:"):
        template = engine[5:].split()
        return lambda directory: _Program([word.replace("{dir}", directory) for word in template])
    from crashsweep import _native_host
    engine_class = _native_host.load_engine(engine)
    return lambda directory: _native_host.open_engine(engine_class, engine, directory, dict(options))


def _by_hand(opener, directory: str, keys: list[bytes], ops) -> None:
    store = opener(directory)
    # The read-out crashsweep's recovery does (`_recover.read_out`): get() of every key, then every pair.
    reads = {key: store.get(key) for key in keys}
    items = getattr(store, "items", None)
    recovered = dict(items()) if callable(items) else {key: value for key, value in reads.items() if value is not None}
    for op in ops(recovered):
        if op.kind == "put":
            store.put(op.key, op.value)
        elif op.kind == "delete":
            store.delete(op.key)
        elif op.kind == "get":
            store.get(op.key)
        else:
            store.sync()
    store.close()


def _write_tree(tree, path: str) -> None:
    from crashsweep.disk_model.fs._log import DIRECTORY
    from crashsweep.disk_model.native._recorder import STORE_INODE
    os.mkdir(path)
    stack = [(STORE_INODE, path)]
    while stack:
        inode, real = stack.pop()
        for name, (child, kind) in tree.entries.get(inode, {}).items():
            target = os.path.join(real, name)
            if kind == DIRECTORY:
                os.mkdir(target)
                stack.append((child, target))
            else:
                with open(target, "wb") as handle:
                    handle.write(tree.content(child))


def _cpu_s() -> float:
    """User + system time of this process and of its children that ended (the programs `exec:` starts)."""
    return sum(used.ru_utime + used.ru_stime
               for used in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def _hosts_cpu_s() -> float:
    """User + system time of this process's kept native hosts so far (from /proc)."""
    from crashsweep.engines._native import pooled_hosts
    total = 0
    for pid in pooled_hosts():
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measure(engine: str, options: dict, states: int, repeat: int) -> dict:
    from crashsweep import cli
    from crashsweep.crash_explorer._medium import durable_of
    from crashsweep.crash_explorer._plan import make_units, plan_states
    from crashsweep.crash_explorer._recover import continuation_ops, continuation_rng
    from crashsweep.crash_explorer._recording import record
    from crashsweep.crash_explorer._worker import remember, run_unit

    argv = ["sweep", "--engine", engine, "--ops", OPS, "--crash-depth", "0"]
    for key, value in options.items():
        argv += ["--option", f"{key}={value}"]
    spec = cli.spec_from_args(cli.parse_with_settings(argv))
    started = time.perf_counter()
    recording = record(spec)
    recording_s = time.perf_counter() - started
    remember(recording)
    planned = plan_states(recording).states[:states]
    units = make_units(spec.to_json(), planned, spec_id=spec.spec_id)
    run_unit(units[0]).__next__()          # start the kept host outside the timing (once per worker)

    opener = _opener(engine, spec.engine_options())
    keys = sorted({op.key for op in spec.ops if op.key is not None})
    durable = durable_of(recording.context, recording.walk, recording.log, hashed=False)
    scratch = tempfile.mkdtemp(prefix="crashsweep-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    trees = []
    for state in sorted(planned, key=lambda state: recording.walk.points[state.point].durable_count):
        point = recording.walk.points[state.point]
        durable.advance(point.durable_count)
        trees.append((state.state_id, durable.snapshot(durable.overlay(state.choice))))

    def crashsweep_pass() -> tuple[float, float]:
        cpu = _cpu_s() + _hosts_cpu_s()
        started = time.perf_counter()
        checked = sum(1 for unit in units for _ in run_unit(unit))
        assert checked == len(planned)
        wall = time.perf_counter() - started
        return wall / checked, (_cpu_s() + _hosts_cpu_s() - cpu) / checked

    def by_hand_pass() -> tuple[float, float]:
        cpu = _cpu_s()
        total = 0.0
        for state_id, tree in trees:
            target = os.path.join(scratch, str(state_id))
            began = time.perf_counter()
            _write_tree(tree, target)
            try:
                _by_hand(opener, target, keys,
                         lambda recovered: continuation_ops(continuation_rng(spec.seed, 0, 0), recovered))
            except Exception:   # noqa: BLE001 - a state the engine cannot recover costs what it cost
                pass
            shutil.rmtree(target)
            total += time.perf_counter() - began
        return total / len(trees), (_cpu_s() - cpu) / len(trees)

    # The sides alternate pass by pass, and each keeps its best: the machine's drift (a shared VM's speed
    # changes by a third within minutes) falls on both alike.
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(repeat):
            for side, measured in (("crashsweep", crashsweep_pass), ("by_hand", by_hand_pass)):
                wall, cpu = measured()
                kept = best.get(side)
                best[side] = (wall if kept is None else min(kept[0], wall), cpu if kept is None else min(kept[1], cpu))
        began = time.perf_counter()
        workload = os.path.join(scratch, "workload")
        os.mkdir(workload)
        _by_hand(opener, workload, [], lambda recovered: list(spec.ops))
        workload_s = time.perf_counter() - began
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    (harness_s, harness_cpu), (by_hand_s, by_hand_cpu) = best["crashsweep"], best["by_hand"]
    return {"engine": engine, "options": options, "ops": int(OPS), "states": len(trees),
            "crashsweep_ms_per_state": round(harness_s * 1e3, 3), "by_hand_ms_per_state": round(by_hand_s * 1e3, 3),
            "ratio": round(harness_s / by_hand_s, 2),
            "crashsweep_cpu_ms_per_state": round(harness_cpu * 1e3, 3),
            "by_hand_cpu_ms_per_state": round(by_hand_cpu * 1e3, 3),
            "cpu_ratio": round(harness_cpu / by_hand_cpu, 2), "recording_s": round(recording_s, 3),
            "workload_by_hand_s": round(workload_s, 4), "micro_ops": len(recording.log.ops)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5, help="passes per side, alternating; the best is kept")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "native-medium.json"))
    args = parser.parse_args()
    engines = [("leveldb", {}), ("lmdb", {}), ("sqlite-native", {}), (f"exec:{_kv_binary()} {{dir}}", {})]
    rows = []
    for engine, options in engines:
        row = measure(engine, options, args.states, args.repeat)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    with open(args.out, "w") as handle:
        json.dump({"rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
