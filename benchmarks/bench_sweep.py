"""Crash states per second, and where the time goes: inside the engine vs inside the harness.

Run: python benchmarks/bench_sweep.py [--ops 56] [--out benchmarks/results/sweep.json]

Side by side in one run: the correct example engine on the default scenario,
with 1 and 2 worker processes, with and without a second crash (crash depth 0/1).
"Engine" is the time inside the engine's open, read-out and continuation (its
simulated I/O included); "harness" is everything else: recording, planning,
building images, checking against the reference, result streaming, processes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

from crashsweep.crash_explorer import SweepOptions, SweepSpec, execute, prepare, summarize
from crashsweep.scenarios import generate


def measure(ops: int, jobs: int, crash_depth: int) -> dict:
    spec = SweepSpec(ops=tuple(generate("default", 0, ops)), scenario="default", crash_depth=crash_depth).validate()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run = prepare(spec, SweepOptions(out_dir=out, jobs=jobs))
        planned = time.perf_counter()
        run = execute(run)
        finished = time.perf_counter()
    summary = summarize(run)
    results = list(run.results.values())
    engine_s = sum(result.get("engine_s", 0.0) for result in results)
    worker_s = sum(result.get("total_s", 0.0) for result in results)
    wall_s = finished - started
    states = summary["distinct_states"] + summary["nested_states"]
    return {
        "jobs": jobs, "crash_depth": crash_depth, "ops": ops, "distinct_states": summary["distinct_states"],
        "recoveries": states, "violations": summary["violations"], "wall_s": round(wall_s, 3),
        "plan_s": round(planned - started, 3),
        "distinct_states_per_s": round(summary["distinct_states"] / wall_s, 1),
        "recoveries_per_s": round(states / wall_s, 1),
        "engine_share_in_workers": round(engine_s / worker_s, 3) if worker_s else None,
        "harness_share_end_to_end": round(1 - engine_s / (wall_s * jobs), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=56)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "sweep.json"))
    args = parser.parse_args()
    rows = [measure(args.ops, jobs, depth) for depth in (0, 1) for jobs in (1, 2)]
    header = f"{'jobs':>4} {'depth':>5} {'states':>7} {'recoveries':>10} {'wall s':>7} {'states/s':>9} " \
             f"{'recov/s':>8} {'engine% (workers)':>17} {'harness% (end-to-end)':>21}"
    print(header)
    for row in rows:
        print(f"{row['jobs']:>4} {row['crash_depth']:>5} {row['distinct_states']:>7} {row['recoveries']:>10} "
              f"{row['wall_s']:>7.2f} {row['distinct_states_per_s']:>9.0f} {row['recoveries_per_s']:>8.0f} "
              f"{100 * row['engine_share_in_workers']:>16.0f}% {100 * row['harness_share_end_to_end']:>20.0f}%")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                               "platform": platform.platform()}, "rows": rows}, handle, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
