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
from crashsweep.reference import VIOLATION_KINDS

LINE_BYTES_MAX = 64 << 20
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
    for number, line in enumerate(data.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            break
        if len(line) > LINE_BYTES_MAX:
            raise ResultsError(f"{path} line {number} is over {LINE_BYTES_MAX >> 20} MiB: not a results file")
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):    # not JSON, not UTF-8, or nested too deeply
            if header is None:
                raise ResultsError(f"{path} is not a crashsweep results file (line 1 is not a JSON header)") \
                    from None
            break
        valid += len(line)
        if header is None:
            if not isinstance(record, dict) or record.get("type") != "header":
                raise ResultsError(f"{path} is not a crashsweep results file (no header line)")
            problem = header_problem(record)
            if problem:
                raise ResultsError(f"{path} line 1: {problem}")
            header = record
        elif isinstance(record, dict) and record.get("type") == "state":
            problem = state_problem(record)
            if problem:
                raise ResultsError(f"{path} line {number}: {problem}")
            results.append(record)
        else:
            raise ResultsError(f"{path} line {number}: expected a state result object")
    if header is None:
        raise ResultsError(f"{path} is empty or not a crashsweep results file")
    return header, results, valid


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_PLAN_FIELDS = {"crash_points": int, "states_enumerated": int, "distinct_total": int, "planned": int,
                "space_total": str, "exhausted": bool, "per_point": list}
_POINT_FIELDS = ("point", "op", "position", "pending", "space", "enumerated", "distinct")
_STATE_TYPES = {"point": (int, type(None)), "kind": (str, type(None)), "outcome": str, "detail": str,
                "matched": int, "nearest": int, "latest": bool, "choice": dict, "windows": list, "events": list,
                "engine_s": (int, float), "total_s": (int, float), "nested_states": int, "diff": (dict, type(None)),
                "output": str, "leftovers": int, "op": int, "image": str, "points": int,
                "nested": (list, type(None)), "memo": bool, "continued": int, "raised": str,
                "class": str, "class_title": str, "diff_keys": int}


def header_problem(header: dict) -> str | None:
    """What is wrong with a results header (None: nothing). Data only: its engine is not imported."""
    from crashsweep.crash_explorer._spec import SweepSpec     # here: _spec imports the engine registry
    try:
        SweepSpec.from_json(header.get("spec")).validate(engine=False)
    except ExplorerError as error:
        return str(error)
    plan = header.get("plan")
    if not isinstance(plan, dict):
        return "the header has no \"plan\" object"
    for name, kind in _PLAN_FIELDS.items():
        if not isinstance(plan.get(name), kind) or (kind is int and isinstance(plan[name], bool)):
            return f"the header's plan needs {name!r} ({kind.__name__})"
    if not plan["space_total"].isdigit():
        return "the header's plan.space_total must be digits"
    for entry in plan["per_point"]:
        if not isinstance(entry, dict) or not all(_integer(entry.get(name)) for name in _POINT_FIELDS) \
                or not isinstance(entry.get("exhausted"), bool):
            return f"every plan.per_point entry needs integer {', '.join(_POINT_FIELDS)} and a boolean exhausted"
    shard = header.get("shard", [0, 1])
    if not (isinstance(shard, list) and len(shard) == 2 and all(_integer(x) for x in shard)
            and 0 <= shard[0] < shard[1]):
        return "the header's shard must be [I, N] with 0 <= I < N"
    if not isinstance(header.get("spec_id"), str):
        return "the header has no spec_id"
    warnings = header.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(warning, str) for warning in warnings):
        return "the header's warnings must be a list of texts"
    return None


def state_problem(record: dict) -> str | None:
    """What is wrong with a state result line (None: nothing)."""
    if not _integer(record.get("state")):
        return "a state result needs an integer \"state\""
    if "outcome" not in record or "kind" not in record:
        return "a state result needs \"outcome\" and \"kind\""
    for name, kinds in _STATE_TYPES.items():
        if name in record and (not isinstance(record[name], kinds)
                               or (isinstance(record[name], bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)))):
            return f"field {name!r} of state {record['state']} has the wrong type"
    if record["kind"] is not None and record["kind"] not in VIOLATION_KINDS:
        return f"state {record['state']} has an unknown kind {record['kind']!r}"
    if not all(isinstance(event, str) for event in record.get("events", ())):
        return f"state {record['state']}: events must be texts"
    from crashsweep.crash_explorer._trace import choice_shape_problem, diff_shape_problem
    problem = (choice_shape_problem(record["choice"]) if "choice" in record else None) \
        or diff_shape_problem(record.get("diff"))
    if problem:
        return f"state {record['state']}: {problem}"
    windows = record.get("windows", [])
    if not all(isinstance(w, list) and len(w) == 2 and all(_integer(x) and x >= 0 for x in w) for w in windows):
        return f"state {record['state']}: windows must be [synced, started] pairs"
    for step in record.get("nested") or ():
        if not isinstance(step, dict) or not _integer(step.get("point")) or choice_shape_problem(step.get("choice")):
            return f"state {record['state']}: every nested crash needs a point and a choice"
    return None


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
        self._write_text(json.dumps(record, separators=(",", ":")))

    def _write_text(self, line: str) -> None:
        self._pending.append(line + "\n")
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

    def write_text(self, result: dict, text: str) -> None:
        """`write(result)` whose line, `{"type": "state", **result}` as JSON, is `text` already."""
        assert result["state"] not in self.done, result["state"]
        self._write_text(text)
        self.done[result["state"]] = {"type": "state", **result}

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
    """Counts by outcome and violation kind, recovered-to-latest vs older snapshots, engine time. (One pass:
    a sweep's end waits on it, over hundreds of thousands of results.)"""
    outcomes: Counter = Counter()
    violations: Counter = Counter()
    sequences: Counter = Counter()          # a result's recovery events, as a whole: most results share a few
    latest = nested = leftovers = 0
    engine_s = total_s = 0.0
    for result in results:
        outcome = result["outcome"]
        outcomes[outcome] += 1
        get = result.get
        kind = get("kind")
        if kind:
            violations[kind] += 1
        if outcome == "recovered" and get("latest"):
            latest += 1
        engine_s += get("engine_s", 0.0)
        total_s += get("total_s", 0.0)
        nested += get("nested_states", 0)
        if get("leftovers"):
            leftovers += 1
        events = get("events")
        if events:
            sequences[tuple(events)] += 1
    paths: Counter = Counter()
    for events, count in sequences.items():
        for event in events:
            paths[event] += count
    return {"outcomes": dict(sorted(outcomes.items())), "violations_by_kind": dict(sorted(violations.items())),
            "violations": sum(violations.values()), "recovered_latest": latest,
            "recovered_older": outcomes.get("recovered", 0) - latest, "refused": outcomes.get("refused", 0),
            "nested_states": nested, "engine_s": engine_s, "worker_s": total_s, "states_with_leftovers": leftovers,
            "recovery_paths": dict(paths.most_common())}
