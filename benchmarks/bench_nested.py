"""Second crashes: default sweeps (crash depth 1) with and without skipping nested states known to pass.

Run: python benchmarks/bench_nested.py [--jobs 2] [--out benchmarks/results/nested.json]

At the last crash depth, a nested state whose image, continuation history, windows and damage were already
recovered and passed (from another top-level state recovered alike) is not recovered again
(`crash_explorer/_recover.py`, `_nested_passed`). Side by side in one run, each workload's whole default sweep
(`crashsweep.api.sweep`, the user's call: recording, planning, checking, reports) with it on (the default) and
off (`_recover.NESTED_PASSED = False`, inherited by the forked workers; the SQLite observation memo stays on in
both). The script checks that both give every state the same result, and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

WORKLOADS = [
    ("the tests' ChecksummedLog", "tests/engines/fs_engines.py:ChecksummedLog", {}),
    ("the tests' AtomicReplace (a correct JSON store)", "tests/engines/fs_engines.py:AtomicReplace", {}),
    ("the tests' JSON store, 24 ops", "tests/engines/json_kv.py:JsonKV", {"ops": 24}),
    ("tinydb", "tinydb", {}),
    ("sqlite delete/full", "sqlite", {}),
    ("lmdb (native medium)", "lmdb", {}),
    ("betree (block device: none skipped)", "betree", {}),
]
TIMING_FIELDS = ("engine_s", "total_s", "memo")


def _results(out: str) -> dict:
    results = {}
    with open(os.path.join(out, "results.jsonl")) as handle:
        for line in handle:
            record = json.loads(line)
            if "state" in record:
                for name in TIMING_FIELDS:
                    record.pop(name, None)
                results[record["state"]] = record
    return results


def main() -> None:
    from crashsweep.api import sweep
    from crashsweep.crash_explorer import _recover

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "nested.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for label, engine, settings in WORKLOADS:
            if engine == "lmdb":
                try:
                    import lmdb  # noqa: F401
                except ImportError:
                    print(f"{label}: skipped (pip install 'crashsweep[native]')", file=sys.stderr)
                    continue
            row = {"workload": label, "engine": engine, **settings}
            for skipping in (False, True):
                _recover.NESTED_PASSED = skipping
                out = os.path.join(directory, f"{len(rows)}-{skipping}")
                started = time.perf_counter()
                outcome = sweep(engine, out=out, jobs=args.jobs, minimize=0, **settings)
                wall_s = time.perf_counter() - started
                side = "skipping" if skipping else "all_live"
                row[f"{side}_s"] = round(wall_s, 2)
                row["distinct_states"] = outcome.summary["distinct_states"]
                row["nested_states"] = outcome.summary["nested_states"]
                row["violations"] = outcome.summary["violations"]
                row[f"{side}_results"] = out
            row["same_results"] = _results(row.pop("all_live_results")) == _results(row.pop("skipping_results"))
            row["speed_up"] = round(row["all_live_s"] / row["skipping_s"], 2)
            rows.append(row)
            print(f"{label:50} {row['distinct_states']:>7,} states {row['nested_states']:>8,} nested  "
                  f"all live {row['all_live_s']:7.1f} s  skipping {row['skipping_s']:7.1f} s  "
                  f"{row['speed_up']:.2f}x  same results: {row['same_results']}", file=sys.stderr, flush=True)
    _recover.NESTED_PASSED = True
    with open(args.out, "w") as handle:
        json.dump({"jobs": args.jobs, "rows": rows}, handle, indent=1)
    if not all(row["same_results"] for row in rows):
        sys.exit("results differ with and without skipping nested states known to pass")


if __name__ == "__main__":
    main()
