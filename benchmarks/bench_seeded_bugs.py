"""How good is the default sweep? For every seeded bug of an engine: found or not, how many
states until the first violation (in exploration order), and the minimized trace's length.

Run: python benchmarks/bench_seeded_bugs.py [--engine betree|example-wal] [--out FILE.json]

Checksum bugs can only show under damage: they are swept with corruption faults on (column "faults").
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from crashsweep.crash_explorer import (
    SweepOptions, SweepSpec, execute, load_trace, make_options, minimize_trace, prepare, summarize,
)
from crashsweep.disk_model import FaultPlan
from crashsweep.engines import resolve_engine
from crashsweep.scenarios import generate


FAULTS_FOR_BUG = {"journal-no-checksum": ("crash,torn,lost,corrupt", 16)}


def measure(engine: str, bug: str) -> dict:
    faults, variants = FAULTS_FOR_BUG.get(bug, ("crash,torn,lost", 4))
    adapter = resolve_engine(engine)
    sectors = max(256, adapter.sectors_needed(adapter.parse_options({"bug": bug}), 4096))
    spec = SweepSpec(ops=tuple(generate("default", 0)), engine=engine, scenario="default", sector_count=sectors,
                     options=make_options({"bug": bug}),
                     faults=FaultPlan.parse(faults, variants_per_point=variants)).validate()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        run = execute(prepare(spec, SweepOptions(out_dir=out, jobs=os.cpu_count() or 1)))
        summary = summarize(run)
        violating = sorted(state for state, result in run.results.items() if result.get("kind"))
        row = {"bug": bug, "faults": faults, "found": bool(violating), "violations": summary["violations"],
               "distinct_states": summary["distinct_states"], "sweep_s": round(time.perf_counter() - started, 2),
               "states_until_first_violation": violating[0] + 1 if violating else None,
               "kinds": summary["violations_by_kind"]}
        if violating:
            first = run.results[violating[0]]
            from crashsweep.crash_explorer._trace import trace_name
            loaded, trace = load_trace(os.path.join(out, "traces", trace_name(first)))
            small_spec, small = minimize_trace(loaded, trace, budget_seconds=120)
            row.update(ops_before=len(spec.ops), ops_after=len(small_spec.ops),
                       minimized_kind=small["violation"]["kind"], minimize_s=small["minimized"]["seconds"])
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="betree")
    parser.add_argument("--out")
    args = parser.parse_args()
    args.out = args.out or os.path.join(os.path.dirname(__file__), "results", f"bugs-{args.engine}.json")
    rows = [measure(args.engine, bug) for bug in resolve_engine(args.engine).bugs]
    print("| bug | faults | found | violations / distinct states | states until first | minimized ops | kind |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| `{row['bug']}` | {row['faults']} | {'yes' if row['found'] else '**no**'} | {row['violations']} / "
              f"{row['distinct_states']} | {row['states_until_first_violation']} | "
              f"{row.get('ops_before')} → {row.get('ops_after')} | {row.get('minimized_kind')} |")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(rows, handle, indent=1)
    return 0 if all(row["found"] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
