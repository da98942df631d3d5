"""Failure classes: violations grouped by what caused them, one line and one trace per class.

A sweep of a buggy engine finds thousands of violating states that share a handful
of causes. A state's class is decided from its result and the recording alone (no
engine run), so every state is classed as it arrives:

- an engine exception (`recovery-error`, `engine-error`): the kind, the exception
  type and the engine line that raised it ("ValueError at json_kv.py:14");
- lost or mixed data at a crash point: the kind and the *shape* of the state's
  deviation from in-order persistence of its pending units (micro-ops or block
  writes), named by the engine line that issued each:
  - a torn unit: **atomicity** (which lines' writes tore);
  - a unit lost while a later one persisted: **ordering** (the first such lost unit's
    line and kind, and the last persisted unit's);
  - a prefix of the pending units persisted, in order, and the rest lost:
    **durability** (the first lost unit: what the engine assumed durable);
  - everything pending persisted: the recovery itself (the kind and the op);
- a state reached through a second crash (crash during the continuation) without an
  exception: the kind and "after a second crash" (with an exception it is classed by the
  exception, like a first crash's);
- anything else (a hang, exhausted memory, no crash at all): the kind and the op kind.

The minimal set of deviations that still fails (the *essential fates*, `_fates.py`)
is computed for each class's representative afterwards: it explains the class.

Invariants: `classify` is a pure function of (result, recording); a class id is a
short stable digest of its key, so it is the same on every run, shard and machine;
the representative of a class is its first state by `representative_order` — a state
reached by one crash before one needing two (its explanation is simpler), then the
lowest state id (independent of --jobs).
"""

from __future__ import annotations

import hashlib
import re

from crashsweep.crash_explorer._io_view import unit_names, unit_sites

_TASK = re.compile(r"^(?:thread|process) \d+$| \((?:thread|process) \d+\)$")   # the task a native site names
DIFF_KEYS_MAX = 8                 # keys of a diff kept per part in a results line
DIFF_VALUE_CHARS_MAX = 600        # characters of one value kept in a results line
RESULT_DROPPED = ("actual", "expected")   # whole maps: in the class's trace, never in results.jsonl


