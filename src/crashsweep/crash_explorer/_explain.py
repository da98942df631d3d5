"""Explaining a failing state in the engine's terms: its I/O, the fate of every pending call, and
the essential fates in words (`_fates.py`).

`explanation(recording, result, check)` is what a minimized trace and `crashsweep explain`
carry: {"sentences": [...], "fates": the essential fates, "io": the calls from the last
completed sync through the crash op, each with its source line and, for pending units,
what the crash did to them}.

`render(trace)` turns a trace (with or without an explanation) into the lines the CLI,
the pytest plugin and the report print. Data only: rendering never runs engine code.

Invariant: an explanation's `fates.choice` is a state that was checked to fail.
"""

from __future__ import annotations

from crashsweep.crash_explorer._classes import ClassNamer
from crashsweep.crash_explorer._fates import explain_state, sentences
from crashsweep.crash_explorer._io_view import call_line, io_calls
from crashsweep.crash_explorer._medium import durable_of
from crashsweep.crash_explorer.media import medium_of

IO_CALLS_SHOWN_MAX = 60
FOCUS_POINTS_MAX = 4096        # later crash points searched for one that explains a shared state
FOCUS_CHECKS_MAX = 16          # recoveries spent on that search (a point that leaves the same disk but passes)
TEXT_CHARS_MAX = 400


def last_sync_before(ops, op_index: int) -> int | None:
    """The index of the last sync op that completed before op `op_index` began (None: none)."""
    for index in range(min(op_index, len(ops)) - 1, -1, -1):
        if ops[index].kind == "sync":
            return index
    return None


def io_window(recording, result: dict, fates: dict[int, str]) -> list[dict]:
    """The calls from the last completed sync before the crash op through the crash op, with the fate of each
    pending unit (persisted / lost / torn), capped at IO_CALLS_SHOWN_MAX (the calls nearest the crash kept)."""
    op_index = result.get("op", -1)
    start = last_sync_before(recording.spec.ops, op_index)
    first_op = -1 if start is None else start
    calls = [dict(call) for call in io_calls(recording.log) if first_op <= call["op"] <= op_index]
    for call in calls:
        call["fate"] = call_fate(call, fates)
        del call["units"]
        call.pop("parts", None)
        call.pop("position", None)
    return calls[-IO_CALLS_SHOWN_MAX:]


def call_fate(call: dict, fates: dict[int, str]) -> str:
    """What a crash did to one call: "persisted", "lost", "torn", "durable" (before the crash point), or per part
    when its micro-ops differ ("data persisted, size lost")."""
    if not call["units"]:
        return ""
    marks = [fates.get(unit, "durable") for unit in call["units"]]
    if len(set(marks)) == 1:
        return marks[0]
    parts = call.get("parts") or ["part"] * len(marks)
    said = {}
    for part, mark in zip(parts, marks):
        said.setdefault(part, set()).add(mark)
    return ", ".join(f"{part} {'/'.join(sorted(found))}" for part, found in said.items())


def pending_fate_marks(recording, result: dict) -> dict[int, str]:
    point = recording.walk.points[result["point"]]
    choice = result.get("choice") or {}
    persisted = set(choice.get("persist", ()))
    torn = {unit: pieces for unit, pieces in choice.get("torn", ())}
    unit_word = medium_of(recording.context).unit_word
    return {unit: "persisted" if unit in persisted else torn_mark(torn[unit], recording.walk.writes[unit][1],
                                                                  unit_word) if unit in torn else "lost"
            for unit in point.pending}


def torn_mark(pieces, count: int, word: str) -> str:
    """"torn: sectors 0, 1, 3 of 4 landed"."""
    shown = ", ".join(str(piece) for piece in list(pieces)[:16]) + (" …" if len(pieces) > 16 else "")
    return f"torn: {word}{'s' if len(pieces) != 1 else ''} {shown} of {count} landed"


def explanation(recording, result: dict, check, checker_for=None) -> dict:
    """The explanation of a failing result of `recording` (crash point, no second crash). `check(choice)`: does
    that state still fail the same way (recovered in a worker process). `checker_for(result)`: that check for
    another (point, windows); given, a state that fails only through another crash point's windows is
    explained at that crash point (`focus`)."""
    walk = recording.walk
    focused = focus(recording, result, checker_for) if checker_for is not None else None
    if focused is not None:
        result, check = focused, checker_for(focused)
    point = walk.points[result["point"]]
    durable = durable_of(recording.context, walk, recording.log, hashed=False)
    fates = explain_state(list(point.pending), result.get("choice") or {}, check,
                          lambda choice: durable.normalize(point, choice))
    namer = ClassNamer(recording)
    medium = medium_of(recording.context).explain_as
    said = sentences(fates, namer.unit, medium, last_sync_before(recording.spec.ops, point.op_index))
    if focused is not None:
        said.insert(0, f"the same disk state is what a crash during {_op_name(point.op_index)} (crash point "
                       f"{point.index}) leaves, where it breaks the guarantee: explained at that crash")
    essential = dict(result, choice=fates["choice"])
    explained = {"sentences": [text[:TEXT_CHARS_MAX] for text in said], "fates": fates,
                 "io": io_window(recording, essential, pending_fate_marks(recording, essential))}
    if focused is not None:
        explained["focus"] = {"point": point.index, "op": point.op_index, "choice": result["choice"]}
    return explained


