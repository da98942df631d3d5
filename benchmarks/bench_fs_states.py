"""Crash states per second on the file-system model: SQLite and a pure-Python engine, side by side.

Workload: a small database, 200 single-row transactions (a put and a sync each).
Run: python benchmarks/bench_fs_states.py [--transactions 200] [--budget-seconds 60] [--jobs 2]
Writes benchmarks/results/fs-states.json. States are distinct crash states (merged by image hash).
Two rates: `states_per_s` as the sweep reports it (checking only, after planning) and
`end_to_end_per_s` (the whole call: recording, planning, checking, reports). SQLite runs twice per
setting, side by side: with the observation memo (the default) and with `--no-memo` (every state
recovered by a live SQLite); both give the same results.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from crashsweep.api import sweep
from crashsweep.reference import encode_ops, put, sync

ENGINES = [("sqlite", {"journal_mode": "wal", "synchronous": "full"}, False),
           ("sqlite", {"journal_mode": "wal", "synchronous": "full"}, True),
           ("sqlite", {"journal_mode": "delete", "synchronous": "full"}, False),
           ("sqlite", {"journal_mode": "delete", "synchronous": "full"}, True),
           ("tests/engines/fs_engines.py:ChecksummedLog", {}, False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--budget-seconds", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    ops = []
    for number in range(args.transactions):
        ops += [put(b"row-%04d" % number, b"value-%06d" % number), sync()]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        scenario = os.path.join(directory, "transactions.json")
        with open(scenario, "w") as handle:
            json.dump({"ops": encode_ops(ops)}, handle)
        for engine, options, no_memo in ENGINES:
            started = time.perf_counter()
            outcome = sweep(engine, out=os.path.join(directory, "out"), options=options, scenario=scenario,
                            jobs=args.jobs, crash_depth=0, minimize=0, budget_seconds=args.budget_seconds,
                            no_memo=no_memo)
            wall_s = time.perf_counter() - started
            summary = outcome.summary
            rows.append({"engine": engine, "options": options, "memo": not no_memo,
                         "distinct_states": summary["distinct_states"],
                         "elapsed_s": summary["elapsed_s"], "states_per_s": summary["states_per_s"],
                         "wall_s": round(wall_s, 2), "end_to_end_per_s": round(summary["distinct_states"] / wall_s),
                         "violations": summary["violations"]})
            print(f"{engine:45} {json.dumps(options):50} {'--no-memo' if no_memo else 'memo':9} {summary['distinct_states']:>8,} states "
                  f"{summary['states_per_s']:>8,.0f} states/s checking, {summary['distinct_states'] / wall_s:>8,.0f} end to end",
                  file=sys.stderr)
    os.makedirs("benchmarks/results", exist_ok=True)
    with open("benchmarks/results/fs-states.json", "w") as handle:
        json.dump({"transactions": args.transactions, "jobs": args.jobs, "results": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