class ClassNamer:
    """Names the units of one recording; `classify(result)` gives (class id, title)."""

    def __init__(self, recording) -> None:
        self.recording = recording
        self.names = unit_names(recording.log)
        # A class is the code's, not the task's: an engine that starts a thread per operation would otherwise make
        # a class per thread ("(thread 4)", "(thread 5)", ...). Only the class's key and title drop the task.
        self.sites = {unit_id: _TASK.sub("", site) for unit_id, site in unit_sites(recording.log).items()}
        self.ops = recording.spec.ops

    def unit(self, unit_id: int) -> str:
        """"write db.json.tmp [0, 5,120) at json_kv.py:28"."""
        site = self.sites.get(unit_id, "")
        return f"{self.names.get(unit_id, f'unit {unit_id}')}{f' at {site}' if site else ''}"

    def _verb(self, unit_id: int) -> str:
        name = self.names.get(unit_id, "write")
        verb = name.split(" ", 1)[0]
        target = name.split(" ", 2)[1] if verb in ("write", "size", "create", "mkdir", "unlink") and " " in name \
            else ""
        if verb == "size":
            target = name.split(" ")[2]
        if verb == "write" and target == "sectors":
            target = ""
        site = self.sites.get(unit_id, "")
        return f"{verb}{f'({target})' if target else ''}{f' at {site}' if site else ''}"

    def classify(self, result: dict) -> tuple[str, str]:
        key, title = self._key(result)
        return hashlib.blake2b(key.encode(), digest_size=4).hexdigest(), title

    def _op_kind(self, result: dict) -> str:
        op = result.get("op")
        if isinstance(op, int) and 0 <= op < len(self.ops):
            return self.ops[op].kind
        return "opening" if op == -1 else "the workload"

    def _crash_during(self, result: dict) -> str:
        """"crash during a put", "crash while opening", "crash during the workload"."""
        kind = self._op_kind(result)
        if kind == "opening":
            return "crash while opening"
        return f"crash during {'the workload' if kind == 'the workload' else 'a ' + kind}"

    def _key(self, result: dict) -> tuple[str, str]:
        kind = result["kind"]
        raised = result.get("raised")
        if result.get("point") is None:
            cause = raised or self._op_kind(result)
            return f"{kind}|workload|{cause}", f"{kind}: without any crash{f', {raised}' if raised else ''}"
        if raised:      # the same exception at the same line is one cause, after one crash or two
            return f"{kind}|raised|{raised}", f"{kind}: {raised}"
        if result.get("nested"):
            return f"{kind}|nested", f"{kind} after a crash during the continuation"
        if "choice" not in result or kind in ("hang", "resource-exhausted"):
            return f"{kind}|{self._op_kind(result)}", f"{kind} ({self._crash_during(result)})"
        return self._fate_key(kind, result)

    def _fate_key(self, kind: str, result: dict) -> tuple[str, str]:
        points = self.recording.walk.points
        point = points[result["point"]] if 0 <= result["point"] < len(points) else None
        pending = list(point.pending) if point is not None else []
        choice = result.get("choice") or {}
        persisted = set(choice.get("persist", ()))
        torn = sorted(unit for unit, _ in choice.get("torn", ()))
        faults = sorted({fault.get("kind", "") for fault in choice.get("faults", ())})
        suffix = f" with {', '.join(faults)}" if faults else ""
        if torn:
            verbs = sorted({self._verb(unit) for unit in torn})
            return (f"{kind}|atomicity|{'|'.join(verbs)}|{suffix}",
                    f"{kind}: torn {', '.join(verbs)} (atomicity){suffix}")
        landed = persisted | set(torn)
        lost = [unit for unit in pending if unit not in landed]
        later = [unit for unit in pending if unit in landed and lost and unit > lost[0]]
        if later:
            first_lost, last_landed = lost[0], later[-1]
            a, b = self._verb(first_lost), self._verb(last_landed)
            return (f"{kind}|ordering|{a}|{b}|{suffix}",
                    f"{kind}: {a} lost while the later {b} persisted (ordering){suffix}")
        if lost:
            a = self._verb(lost[0])
            return (f"{kind}|durability|{a}|{suffix}",
                    f"{kind}: pending writes lost in order from {a} on (durability){suffix}")
        return (f"{kind}|in-order|{self._op_kind(result)}|{suffix}",
                f"{kind} with every pending write persisted ({self._crash_during(result)}){suffix}")


def compact(result: dict) -> dict:
    """A result as a results.jsonl line: no whole maps, a diff of at most `DIFF_KEYS_MAX` keys a part with
    values capped (the class's trace keeps all of it)."""
    line = {name: value for name, value in result.items() if name not in RESULT_DROPPED}
    diff = result.get("diff")
    if isinstance(diff, dict):
        total, capped = 0, {}
        for part, entries in diff.items():
            if not isinstance(entries, dict):
                continue
            total += len(entries)
            kept = list(entries.items())[:DIFF_KEYS_MAX]
            if part == "wrong":
                capped[part] = {key: [value[0][:DIFF_VALUE_CHARS_MAX], value[1][:DIFF_VALUE_CHARS_MAX]]
                                for key, value in kept}
            else:
                capped[part] = {key: value[:DIFF_VALUE_CHARS_MAX] for key, value in kept}
        line["diff"] = capped
        line["diff_keys"] = total
    return line


def class_table(results: list[dict]) -> list[dict]:
    """The classes of a set of results: [{id, kind, title, states, first_state, first}], by first state id."""
    classes: dict[str, dict] = {}
    min_state: dict[str, int] = {}
    for result in results:
        if not result.get("kind") or not result.get("class"):
            continue
        min_state[result["class"]] = min(min_state.get(result["class"], result["state"]), result["state"])
        entry = classes.get(result["class"])
        if entry is None:
            entry = classes[result["class"]] = {"id": result["class"], "kind": result["kind"],
                                                "title": result.get("class_title", result["kind"]), "states": 0,
                                                "first_state": result["state"], "first": result}
        entry["states"] += 1
        if representative_order(result) < representative_order(entry["first"]):
            entry["first_state"], entry["first"] = result["state"], result
    return sorted(classes.values(), key=lambda entry: min_state[entry["id"]])


def representative_order(result: dict) -> tuple[int, int]:
    """Which state of a class represents it: one crash before two, then the lowest state id."""
    return (1 if result.get("nested") else 0, result["state"])


def class_trace_name(class_id: str, kind: str) -> str:
    return f"{kind}-{class_id}.json"
