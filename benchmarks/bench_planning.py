"""What planning a sweep costs: time and peak memory, in one process and in two, with and without
recognizing deviations that change nothing, and with and without drawing sampled points sparse.

Run: python benchmarks/bench_planning.py [--out benchmarks/results/planning.json] [--only NAME]

Each measurement runs in a fresh process (its peak resident memory is its own): record the workload,
then `plan_states` (the plan a sweep checks; nothing is checked here). Side by side per workload:
- `--jobs 1` and `--jobs 2` (points planned in forked processes, in slices of equal estimated cost);
- `--jobs 1` with `disk_model.fs._hash.SKIP_HIDDEN` off: every state near "all pending micro-ops
  landed" hashed from its blocks, as if no deviation were hidden by a later micro-op (file-system
  engines only; the block device has no such step);
- `--jobs 1` with `crash_explorer._plan.SPARSE_POINTS` off: the states of bounded points (sampled, or
  listed whole where a point has more than 2 x bound pending micro-ops) drawn and built as whole choices
  (lists as long as the pending micro-ops), not as (base, deviations) with a choice made only for a new
  image (file-system engines only).
Every variant must give the same plan (the script checks the states' fingerprint).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKLOADS = [
    ("betree default", ["--engine", "betree"], False),
    ("sqlite delete/full default", ["--engine", "sqlite"], True),
    ("sqlite synchronous=off, 24 ops", ["--engine", "sqlite", "--option", "synchronous=off", "--ops", "24"], True),
    ("sqlite synchronous=off default", ["--engine", "sqlite", "--option", "synchronous=off"], True),
    ("dbm.dumb, 24 ops", ["--engine", "dbm-dumb", "--ops", "24"], True),
]

CHILD = r"""
import hashlib, json, resource, sys, time
from crashsweep.cli import build_parser, spec_from_args
from crashsweep.crash_explorer import _plan
from crashsweep.crash_explorer._recording import record
from crashsweep.disk_model.fs import _hash
jobs, skip_hidden, sparse, arguments = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1", sys.argv[4:]
_hash.SKIP_HIDDEN = skip_hidden
_plan.SPARSE_POINTS = sparse
recording = record(spec_from_args(build_parser().parse_args(["sweep", *arguments])))
started = time.perf_counter()
plan = _plan.plan_states(recording, jobs=jobs)
planning_s = time.perf_counter() - started
fingerprint = hashlib.sha256(json.dumps([state.as_data() for state in plan.states], sort_keys=True).encode())
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"points": plan.crash_points, "enumerated": plan.states_enumerated, "states": len(plan.states),
                  "planning_s": round(planning_s, 2), "peak_mb": peak // 1024,
                  "fingerprint": fingerprint.hexdigest()[:16]}))
"""


def measure(arguments: list[str], jobs: int, skip_hidden: bool, sparse: bool = True) -> dict:
    environment = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src"))
    done = subprocess.run([sys.executable, "-c", CHILD, str(jobs), "1" if skip_hidden else "0",
                           "1" if sparse else "0", *arguments],
                          capture_output=True, text=True, cwd=ROOT, env=environment, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "planning.json"))
    parser.add_argument("--only", help="run only the workload whose name contains this")
    args = parser.parse_args()
    rows = []
    print("| workload | planner | crash points | choices enumerated | distinct states | planning s | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for name, arguments, file_system in WORKLOADS:
        if args.only and args.only not in name:
            continue
        variants = [("--jobs 1", 1, True, True), ("--jobs 2", 2, True, True)]
        if file_system:
            variants += [("--jobs 1, hidden deviations hashed", 1, False, True),
                         ("--jobs 1, whole choices", 1, True, False)]
        fingerprints = set()
        for label, jobs, skip_hidden, sparse in variants:
            row = {"workload": name, "planner": label, **measure(arguments, jobs, skip_hidden, sparse)}
            fingerprints.add(row["fingerprint"])
            rows.append(row)
            print(f"| {name} | {label} | {row['points']:,} | {row['enumerated']:,} | {row['states']:,} | "
                  f"{row['planning_s']:.1f} | {row['peak_mb']:,} |", flush=True)
        if len(fingerprints) != 1:
            print(f"bench_planning: the planners disagree on {name}: {sorted(fingerprints)}", file=sys.stderr)
            return 1
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"rows": rows}, handle, indent=1)
    print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
