"""The commands that work on one trace or one workload: replay, explain, minimize, log.

Each loads a trace as data, lets its engine run only where the user allows it
(`_profiles.allow_engine`), and runs engine code only in contained processes.
What they print speaks the engine's terms (files, offsets, renames, fsyncs, sector
ranges, source lines), never request ids.
"""

from __future__ import annotations

import os

from rich.console import Console

from crashsweep._cli_common import EXIT_OK, EXIT_USAGE, EXIT_VIOLATIONS
from crashsweep.crash_explorer import load_trace, write_trace
from crashsweep.crash_explorer._explain import render
from crashsweep.crash_explorer._io_view import call_line, io_calls
from crashsweep.crash_explorer._minimize import explain_contained, minimize_contained
from crashsweep.crash_explorer._profiles import allow_engine, engine_flag, engine_profile
from crashsweep.crash_explorer._recheck import FIXED, REPRODUCED, check_trace, recheck_trace_name
from crashsweep.crash_explorer._recording import new_recording_differs, record_contained
from crashsweep.crash_explorer._replay import replay_contained
from crashsweep.crash_explorer.errors import TraceError
from crashsweep.reports._values import value_difference

DIFF_KEYS_PRINTED_MAX = 20


def trusted_trace(args):
    """Load a trace as data, then allow its engine (or say, exit 2, how to allow it), then validate the rest."""
    spec, trace = load_trace(args.trace)
    allow_engine(spec.engine, args.engine)
    engine_profile(spec.engine, args.memory_limit)
    spec.validate()
    return spec, trace


def _say(console: Console, text: str) -> None:
    console.print(text, soft_wrap=True, highlight=False, markup=False)


def command_replay(args, console: Console) -> int:
    spec, trace = trusted_trace(args)
    checked = check_trace(spec, trace, args.memory_limit, jobs=os.cpu_count() or 1)
    if not args.quiet:
        if checked["status"] == REPRODUCED:
            for line in render(trace):
                _say(console, line)
        print_diff(console, checked["result"] or {})
    if checked["trace"] is not None:
        directory = os.path.dirname(os.path.abspath(args.trace))
        path = write_trace(directory, checked["trace"], recheck_trace_name(args.trace))
        checked["message"] += f"; new trace: {os.path.relpath(path)}"
    _say(console, f"crashsweep: {checked['message']}")
    differs = new_recording_differs(spec, args.memory_limit)
    if differs is not None:
        _say(console, f"crashsweep: note: {differs}")
    if args.explain and checked["status"] == REPRODUCED:
        _explain(console, spec, trace, args.memory_limit, header=False)
    return EXIT_OK if checked["status"] == FIXED else EXIT_VIOLATIONS


def print_diff(console: Console, result: dict) -> None:
    """The replayed read-out's differences from the reference: where values differ, not prefixes."""
    diff = result.get("diff") or {}
    shown = 0
    for key, value in diff.get("missing", {}).items():
        if shown < DIFF_KEYS_PRINTED_MAX:
            _say(console, f"  - missing {key} ({len(value):,} characters)")
        shown += 1
    for key, value in diff.get("extra", {}).items():
        if shown < DIFF_KEYS_PRINTED_MAX:
            _say(console, f"  + extra   {key} ({len(value):,} characters)")
        shown += 1
    for key, (expected, actual) in diff.get("wrong", {}).items():
        if shown < DIFF_KEYS_PRINTED_MAX:
            _say(console, f"  ~ wrong   {key}: {value_difference(expected, actual)}")
        shown += 1
    if shown > DIFF_KEYS_PRINTED_MAX:
        _say(console, f"  … and {shown - DIFF_KEYS_PRINTED_MAX:,} more key(s)")


