"""From finding to fixing: output size and time to the first explained failure, per-class vs per-state.

For small buggy engines, the default sweep runs twice, side by side in one run:
- `classes` (the default): one trace per failure class, minimized and explained;
- `per-state`: the earlier behaviour, `--traces all --minimize 1` (one trace per violating state,
  results lines with whole maps; the first trace minimized, with no explanation before this change).
Each row: wall time of the whole command, files and bytes in the output directory, classes, and whether
the command printed an explanation (a "why" line naming the engine's source lines).

Run: python benchmarks/bench_findings.py [--jobs 2]; writes benchmarks/results/findings.json.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENGINES = [("json_kv.py:JsonKV", []),                                   # the JSON store, whole workload
           ("fs_engines.py:MissingDirectoryFsync", []),
           ("example-wal", ["--option", "bug=no-log-checksum"]),
           ("betree", ["--option", "bug=node-written-in-place"])]
MODES = {"classes": [], "per-state": ["--traces", "all", "--minimize", "1"]}


def _size(directory: str) -> tuple[int, int]:
    files = [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names]
    return len(files), sum(os.path.getsize(path) for path in files)


def run(engine: str, extra: list[str], mode: str, jobs: int, workdir: str) -> dict:
    out = os.path.join(workdir, f"out-{mode}")
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "crashsweep", "sweep", "--engine", engine, *extra, *MODES[mode],
               "--jobs", str(jobs), "--out", out, "--no-corpus"]
    started = time.monotonic()
    finished = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    files, size = _size(out)
    summary = json.load(open(os.path.join(out, "summary.json")))
    explained = any(line.startswith("    needs") or line.startswith("    assumes")
                    for line in finished.stdout.splitlines())
    return {"engine": engine, "mode": mode, "exit": finished.returncode, "seconds": round(elapsed, 1),
            "files": files, "bytes": size, "violations": summary["violations"], "classes": len(summary["classes"]),
            "explained": explained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--engines", default="all", help="comma-separated engines of the list, or all")
    args = parser.parse_args()
    chosen = ENGINES if args.engines == "all" else [(e, x) for e, x in ENGINES if e in args.engines.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in ("json_kv.py", "fs_engines.py"):
            shutil.copy(os.path.join(ROOT, "tests", "engines", name), workdir)
        for engine, extra in chosen:
            for mode in MODES:
                row = run(engine, extra, mode, args.jobs, workdir)
                rows.append(row)
                print(f"{engine:38} {mode:10} {row['seconds']:7.1f} s {row['files']:7,} files "
                      f"{row['bytes'] / 1e6:9.1f} MB  {row['violations']:7,} violations in {row['classes']} "
                      f"class(es), explained: {row['explained']}", flush=True)
    path = os.path.join(ROOT, "benchmarks", "results",
                        "findings.json" if args.engines == "all" else "findings-partial.json")
    with open(path, "w") as handle:
        json.dump({"jobs": args.jobs, "rows": rows}, handle, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
