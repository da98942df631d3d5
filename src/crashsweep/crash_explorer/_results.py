"""results.jsonl: one JSON object per line, streamed as states finish, never lost.

Line 1 is a header ({"type": "header", "format": 1, "spec_id", "spec", "plan"}).
Every further line is one state's result ({"type": "state", "state": id, ...}).
Lines go out in batches (at most `BATCH_LINES` lines or `BATCH_SECONDS` apart, and
at close, which Ctrl-C reaches), each batch with a single `os.write` on an O_APPEND
descriptor, so a kill leaves at most one partial last line and loses at most the last
batch; readers skip a partial line and `--resume` truncates it, then runs the states
still missing.

Invariants: a state id appears at most once in a file written by this module;
the summary is computed from the set of results, so it does not depend on order.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

from crashsweep.crash_explorer.errors import ExplorerError

RESULTS_FORMAT = 1
RESULTS_NAME = "results.jsonl"
BATCH_LINES = 256
BATCH_SECONDS = 0.25


class ResultsError(ExplorerError, ValueError):
    """A results file is missing, from another sweep, or not a crashsweep results file."""


def read_results(path: str) -> tuple[dict, list[dict], int]:
    """(header, state results, byte length of the valid part). Skips a partial last line."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ResultsError(f"cannot read {path}: {error.strerror}") from None
    header, results, valid = None, [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        valid += len(line)
        if header is None:
            if not isinstance(record, dict) or record.get("type") != "header":
                raise ResultsError(f"{path} is not a crashsweep results file (no header line)")
            header = record
        elif record.get("type") == "state":
            results.append(record)
    if header is None:
        raise ResultsError(f"{path} is empty or not a crashsweep results file")
    return header, results, valid


class ResultsWriter:
    """Example: `with ResultsWriter(path, header) as writer: writer.write(result)`."""

    def __init__(self, path: str, header: dict, resume: bool = False):
        self.path = path
        self.done: dict[int, dict] = {}
        self._pending: list[str] = []
        self._flushed_at = time.monotonic()
        if resume and os.path.exists(path):
            old_header, results, valid = read_results(path)
            if old_header.get("spec_id") != header["spec_id"]:
                raise ResultsError(f"{path} holds results of a different sweep (spec {old_header.get('spec_id')},"
                                   f" this one is {header['spec_id']}): use another --out or drop --resume")
            if list(old_header.get("shard", [0, 1])) != list(header.get("shard", [0, 1])):
                old = old_header.get("shard", [0, 1])
                raise ResultsError(f"{path} holds shard {old[0]}/{old[1]} of this sweep, not "
                                   f"{header['shard'][0]}/{header['shard'][1]}: resume with the same --shard")
            self.done = {result["state"]: result for result in results}
            with open(path, "r+b") as handle:
                handle.truncate(valid)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        else:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            self._write_line({"type": "header", "format": RESULTS_FORMAT, **header})
            self.flush()

    def _write_line(self, record: dict) -> None:
        self._pending.append(json.dumps(record, separators=(",", ":")) + "\n")
        if len(self._pending) >= BATCH_LINES or time.monotonic() - self._flushed_at > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the lines written so far (one `os.write`)."""
        if self._pending:
            data = "".join(self._pending).encode()
            self._pending = []
            written = os.write(self._fd, data)
            assert written == len(data), "short write to results.jsonl"
        self._flushed_at = time.monotonic()

    def write(self, result: dict) -> None:
        assert result["state"] not in self.done, result["state"]
        record = {"type": "state", **result}
        self._write_line(record)
        self.done[result["state"]] = record

    def close(self) -> None:
        if self._fd >= 0:
            self.flush()
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def tally(results: list[dict]) -> dict:
    """Counts by outcome and violation kind, recovered-to-latest vs older snapshots, engine time."""
    outcomes = Counter(result["outcome"] for result in results)
    violations = Counter(result["kind"] for result in results if result.get("kind"))
    latest = sum(1 for result in results if result["outcome"] == "recovered" and result.get("latest"))
    engine_s = sum(result.get("engine_s", 0.0) for result in results)
    total_s = sum(result.get("total_s", 0.0) for result in results)
    nested = sum(result.get("nested_states", 0) for result in results)
    paths = Counter(event for result in results for event in result.get("events", ()))
    leftovers = sum(1 for result in results if result.get("leftovers"))
    return {"outcomes": dict(sorted(outcomes.items())), "violations_by_kind": dict(sorted(violations.items())),
            "violations": sum(violations.values()), "recovered_latest": latest,
            "recovered_older": outcomes.get("recovered", 0) - latest, "refused": outcomes.get("refused", 0),
            "nested_states": nested, "engine_s": engine_s, "worker_s": total_s, "states_with_leftovers": leftovers,
            "recovery_paths": dict(paths.most_common())}