def _explain(console: Console, spec, trace: dict, memory_limit: int, header: bool = True) -> int:
    if not isinstance(trace.get("explanation"), dict) and trace.get("crash") is not None \
            and not trace.get("nested"):
        try:
            trace = dict(trace, explanation=explain_contained(spec, trace, memory_limit))
        except TraceError as error:
            _say(console, f"crashsweep: cannot explain the exact state: {error}")
            return EXIT_OK
    lines = render(trace)
    for line in lines if header else lines[len(lines) - _tail(lines):]:
        _say(console, line)
    if trace.get("nested"):
        _say(console, "this failure needs a second crash, during the continuation after recovery; "
                      "the explanation above covers the first crash")
    return EXIT_VIOLATIONS


def _tail(lines: list[str]) -> int:
    """How many of `render`'s lines come after its header (the why and the I/O)."""
    for index, line in enumerate(lines):
        if line == "why:" or line.startswith("I/O from") or line.startswith("pending writes"):
            return len(lines) - index
    return 0


def command_explain(args, console: Console) -> int:
    spec, trace = trusted_trace(args)
    return _explain(console, spec, trace, args.memory_limit)


def command_minimize(args, console: Console) -> int:
    spec, trace = trusted_trace(args)
    result = replay_contained(spec, trace, args.memory_limit)
    if result.get("kind") != trace["violation"]["kind"]:
        _say(console, f"crashsweep: error: trace {args.trace} does not reproduce "
                      f"({trace['violation']['kind']} expected, got {result.get('kind') or 'no violation'}); "
                      "nothing to minimize")
        return EXIT_USAGE
    smaller = minimize_contained(spec, trace, args.budget_seconds, args.states_per_candidate, args.memory_limit)
    smaller["class"] = trace.get("class")
    out = args.out or (args.trace[:-5] if args.trace.endswith(".json") else args.trace) + ".min.json"
    directory, name = os.path.split(os.path.abspath(out))
    write_trace(directory, smaller, name)
    info = smaller["minimized"]
    for line in render(smaller)[1:]:
        _say(console, line)
    _say(console, f"crashsweep: minimized {trace['violation']['kind']}: {info['ops_before']} → {info['ops_after']} "
                  f"ops, {info['landed_writes_before']} → {info['landed_writes_after']} landed writes "
                  f"({info['candidates_tried']} candidates, {info['seconds']:.1f} s); wrote {out}; "
                  f"replay with: crashsweep replay {out}{engine_flag(spec.engine)}")
    return EXIT_OK


def command_log(args, console: Console, spec) -> int:
    """Record once (contained) and list every call with its op, source line, and the crash points after it."""
    recording = record_contained(spec, args.memory_limit)
    calls = io_calls(recording.log)
    points_at: dict[int, list[int]] = {}
    for point in recording.walk.points:
        points_at.setdefault(point.position, []).append(point.index)
    positions = sorted(points_at)
    _say(console, f"crashsweep log: {spec.engine} × {spec.scenario}: {len(spec.ops):,} ops, {len(calls):,} I/O "
                  f"calls, {len(recording.walk.points):,} crash points")
    current_op, cursor = None, 0
    for call in calls:
        if call["op"] != current_op:
            current_op = call["op"]
            _say(console, _op_title(spec, current_op))
        _say(console, call_line(call))
        after = []
        while cursor < len(positions) and positions[cursor] <= call["position"]:
            after += points_at[positions[cursor]]
            cursor += 1
        if after:
            shown = f"{after[0]}" if len(after) == 1 else f"{after[0]}–{after[-1]}"
            _say(console, f"{'':10}· crash point{'s' if len(after) > 1 else ''} {shown}")
    if recording.failure is not None:
        _say(console, f"the workload failed without any crash: {recording.failure.get('detail', '')}")
        return EXIT_VIOLATIONS
    return EXIT_OK


def _op_title(spec, op_index: int) -> str:
    if op_index < 0 or op_index >= len(spec.ops):
        return "opening the engine:"
    op = spec.ops[op_index]
    key = f" {op.key.decode('utf-8', 'replace')}" if op.kind != "sync" else ""
    value = f" ({len(op.value):,} B)" if op.kind == "put" else ""
    return f"op {op_index}: {op.kind}{key}{value}"
