"""Scale: states/s end to end with 1 and 2 local worker processes and on Dask with 1 and 2 workers, side by side.

Run: python benchmarks/bench_scale.py [--quick] [--out benchmarks/results/scale.json]

For each workload (betree's default sweep; SQLite delete/full and wal/full over 200 single-row
transactions; the tests' JSON-file store; TinyDB) and each executor (`--jobs 1`, `--jobs 2`,
`--executor dask` on a cluster of 1 and of 2 workers started here on localhost, their start-up
not counted, each running only while its own rows run), one `crashsweep sweep` in a process of its own: wall time, distinct states per
second end to end, the time of each phase (`summary.json`'s `phases_s`), and the peak memory of
crashsweep's own process (VmHWM; the engines run in worker processes). From `--jobs 1` against `--jobs 2`
the serial fraction f (Amdahl: T2 / T1 = f + (1 - f) / 2) and, on paper, the speed-up and states/s
that 10 and 100 workers would give, with the Dask tasks per second that rate needs (one task per
work unit of up to 64 states). Every run must find the same states and violations whatever ran it:
the script checks that and says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UNIT_STATES_MAX = 64
RUNNER = r"""
import json, sys, time
from crashsweep.cli import main
started = time.perf_counter()
code = main(sys.argv[2:])
wall = time.perf_counter() - started
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
with open(sys.argv[1], "w") as handle:
    json.dump({"code": code, "wall_s": wall, "peak_mb": peak_kb / 1024}, handle)
