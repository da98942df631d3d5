"""The store fuzz campaign at scale: N damaged images of the built-in store (default 1,000,000), on the
in-memory device, in parallel; how many gave a wrong value (must be 0) and images per second.

Run: python benchmarks/bench_store_fuzz.py [--images N] [--jobs J] [--out benchmarks/results/store-fuzz.json]

The campaign (faults, bases, outcomes) is tests/quality/store_fuzz.py; the suite runs 20,000 of the same images.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.quality import store_fuzz  # noqa: E402

SLICE_IMAGES = 20_000


def _slice(bounds: tuple[int, int]) -> tuple[dict, list]:
    examples: list = []
    outcomes = store_fuzz.campaign(bounds[0], bounds[1] - bounds[0], examples=examples)
    return dict(outcomes), examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", default="benchmarks/results/store-fuzz.json")
    args = parser.parse_args()
    bounds = [(start, min(start + SLICE_IMAGES, args.images)) for start in range(0, args.images, SLICE_IMAGES)]
    started = time.perf_counter()
    outcomes: Counter = Counter()
    examples: list = []
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for counts, found in pool.imap_unordered(_slice, bounds):
            outcomes.update(counts)
            examples.extend(found)
    elapsed = time.perf_counter() - started
    result = {"images": args.images, "jobs": args.jobs, "outcomes": dict(sorted(outcomes.items())),
              "wrong": outcomes.get("wrong", 0), "other_errors": outcomes.get("other-error", 0),
              "elapsed_s": round(elapsed, 1), "images_per_s": round(args.images / elapsed),
              "examples": examples[:10]}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
