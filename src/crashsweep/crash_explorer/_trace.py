"""Traces: a failing crash state as a self-contained JSON file that replays exactly.

A trace holds the format and version, the whole spec (engine and options, the
ops themselves, seed, device, fault plan, strategy), the crash point (index,
event position, op), the crash windows, the chosen persisted / torn / damaged
writes and faults, the chain of further crashes (crash during recovery), and
the violation with expected and actual read-outs and the diff.

Loading a trace parses JSON and validates every field; it never executes code
from it (no pickle, no eval, no import of names found in it beyond the engine
registry's own names): validating never imports the engine it names.
"""

from __future__ import annotations

import json
import os

from crashsweep.crash_explorer._spec import CRASH_DEPTH_MAX, SweepSpec
from crashsweep.crash_explorer.errors import SpecError, TraceError
from crashsweep.reference import VIOLATION_KINDS

TRACE_FORMAT = "crashsweep-trace"
TRACE_VERSION = 1
TRACE_BYTES_MAX = 256 << 20
MINIMIZED_SUFFIX = ".min.json"
FATES_MAX = 400          # pending units listed with their fate in a trace


def make_trace(spec: SweepSpec, result: dict, position: int | None) -> dict:
    crash = None
    if result.get("point") is not None and result["point"] >= 0:
        crash = {"point": result["point"], "position": position, "op": result.get("op"),
                 "windows": result.get("windows", [])}
    trace = {
        "format": TRACE_FORMAT, "version": TRACE_VERSION, "spec": spec.to_json(), "crash": crash,
        "choice": result.get("choice", {}), "nested": result.get("nested", []),
        "violation": {"kind": result["kind"], "detail": result.get("detail", "")},
        "expected": result.get("expected"), "actual": result.get("actual"), "diff": result.get("diff"),
    }
    if "state" in result:
        trace["state"] = result["state"]
    if result.get("output"):
        trace["output"] = result["output"]      # what the engine printed in this state (captured, capped)
    return trace


def pending_fates(namer, pending, choice: dict) -> list[dict]:
    """The crash point's pending units in issue order: what each is, the engine line that issued it, and what
    the crash did to it ("persisted", "lost", "torn": which pieces landed)."""
    persisted = set(choice.get("persist", ()))
    torn = {unit: pieces for unit, pieces in choice.get("torn", ())}
    fates = []
    for unit in list(pending)[:FATES_MAX]:
        fate = "persisted" if unit in persisted else "torn" if unit in torn else "lost"
        entry = {"unit": unit, "call": namer.names.get(unit, f"unit {unit}"), "site": namer.sites.get(unit, ""),
                 "fate": fate}
        if fate == "torn":
            entry["landed_pieces"] = list(torn[unit])
        fates.append(entry)
    return fates


def trace_name(result: dict) -> str:
    point = result.get("point", -1)
    return f"{result['kind']}-p{point if point is not None and point >= 0 else 'none'}-s{result.get('state', 0)}.json"


