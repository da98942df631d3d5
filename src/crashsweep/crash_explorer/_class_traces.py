"""After a sweep: minimize one trace per failure class, within the budget, and read back what explains each.

The sweep writes the first (lowest state id) trace of every class as it finds it;
here, class by class in order of first appearance, that trace is minimized in a
contained process (the engine boundary) into `TRACE.min.json`, which carries the
class and the explanation (`_explain.py`). Classes the budget does not reach keep
their unminimized trace. `class_details` reads the explanations back from the
traces directory, as data, for the summary and the reports.

Invariant: a class's minimized trace replays to the class's kind; one that does not
(an engine that changed between the sweep and now) is not written.
"""

from __future__ import annotations

import os
import time

from crashsweep.crash_explorer._classes import class_trace_name
from crashsweep.crash_explorer._manifest import Manifest
from crashsweep.crash_explorer._minimize import minimize_contained
from crashsweep.crash_explorer._replay import replay_contained
from crashsweep.crash_explorer._trace import MINIMIZED_SUFFIX, load_trace, write_trace
from crashsweep.crash_explorer.errors import ExplorerError
from crashsweep.engines import EngineError

MINIMIZE_SECONDS_FLOOR = 2.0
DETAIL_CHARS_MAX = 2000
IO_MAX = 60


def minimized_name(trace_file: str) -> str:
    return trace_file[:-len(".json")] + MINIMIZED_SUFFIX


def minimize_classes(out_dir: str, classes: list[dict], classes_max: int, seconds_total: float,
                     deadline: float | None = None, memory_limit_bytes: int | None = None,
                     on_class=lambda index, total, entry: None) -> list[str]:
    """Minimize the trace of each of the first `classes_max` classes within `seconds_total` for all of them
    (each class gets an even share of what is left, so one slow class cannot starve the rest); the .min.json
    paths written. `deadline` (time.monotonic()) bounds it further; `on_class(i, n, class)` is told first."""
    written = []
    chosen = classes[:classes_max]
    ends = time.monotonic() + seconds_total
    deadline = ends if deadline is None else min(deadline, ends)
    for index, entry in enumerate(chosen):
        remaining = deadline - time.monotonic()
        if remaining < MINIMIZE_SECONDS_FLOOR:
            break
        on_class(index, len(chosen), entry)
        budget = remaining / (len(chosen) - index)
        name = class_trace_name(entry["id"], entry["kind"])
        path = os.path.join(out_dir, "traces", name)
        try:    # in contained processes: an engine that dies there costs the minimization, not the sweep
            spec, trace = load_trace(path)
            spec.validate()
            replayed = replay_contained(spec, trace, memory_limit_bytes)
            if replayed.get("kind") != trace["violation"]["kind"]:
                continue
            smaller = minimize_contained(spec, trace, budget, memory_limit_bytes=memory_limit_bytes)
        except (ExplorerError, EngineError, OSError):
            continue
        smaller["class"] = trace.get("class")
        write_trace(os.path.join(out_dir, "traces"), smaller, minimized_name(name), durable=True)
        Manifest(out_dir).add(os.path.join("traces", minimized_name(name)))
        written.append(os.path.join(out_dir, "traces", minimized_name(name)))
    return written


def _loaded(path: str) -> dict | None:
    try:
        return load_trace(path)[1] if os.path.exists(path) else None
    except ExplorerError:
        return None


def class_details(out_dir: str, classes: list[dict]) -> list[dict]:
    """The summary's classes with what their traces say: the violation's detail and diff, the I/O around the
    crash in the engine's terms, and, where a minimized trace exists, its path and explanation ("why")."""
    detailed = []
    for entry in classes:
        entry = dict(entry)
        first = _loaded(os.path.join(out_dir, entry["trace"]))
        if first is not None:
            entry["detail"] = str(first["violation"].get("detail", ""))[:DETAIL_CHARS_MAX]
            entry["diff"] = first.get("diff") or {}
            entry["output"] = str(first.get("output", ""))[:DETAIL_CHARS_MAX]
            entry["io"] = _fates_as_io(first.get("fates"))
        minimized = minimized_name(entry["trace"])
        trace = _loaded(os.path.join(out_dir, minimized))
        if trace is not None:
            explained = trace.get("explanation") if isinstance(trace.get("explanation"), dict) else {}
            entry["minimized"] = minimized
            entry["minimized_ops"] = len(trace["spec"].get("ops", []))
            entry["why"] = [text for text in explained.get("sentences", []) if isinstance(text, str)][:8]
            io = [call for call in explained.get("io", []) if isinstance(call, dict)]
            if io:
                entry["io"] = [_io_entry(call) for call in io][:IO_MAX]
        detailed.append(entry)
    return detailed


def _io_entry(call: dict) -> dict:
    op = call.get("op")
    return {"op": op if isinstance(op, int) else -1, "call": str(call.get("call", ""))[:300],
            "site": str(call.get("site", ""))[:300], "fate": str(call.get("fate", ""))[:100]}


def _fates_as_io(fates) -> list[dict]:
    """A sweep trace's pending units and fates as I/O rows (no op: they are all pending at the crash)."""
    if not isinstance(fates, list):
        return []
    return [_io_entry({"op": -2, "call": entry.get("call"), "site": entry.get("site"), "fate": entry.get("fate")})
            for entry in fates[:IO_MAX] if isinstance(entry, dict)]


def remove_fixed_minimized(out_dir: str, classes: list[dict]) -> int:
    """After a complete sweep: remove minimized traces crashsweep wrote here for classes that no longer fail."""
    alive = {minimized_name(entry["trace"]).split("/", 1)[1] for entry in classes}
    manifest = Manifest(out_dir)
    return manifest.remove_written(keep=lambda relative: not relative.endswith(MINIMIZED_SUFFIX)
                                   or os.path.basename(relative) in alive)
