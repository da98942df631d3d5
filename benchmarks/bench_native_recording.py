"""Recording a Python engine on the native medium: its lines told in-band, against strace's native stacks.

Run: python benchmarks/bench_native_recording.py [--ops 24] [--repeat 3] [--out benchmarks/results/native-recording.json]

A Python path engine (`--medium native`) runs in the kept native host. Its native stack is the
interpreter's, so the recording names its lines from its Python stack instead: the host's profile hook
writes the line to /dev/null before each file-changing call, and strace runs without `-k`. Side by side,
in one process, for each engine: the workload recorded that way, and recorded with `strace -k` walking
the native stack of every call (what the recording did before; it named no line of a Python engine).
Both must record the same micro-operations (the script checks it); the table gives the recording time
(the best of `--repeat`), the micro-operations, and how many of them have an engine line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

ENGINES = ["tests/engines/json_kv.py:JsonKV", "tests/engines/fs_engines.py:ChecksummedLog", "dbm-dumb", "tinydb"]


class _Every(tuple):
    """Stands for the host's list of engines in C: every engine is then recorded with native stacks."""

    def __contains__(self, item) -> bool:
        return True


def record_once(spec, native_stacks: bool):
    import crashsweep.engines._native as native
    from crashsweep.crash_explorer._recording import record

    kept = native.BUILT_IN_ADAPTERS
    native.BUILT_IN_ADAPTERS = _Every() if native_stacks else kept
    try:
        started = time.perf_counter()
        recording = record(spec)
        return time.perf_counter() - started, recording
    finally:
        native.BUILT_IN_ADAPTERS = kept


def measure(engine: str, ops: str, repeat: int) -> dict:
    from crashsweep import cli
    from crashsweep.engines._native import close_pool

    spec = cli.spec_from_args(cli.parse_with_settings(["sweep", "--engine", engine, "--ops", ops, "--crash-depth", "0",
                                                       "--medium", "native"]))
    row = {"engine": engine, "ops": int(ops)}
    shapes = {}
    for label, native_stacks in (("python_lines", False), ("native_stacks", True)):
        best = None
        for _ in range(repeat):
            close_pool()                # a host of its own per mode: the mode is chosen when it is attached
            seconds, recording = record_once(spec, native_stacks)
            best = seconds if best is None else min(best, seconds)
        log = recording.log
        shapes[label] = [(op.kind, op.inode, getattr(op, "offset", None)) for op in log.ops]
        row[f"{label}_s"] = round(best, 3)
        row[f"{label}_named"] = sum(1 for op in log.ops if ".py:" in log.sites.get(op.call, ""))
        row["micro_ops"] = len(log.ops)
    row["same_micro_ops"] = shapes["python_lines"] == shapes["native_stacks"]
    row["speedup"] = round(row["native_stacks_s"] / row["python_lines_s"], 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="24")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "native-recording.json"))
    args = parser.parse_args()
    rows = []
    for engine in ENGINES:
        row = measure(engine, args.ops, args.repeat)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    with open(args.out, "w") as handle:
        json.dump({"rows": rows}, handle, indent=1)
    print("| engine | micro-ops | in-band lines s | lines named | strace -k s | lines named | speed-up | same micro-ops |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['engine']} | {row['micro_ops']} | {row['python_lines_s']:.2f} | {row['python_lines_named']} | "
              f"{row['native_stacks_s']:.2f} | {row['native_stacks_named']} | {row['speedup']}× | "
              f"{'yes' if row['same_micro_ops'] else 'NO'} |")


if __name__ == "__main__":
    main()