def write_trace(directory: str, trace: dict, name: str, durable: bool = False) -> str:
    """Write atomically (a temporary file, then rename); `durable`: fsync the file and the directory, so
    the trace survives a power loss before anything that links it is written."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(trace, handle, indent=1, sort_keys=True)
        handle.write("\n")
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, path)
    if durable:
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    return path


def load_trace(path: str) -> tuple[SweepSpec, dict]:
    """(spec, trace). Raises TraceError with a one-line reason naming what is wrong.

    Data only: this imports nothing, not even the engine the trace names (see `_profiles.allow_engine`);
    the spec is checked in everything that needs no knowledge of the engine."""
    try:
        if os.path.getsize(path) > TRACE_BYTES_MAX:
            raise TraceError(f"trace {path} is over {TRACE_BYTES_MAX >> 20} MiB: not a trace crashsweep wrote")
        with open(path, encoding="utf-8") as handle:
            trace = json.load(handle)
    except FileNotFoundError:
        raise TraceError(f"trace {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TraceError(f"trace {path} cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise TraceError(f"trace {path} is not valid JSON (line {error.lineno}: {error.msg})") from None
    except RecursionError:
        raise TraceError(f"trace {path} nests too deeply to be a trace") from None
    if not isinstance(trace, dict) or trace.get("format") != TRACE_FORMAT:
        raise TraceError(f"{path} is not a crashsweep trace (missing \"format\": \"{TRACE_FORMAT}\")")
    if trace.get("version") != TRACE_VERSION:
        raise TraceError(f"trace {path} has version {trace.get('version')!r}; this crashsweep reads {TRACE_VERSION}")
    try:
        spec = SweepSpec.from_json(trace.get("spec")).validate(engine=False)
    except (SpecError, ValueError) as error:
        raise TraceError(f"trace {path}: {error}") from None
    violation = trace.get("violation")
    if not isinstance(violation, dict) or violation.get("kind") not in VIOLATION_KINDS:
        raise TraceError(f"trace {path}: \"violation\" must name a kind among {', '.join(VIOLATION_KINDS)}")
    _check_choice(trace.get("choice"), path)
    crash = trace.get("crash")
    if crash is not None:
        if not isinstance(crash, dict) or not _integer(crash.get("point")) or crash["point"] < 0:
            raise TraceError(f"trace {path}: \"crash\" must have a non-negative integer \"point\"")
        if crash.get("position") is not None and not _integer(crash["position"]):
            raise TraceError(f"trace {path}: \"crash.position\" must be an integer")
        windows = crash.get("windows")
        if not isinstance(windows, list) or not all(
                isinstance(w, list) and len(w) == 2 and all(isinstance(x, int) and x >= 0 for x in w) and w[0] <= w[1]
                for w in windows) or not windows:
            raise TraceError(f"trace {path}: \"crash.windows\" must be a list of [synced, started] pairs")
    nested = trace.get("nested", [])
    if nested is not None and (not isinstance(nested, list) or len(nested) > CRASH_DEPTH_MAX):
        raise TraceError(f"trace {path}: \"nested\" must be null (unknown: explore them) or a list of at most "
                         f"{CRASH_DEPTH_MAX} further crashes")
    for step in nested or ():
        if not isinstance(step, dict) or not _integer(step.get("point")) or step["point"] < 0:
            raise TraceError(f"trace {path}: every nested crash needs a non-negative integer \"point\"")
        _check_choice(step.get("choice"), path)
    if "state" in trace and not _integer(trace["state"]):
        raise TraceError(f"trace {path}: \"state\" must be an integer")
    if not isinstance(violation.get("detail", ""), str):
        raise TraceError(f"trace {path}: \"violation.detail\" must be text")
    problem = diff_shape_problem(trace.get("diff"))
    if problem:
        raise TraceError(f"trace {path}: {problem}")
    return spec, trace


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2 ** 62


def _check_choice(choice, path: str) -> None:
    problem = choice_shape_problem(choice)
    if problem:
        raise TraceError(f"trace {path}: {problem}")


def choice_shape_problem(choice) -> str | None:
    """What is wrong with the shape of a crash choice (persist / torn / faults), or None."""
    if not isinstance(choice, dict) or set(choice) - {"persist", "torn", "faults"}:
        return "\"choice\" must be an object with persist / torn / faults"
    persist, torn, faults = choice.get("persist", []), choice.get("torn", []), choice.get("faults", [])
    if not isinstance(persist, list) or not all(_integer(rid) and rid >= 0 for rid in persist):
        return "\"choice.persist\" must be a list of request ids"
    if not isinstance(torn, list) or not all(
            isinstance(item, list) and len(item) == 2 and _integer(item[0]) and item[0] >= 0
            and isinstance(item[1], list) and all(_integer(offset) and offset >= 0 for offset in item[1])
            for item in torn):
        return "\"choice.torn\" must be a list of [request id, [sector offsets]]"
    if not isinstance(faults, list) or not all(
            isinstance(fault, dict) and fault.get("kind") in ("corrupt", "misdirect", "latent", "read-error")
            and all(_integer(value) or isinstance(value, str) for value in fault.values())
            for fault in faults):
        return ("\"choice.faults\" must be a list of faults (corrupt, misdirect, latent, read-error) with "
                "integer fields")
    return None


def diff_shape_problem(diff) -> str | None:
    """What is wrong with the shape of a diff ({missing: {k: v}, extra: {k: v}, wrong: {k: [e, a]}}), or None."""
    if diff is None:
        return None
    if not isinstance(diff, dict) or set(diff) - {"missing", "extra", "wrong"}:
        return "\"diff\" must be an object with missing / extra / wrong"
    for name in ("missing", "extra"):
        part = diff.get(name, {})
        if not isinstance(part, dict) or not all(isinstance(value, str) for value in part.values()):
            return f"\"diff.{name}\" must map keys to values (texts)"
    wrong = diff.get("wrong", {})
    if not isinstance(wrong, dict) or not all(isinstance(pair, list) and len(pair) == 2
                                              and all(isinstance(item, str) for item in pair)
                                              for pair in wrong.values()):
        return "\"diff.wrong\" must map keys to [expected, actual]"
    return None
