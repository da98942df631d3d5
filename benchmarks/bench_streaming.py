"""Checking while planning goes on, against planning every state first: whole sweeps side by side.

Run: python benchmarks/bench_streaming.py [--rounds 3] [--out benchmarks/results/streaming.json]

Each workload's sweep is run as a user runs it (`crashsweep sweep ... --quiet --minimize 0`, a fresh process:
recording, planning, checking, reports), alternately streamed (the default) and with `--no-stream`, `--rounds`
times each; the medians of wall time, CPU time (the command and every process it waited for) and the ratio
streamed / planned-first of each pair are reported. The script checks that both give every state the same
result (timings aside), and says so; `checked while planning` is how many states a streamed sweep checked
before its plan was whole, `checked again` how many of those gained a crash window afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), os.path.join(ROOT, "benchmarks")]

from bench_nested import _results  # noqa: E402 - every state's result, timings aside
from bench_scale import transactions_scenario  # noqa: E402 - the 200-transaction scenario


def workloads(directory: str) -> list[tuple[str, list[str], int]]:
    """(label, arguments, jobs): the default betree sweep (planned in milliseconds: it plans first either way).
    `--executor dask` rows start a local cluster of `jobs` single-threaded workers (its start-up is in both
    sides' time); there the workers plan the slices and check beside them."""
    transactions = transactions_scenario(directory, 200)
    sqlite = ["--engine", "sqlite", "--option", "journal_mode=delete", "--option", "synchronous=full",
              "--scenario", transactions, "--crash-depth", "0"]
    json_store = ["--engine", "tests/engines/json_kv.py:JsonKV", "--ops", "24"]
    return [
        ("betree default", ["--engine", "betree"], 2),
        ("sqlite delete/full, 200 transactions", sqlite, 1),
        ("sqlite delete/full, 200 transactions", sqlite, 2),
        ("JSON-file store, 24 ops", json_store, 1),
        ("JSON-file store, 24 ops", json_store, 2),
        ("sqlite delete/full, 200 transactions, dask", [*sqlite, "--executor", "dask"], 2),
        ("JSON-file store, 24 ops, dask", [*json_store, "--executor", "dask"], 2),
    ]


def run_once(arguments: list[str], out: str, jobs: int) -> dict:
    command = [sys.executable, "-m", "crashsweep", "sweep", *arguments, "--jobs", str(jobs), "--quiet",
               "--no-corpus", "--minimize", "0", "--out", out]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")})
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)} exited {completed.returncode}: {completed.stderr[-2000:]}")
    with open(os.path.join(out, "summary.json")) as handle:
        summary = json.load(handle)
    return {"wall_s": wall_s, "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "distinct_states": summary["distinct_states"], "streamed": summary.get("streamed", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "streaming.json"))
    parser.add_argument("--only", default="", help="run only the workloads whose label contains this")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for label, arguments, jobs in workloads(directory):
            if args.only not in label:
                continue
            runs: dict[str, list[dict]] = {"streamed": [], "planned_first": []}
            outs = {}
            for round_number in range(args.rounds):
                for side, extra in (("streamed", []), ("planned_first", ["--no-stream"])):
                    out = outs[side] = os.path.join(directory, f"{len(rows)}-{side}")
                    runs[side].append(run_once(arguments + extra, out, jobs))
            ratios = [a["wall_s"] / b["wall_s"] for a, b in zip(runs["streamed"], runs["planned_first"])]
            cpu_ratios = [a["cpu_s"] / b["cpu_s"] for a, b in zip(runs["streamed"], runs["planned_first"])]
            row = {"workload": label, "jobs": jobs, "distinct_states": runs["streamed"][0]["distinct_states"],
                   "streamed_wall_s": round(statistics.median(r["wall_s"] for r in runs["streamed"]), 2),
                   "planned_first_wall_s": round(statistics.median(r["wall_s"] for r in runs["planned_first"]), 2),
                   "streamed_cpu_s": round(statistics.median(r["cpu_s"] for r in runs["streamed"]), 2),
                   "planned_first_cpu_s": round(statistics.median(r["cpu_s"] for r in runs["planned_first"]), 2),
                   "wall_ratio_median": round(statistics.median(ratios), 3),
                   "wall_ratios": [round(ratio, 3) for ratio in ratios],
                   "cpu_ratio_median": round(statistics.median(cpu_ratios), 3),
                   "streamed": runs["streamed"][-1]["streamed"],
                   "same_results": _results(outs["streamed"]) == _results(outs["planned_first"])}
            rows.append(row)
            streamed = row["streamed"]
            print(f"{label:40} --jobs {jobs} {row['distinct_states']:>8,} states  streamed {row['streamed_wall_s']:6.1f} s  "
                  f"planned first {row['planned_first_wall_s']:6.1f} s  wall x{row['wall_ratio_median']:.2f}  "
                  f"cpu x{row['cpu_ratio_median']:.2f}  checked while planning "
                  f"{streamed.get('checked_while_planning', 0):,}, again {streamed.get('checked_again', 0):,}  "
                  f"same results: {row['same_results']}", file=sys.stderr, flush=True)
    print("| workload | --jobs | distinct states | streamed: wall s, CPU s | planned first: wall s, CPU s | "
          "wall ratio (pairs' median) | checked while planning | checked again | same results |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        streamed = row["streamed"]
        print(f"| {row['workload']} | {row['jobs']} | {row['distinct_states']:,} | {row['streamed_wall_s']:.1f}, "
              f"{row['streamed_cpu_s']:.1f} | {row['planned_first_wall_s']:.1f}, {row['planned_first_cpu_s']:.1f} | "
              f"{row['wall_ratio_median']:.2f} | {streamed.get('checked_while_planning', 0):,} | "
              f"{streamed.get('checked_again', 0):,} | {'yes' if row['same_results'] else 'NO'} |")
    with open(args.out, "w") as handle:
        json.dump({"rounds": args.rounds, "cores": os.cpu_count(), "rows": rows}, handle, indent=1)
    if not all(row["same_results"] for row in rows):
        sys.exit("results differ between streamed and planned-first sweeps")


if __name__ == "__main__":
    main()