"""


def transactions_scenario(directory: str, count: int) -> str:
    from crashsweep.reference import encode_ops, put, sync
    ops = []
    for number in range(count):
        ops += [put(b"row-%04d" % number, b"value-%06d" % number), sync()]
    path = os.path.join(directory, "transactions.json")
    with open(path, "w") as handle:
        json.dump({"ops": encode_ops(ops)}, handle)
    return path


def workloads(directory: str, quick: bool) -> list[tuple[str, list[str]]]:
    count = 50 if quick else 200
    transactions = transactions_scenario(directory, count)
    ops = "12" if quick else "24"
    return [
        ("betree default", ["--engine", "betree"]),
        (f"sqlite delete/full, {count} transactions", ["--engine", "sqlite", "--option", "journal_mode=delete",
                                                  "--option", "synchronous=full", "--scenario", transactions,
                                                  "--crash-depth", "0"]),
        (f"sqlite wal/full, {count} transactions", ["--engine", "sqlite", "--option", "journal_mode=wal",
                                               "--option", "synchronous=full", "--scenario", transactions,
                                               "--crash-depth", "0"]),
        (f"JSON-file store, {ops} ops", ["--engine", "tests/engines/json_kv.py:JsonKV", "--ops", ops]),
        (f"tinydb, {ops} ops", ["--engine", "tinydb", "--ops", ops]),
    ]


class Cluster:
    """A Dask scheduler and `workers` single-threaded workers on localhost."""

    def __init__(self, directory: str, workers: int):
        self.file = os.path.join(directory, f"scheduler-{workers}.json")
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                                            self.file, "--port", "0", "--dashboard-address", ":0"],
                                           start_new_session=True, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, env=environment)]
        while not os.path.exists(self.file):
            time.sleep(0.1)
        self.address = json.load(open(self.file))["address"]
        self.processes += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                             self.file, "--nthreads", "1", "--no-dashboard"],
                                            start_new_session=True, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, env=environment) for _ in range(workers)]
        import distributed
        with distributed.Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    def stop(self) -> None:
        for process in reversed(self.processes):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run(directory: str, name: str, arguments: list[str], executor: list[str], budget_s: float) -> dict:
    out = os.path.join(directory, "out")
    measured = os.path.join(directory, "measured.json")
    # No --budget-seconds: a budget makes planning sample by this machine's speed, and the plans must be equal.
    command = [sys.executable, "-c", RUNNER, measured, "sweep", *arguments, *executor, "--out", out, "--quiet",
               "--no-corpus", "--minimize", "0"]
    subprocess.run(command, cwd=ROOT, check=False, stdout=subprocess.DEVNULL, timeout=budget_s)
    with open(measured) as handle:
        outcome = json.load(handle)
    with open(os.path.join(out, "summary.json")) as handle:
        summary = json.load(handle)
    with open(os.path.join(out, "results.jsonl")) as handle:
        lines = [json.loads(line) for line in handle.read().splitlines()[1:]]
    verdicts = sorted((line["state"], line.get("kind")) for line in lines)
    return {"workload": name, "executor": " ".join(executor), "exit_code": outcome["code"],
            "wall_s": round(outcome["wall_s"], 2), "peak_mb": round(outcome["peak_mb"]),
            "distinct_states": summary["distinct_states"], "violations": summary["violations"],
            "completed": summary["completed"], "phases_s": summary.get("phases_s"),
            "states_per_s_end_to_end": round(summary["distinct_states"] / outcome["wall_s"], 1),
            "verdicts_digest": hashlib.blake2b(json.dumps(verdicts).encode(), digest_size=8).hexdigest()}


def projections(rows: list[dict]) -> list[dict]:
    """Amdahl from --jobs 1 and --jobs 2 (same workload): f, and what 10 and 100 workers would give."""
    found = []
    for name in dict.fromkeys(row["workload"] for row in rows):
        one = next(row for row in rows if row["workload"] == name and row["executor"] == "--jobs 1")
        two = next(row for row in rows if row["workload"] == name and row["executor"] == "--jobs 2")
        serial = min(1.0, max(0.0, 2 * two["wall_s"] / one["wall_s"] - 1))
        entry = {"workload": name, "serial_fraction": round(serial, 3)}
        for workers in (10, 100):
            speedup = 1 / (serial + (1 - serial) / workers)
            rate = one["states_per_s_end_to_end"] * speedup
            entry[f"speedup_{workers}"] = round(speedup, 1)
            entry[f"states_per_s_{workers}"] = round(rate)
            entry[f"dask_tasks_per_s_{workers}"] = round(rate / UNIT_STATES_MAX, 1)
        found.append(entry)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds a sweep may take before the run fails")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "scale.json"))
    parser.add_argument("--tables", metavar="FILE", help="print the README's tables of a results file and stop")
    args = parser.parse_args()
    if args.tables:
        with open(args.tables) as handle:
            print(markdown(json.load(handle)))
        return
    rows = []
    labels = ["--jobs 1", "--jobs 2", "dask, 1 worker", "dask, 2 workers"]
    with tempfile.TemporaryDirectory() as directory:
        named = workloads(directory, args.quick)
        order = {name: index for index, (name, _) in enumerate(named)}
        # Executor by executor: a Dask cluster runs only while its own rows run (idle, its scheduler and workers
        # still take some of the two cores the local runs are measured on).
        for label in labels:
            cluster = None
            try:
                if label.startswith("dask"):
                    cluster = Cluster(directory, 1 if "1 worker" in label else 2)
                    executor = ["--executor", "dask", "--scheduler", cluster.address]
                else:
                    executor = label.split()
                for name, arguments in named:
                    row = run(directory, name, arguments, executor, args.timeout)
                    row["executor"] = label
                    rows.append(row)
                    rows.sort(key=lambda row: (order[row["workload"]], labels.index(row["executor"])))
                    print(f"{name:40} {label:16} {row['distinct_states']:>8,} states {row['wall_s']:>8.1f} s "
                          f"{row['states_per_s_end_to_end']:>9,.0f} states/s  peak {row['peak_mb']:>5} MB  "
                          f"phases {row['phases_s']}", file=sys.stderr, flush=True)
                    # Written after every run: a run stopped part-way keeps what it measured (marked partial).
                    save(args.out, results_of(rows, args.quick, partial=True))
            finally:
                if cluster is not None:
                    cluster.stop()
    result = results_of(rows, args.quick, partial=False)
    for entry in result["projections"]:
        print(json.dumps(entry), file=sys.stderr)
    print("same states and verdicts on every executor:", result["same_results_whatever_ran_them"], file=sys.stderr)
    save(args.out, result)
    print(markdown(result))


def results_of(rows: list[dict], quick: bool, partial: bool) -> dict:
    same = {name: len({(r["verdicts_digest"], r["distinct_states"]) for r in rows if r["workload"] == name}) == 1
            for name in dict.fromkeys(row["workload"] for row in rows)}
    complete = [row for row in rows if sum(r["workload"] == row["workload"] for r in rows) >= 2]
    return {"cores": os.cpu_count(), "quick": quick, "partial": partial, "rows": rows,
            "projections": projections(complete), "same_results_whatever_ran_them": same}


def save(path: str, result: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        json.dump(result, handle, indent=1)
    os.replace(path + ".tmp", path)


def markdown(result: dict) -> str:
    """The README's tables from a results file (also: python benchmarks/bench_scale.py --tables FILE)."""
    lines = ["| workload | executor | distinct states | wall s | states/s end to end | recording + planning s | "
             "checking s | peak MB |", "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        phases = row.get("phases_s") or {}
        lines.append(f"| {row['workload']} | {row['executor']} | {row['distinct_states']:,} | {row['wall_s']:.1f} | "
                     f"{row['states_per_s_end_to_end']:,.0f} | {phases.get('recording_and_planning', 0):.1f} | "
                     f"{phases.get('checking', 0):.1f} | {row['peak_mb']} |")
    lines += ["", "| workload | serial fraction | 10 workers: speed-up, states/s | 100 workers: speed-up, states/s | "
              "Dask tasks/s at 100 |", "|---|---|---|---|---|"]
    for entry in result["projections"]:
        lines.append(f"| {entry['workload']} | {entry['serial_fraction']:.2f} | {entry['speedup_10']}×, "
                     f"{entry['states_per_s_10']:,} | {entry['speedup_100']}×, {entry['states_per_s_100']:,} | "
                     f"{entry['dask_tasks_per_s_100']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
