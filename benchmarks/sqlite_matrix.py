"""SQLite's journal modes x synchronous levels under power loss: which keep every commit, which may lose
the last commits but stay consistent, which can corrupt.

Workload: four commits (put 100 B, commit; put 3 KB, commit; put + delete, commit; put, commit).
Run: python benchmarks/sqlite_matrix.py [--fs-model posix] [--crash-depth 0] [--budget-seconds 120] [--jobs 2]
Prints a Markdown table (the README's) and writes benchmarks/results/sqlite-matrix-<fs-model>.json.
"""

import argparse
import collections
import json
import os
import sys
import tempfile
import time

from crashsweep.api import sweep
from crashsweep.reference import delete, encode_ops, put, sync

JOURNAL_MODES = ("delete", "truncate", "persist", "wal")
SYNCHRONOUS = ("off", "normal", "full", "extra")
CORRUPTING = {"recovery-error", "not-a-snapshot", "wrong-read", "hang"}


def workload() -> list:
    return [put(b"a", b"1" * 100), sync(), put(b"b", b"2" * 3000), sync(), put(b"a", b"3" * 200), delete(b"b"),
            sync(), put(b"c", b"4" * 50), sync()]


def reading(kinds: dict) -> str:
    if not kinds:
        return "keeps every commit"
    if CORRUPTING & set(kinds):
        return "can corrupt"
    return "consistent, may lose the last commits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fs-model", default="posix")
    parser.add_argument("--crash-depth", type=int, default=0)
    parser.add_argument("--budget-seconds", type=float, default=120.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        scenario = os.path.join(directory, "commits.json")
        with open(scenario, "w") as handle:
            json.dump({"ops": encode_ops(workload())}, handle)
        for journal_mode in JOURNAL_MODES:
            for synchronous in SYNCHRONOUS:
                out = os.path.join(directory, f"{journal_mode}-{synchronous}")
                started = time.perf_counter()
                outcome = sweep("sqlite", out=out, options={"journal_mode": journal_mode, "synchronous": synchronous},
                                scenario=scenario, fs_model=args.fs_model, crash_depth=args.crash_depth,
                                jobs=args.jobs, minimize=0, budget_seconds=args.budget_seconds)
                kinds = collections.Counter()
                with open(os.path.join(out, "results.jsonl")) as handle:
                    for line in handle:
                        result = json.loads(line)
                        if result.get("kind"):
                            kinds[result["kind"]] += 1
                summary = outcome.summary
                row = {"journal_mode": journal_mode, "synchronous": synchronous,
                       "states": summary["distinct_states"], "violations": summary["violations"],
                       "kinds": dict(sorted(kinds.items())), "complete": summary.get("completed", True),
                       "exhausted": summary.get("exhausted"), "seconds": round(time.perf_counter() - started, 1),
                       "reading": reading(kinds)}
                rows.append(row)
                print(f"{journal_mode:8} {synchronous:6} {row['states']:>7,} states {row['violations']:>6,} "
                      f"violations {row['kinds']} -> {row['reading']}", file=sys.stderr)
    print("| journal_mode | synchronous | states | violations | kinds | reading |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in row["kinds"].items()) or "—"
        print(f"| {row['journal_mode']} | {row['synchronous']} | {row['states']:,} | {row['violations']:,} | "
              f"{kinds} | {row['reading']} |")
    os.makedirs("benchmarks/results", exist_ok=True)
    with open(f"benchmarks/results/sqlite-matrix-{args.fs_model}.json", "w") as handle:
        json.dump({"fs_model": args.fs_model, "crash_depth": args.crash_depth, "jobs": args.jobs,
                   "budget_seconds": args.budget_seconds, "workload": encode_ops(workload()), "results": rows},
                  handle, indent=1)


if __name__ == "__main__":
    main()