def _op_name(op_index: int) -> str:
    return "opening" if op_index < 0 else f"op {op_index}"


def focus(recording, result: dict, checker_for) -> dict | None:
    """A state shared by several crash points is checked against every one's window (DESIGN §5), so it can fail
    through a later point's window alone: its own point saw nothing wrong (a file whose directory entry was
    never made durable leaves the same disk at every point, and only after a completed sync is that a loss).
    Explaining it at its own point would blame the recovery. Returns the first later point that leaves the
    same disk with only its durable data and fails on its own windows (as a result to check), or None when
    the state fails on its own point's windows or no such point is found within FOCUS_POINTS_MAX points and
    FOCUS_CHECKS_MAX recoveries."""
    walk = recording.walk
    own = walk.points[result["point"]]
    choice = result.get("choice") or {}
    own_windows = {tuple(window) for window in own.windows}
    if {tuple(window) for window in result.get("windows") or ()} <= own_windows:
        return None                     # no other point's window: its own point is the whole story
    if checker_for(dict(result, windows=[list(window) for window in own.windows]))(choice):
        return None                     # it fails on its own point's windows
    durable = durable_of(recording.context, walk, recording.log)
    durable.advance(own.durable_count)
    image = durable.point_hash(own, durable.normalize(own, choice))
    checks = 0
    for point in walk.points[own.index + 1:own.index + 1 + FOCUS_POINTS_MAX]:
        if {tuple(window) for window in point.windows} <= own_windows:
            continue
        durable.advance(point.durable_count)
        empty = durable.normalize(point, {})
        if durable.point_hash(point, empty) != image:
            continue
        candidate = dict(result, point=point.index, choice=empty, op=point.op_index,
                         windows=[list(window) for window in point.windows])
        if checker_for(candidate)(empty):
            return candidate
        checks += 1
        if checks >= FOCUS_CHECKS_MAX:
            break
    return None


def _text(value, limit: int = TEXT_CHARS_MAX) -> str:
    return str(value)[:limit] if isinstance(value, (str, int)) else ""


def render(trace: dict) -> list[str]:
    """Lines explaining a trace: the class, the essential fates in words, and the I/O around the crash."""
    lines = []
    crash = trace.get("crash") or {}
    violation = trace.get("violation") or {}
    klass = trace.get("class") if isinstance(trace.get("class"), dict) else {}
    if klass.get("title"):
        lines.append(f"class {_text(klass.get('id'))}: {_text(klass.get('title'))}")
    if crash:
        lines.append(f"crash during op {_text(crash.get('op'))} of {len(trace.get('spec', {}).get('ops', []))} "
                     f"(crash point {_text(crash.get('point'))})")
    else:
        lines.append("no crash: the workload itself failed")
    lines.append(f"violation: {_text(violation.get('kind'))}: {_text(violation.get('detail'), 2000)}")
    explained = trace.get("explanation") if isinstance(trace.get("explanation"), dict) else {}
    said = [text for text in explained.get("sentences", []) if isinstance(text, str)]
    if said:
        lines.append("why:")
        lines += [f"  {_text(text)}" for text in said]
    io = [call for call in explained.get("io", []) if isinstance(call, dict)]
    if io:
        lines.append("I/O from the last completed sync to the crash (fate of each call in the failing state):")
        for call in io:
            shown = {"op": call.get("op") if isinstance(call.get("op"), int) else -1,
                     "call": _text(call.get("call")), "site": _text(call.get("site"))}
            fate = _text(call.get("fate"))
            lines.append(f"  {call_line(shown)}{f'   [{fate}]' if fate else ''}")
    elif isinstance(trace.get("fates"), list):
        lines.append("pending writes at the crash and their fates:")
        for entry in trace["fates"][:IO_CALLS_SHOWN_MAX]:
            if isinstance(entry, dict):
                site = _text(entry.get("site"))
                fate = _text(entry.get("fate"))
                pieces = entry.get("landed_pieces")
                if fate == "torn" and isinstance(pieces, list):
                    fate = "torn: pieces " + ", ".join(_text(piece) for piece in pieces[:16]) + " landed"
                lines.append(f"  {fate:9} {_text(entry.get('call'))}{f'   {site}' if site else ''}")
    return lines
