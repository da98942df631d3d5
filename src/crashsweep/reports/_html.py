"""index.html: one self-contained file (inline CSS and SVG, no network, no script) rendered
with Jinja2 from result data only.

It aggregates: one timeline bar per crash point (not one element per state), so a
report of 100,000 states stays small and opens quickly. Keys and values are
escaped by the template engine (autoescape); binary data arrives as "hex:…" text.
"""

from __future__ import annotations

import os
import threading
from collections import Counter, defaultdict

import jinja2

from crashsweep.reports._text import engine_flag, finalize, state_count
from crashsweep.reports._values import value_difference

CLASSES_SHOWN_MAX = 100
DIFF_KEYS_SHOWN_MAX = 20
CATEGORIES = (("latest", "recovered to the latest state", "#2e7d32"),
              ("older", "recovered to an older allowed snapshot", "#9ccc65"),
              ("refused", "refused damaged data (allowed)", "#90a4ae"),
              ("violation", "violation: lost or wrong data", "#c62828"),
              ("error", "violation: recovery error, hang or exhausted memory", "#ef6c00"))
TICKS_MAX = 12
ERROR_KINDS = ("recovery-error", "hang", "engine-error", "resource-exhausted")

_environment = jinja2.Environment(loader=jinja2.PackageLoader("crashsweep.reports", "templates"),
                                  autoescape=jinja2.select_autoescape(["html", "j2"]),
                                  undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                  finalize=finalize)
_environment.filters["state_count"] = state_count


TEMPLATE = "report.html.j2"
_template_lock = threading.Lock()


def _template() -> jinja2.Template:
    with _template_lock:            # one compilation, whichever thread asks first
        return _environment.get_template(TEMPLATE)


def prepare_report() -> None:
    """Compile the report's template (~30 ms of CPU) in a thread of its own. A sweep calls it once its
    states are being checked in worker processes, while its own process mostly waits for their results."""
    threading.Thread(target=_template, name="crashsweep-report-template", daemon=True).start()


def category(result: dict) -> str:
    kind = result.get("kind")
    if kind in ERROR_KINDS:
        return "error"
    if kind:
        return "violation"
    if result.get("outcome") == "refused":
        return "refused"
    return "latest" if result.get("latest") else "older"


def timeline(results: list[dict], per_point: list[dict], counts: dict[int, Counter] | None = None) -> dict:
    """Per crash point: counts by category, the bars of an SVG chart (one link per point), and an axis of
    operation indexes. `counts`: the results' counts by point and category, if already made (`breakdowns`)."""
    given, counts = counts, defaultdict(Counter, counts or {})
    if given is None:
        for result in results:
            if result.get("point") is not None and result["point"] >= 0:
                counts[result["point"]][category(result)] += 1
    op_of = {entry["point"]: entry.get("op", -1) for entry in per_point}
    points = sorted(set(op_of) | set(counts))
    width_px = max(1.0, min(12.0, 900.0 / max(1, len(points))))
    points_list, ticks, last_op = [], [], None
    for x_index, point in enumerate(points):
        total = sum(counts[point].values())
        y, bars = 100.0, []
        for name, _, colour in CATEGORIES:
            share = counts[point][name] / total if total else 0.0
            if share:
                height = 100.0 * share
                y -= height
                bars.append({"x": x_index * width_px, "y": y, "width": width_px, "height": height, "colour": colour})
        op = op_of.get(point, -1)
        text = ", ".join(f"{counts[point][name]:,} {name}" for name, _, _ in CATEGORIES if counts[point][name]) \
            or "no state recovered here (its images were met at other points)"
        points_list.append({"point": point, "bars": bars, "text": text,
                            "op_label": "opening" if op < 0 else f"op {op}"})
        if op != last_op:
            ticks.append({"x": x_index * width_px, "label": "open" if op < 0 else str(op)})
            last_op = op
    step = max(1, len(ticks) // TICKS_MAX + (1 if len(ticks) % TICKS_MAX else 0))
    return {"points_list": points_list, "ticks": _apart(ticks[::step]), "width": len(points) * width_px,
            "points": len(points)}


TICK_CHAR_PX = 5.0     # a character of the axis's 8 px labels, about


def _apart(ticks: list[dict]) -> list[dict]:
    """The ticks whose labels do not overlap the label before them (the first is drawn from its x, the others
    centred on theirs): "open" and "0" one bar apart were drawn over each other."""
    kept, right = [], float("-inf")
    for index, tick in enumerate(ticks):
        half = len(tick["label"]) * TICK_CHAR_PX / 2
        left = tick["x"] if index == 0 else tick["x"] - half
        if left >= right + 2:
            kept.append(tick)
            right = tick["x"] + (2 * half if index == 0 else half)
    return kept


FAULT_KINDS = (("crash", "clean crash (every pending write landed, or none pending)"),
               ("lost", "some pending writes lost"),
               ("torn", "a write torn"),
               ("corrupt", "a sector corrupted"),
               ("misdirect", "a write misdirected"),
               ("latent", "a latent sector error"),
               ("read-error", "a transient read error"))


def fault_kinds(result: dict, pending: int) -> list[str]:
    """The fault kinds a state contains (a state may contain several)."""
    choice = result.get("choice") or {}
    kinds = []
    landed = len(choice.get("persist", ())) + len(choice.get("torn", ()))
    if landed < pending:
        kinds.append("lost")
    if choice.get("torn"):
        kinds.append("torn")
    kinds += sorted({fault["kind"] for fault in choice.get("faults", ())})
    return kinds or ["crash"]


def breakdowns(results: list[dict], per_point: list[dict]) -> dict:
    """Counts of outcome categories in all (`totals`), by fault kind and by crash point: one pass over the
    results (a sweep may have hundreds of thousands)."""
    pending = {entry["point"]: entry["pending"] for entry in per_point}
    by_fault: dict[str, Counter] = {name: Counter() for name, _ in FAULT_KINDS}
    by_point: dict[int, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    plain_kinds: dict[tuple[bool, bool], list[str]] = {}     # (some lost, some torn) -> `fault_kinds`
    for result in results:
        name = category(result)
        totals[name] += 1
        point = result.get("point")
        if point is None or point < 0:
            continue
        by_point[point][name] += 1
        choice = result.get("choice") or {}
        if "faults" in choice:
            kinds = fault_kinds(result, pending.get(point, 0))
        else:           # (most results: `fault_kinds` told apart by two facts, without a list per result)
            torn = choice.get("torn")
            shape = (len(choice.get("persist", ())) + len(torn or ()) < pending.get(point, 0), bool(torn))
            kinds = plain_kinds.get(shape)
            if kinds is None:
                kinds = plain_kinds[shape] = fault_kinds(result, pending.get(point, 0))
        for kind in kinds:
            by_fault.setdefault(kind, Counter())[name] += 1
    rows = [{"kind": kind, "label": label, "counts": by_fault[kind], "total": sum(by_fault[kind].values())}
            for kind, label in FAULT_KINDS if sum(by_fault[kind].values())]
    return {"by_fault": rows, "by_point": by_point, "totals": totals}


def render_html(summary: dict, per_point: list[dict], results: list[dict], out_dir: str,
                bugs: dict[str, str] | None = None) -> str:
    """Write OUT/index.html and return its path."""
    classes, point_classes = _classes(summary, results)
    exhausted_points = sum(1 for entry in per_point if entry.get("exhausted"))
    counts = breakdowns(results, per_point)
    totals = counts["totals"]
    nested = sum(result.get("nested_states", 0) for result in results)
    html = _template().render(
        by_fault=counts["by_fault"], by_point=counts["by_point"], nested=nested,
        summary=summary, per_point=per_point, timeline=timeline(results, per_point, counts["by_point"]), categories=CATEGORIES,
        totals=totals, classes=classes, point_classes=point_classes, out_dir=out_dir,
        engine_flag=engine_flag(summary),
        exhausted_points=exhausted_points, bugs=bugs or {}, bug=summary.get("options", {}).get("bug"))
    path = os.path.join(out_dir, "index.html")
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(html)
    os.replace(temporary, path)
    return path


def _classes(summary: dict, results: list[dict]) -> tuple[list[dict], dict[int, list[int]]]:
    """The summary's failure classes for the page (numbered from 1, diffs clipped, the points of each), and
    point -> the numbers of the classes seen there."""
    number_of = {entry["id"]: number for number, entry in enumerate(summary.get("classes", []), 1)}
    points_of: dict[str, set] = defaultdict(set)
    point_classes: dict[int, set] = defaultdict(set)
    for result in results:
        if result.get("kind") and result.get("class") in number_of and isinstance(result.get("point"), int) \
                and result["point"] >= 0:
            points_of[result["class"]].add(result["point"])
            point_classes[result["point"]].add(number_of[result["class"]])
    classes = []
    for entry in summary.get("classes", [])[:CLASSES_SHOWN_MAX]:
        classes.append({"title": entry["title"], "states": entry["states"], "detail": entry.get("detail", ""),
                        "why": entry.get("why", []), "io": entry.get("io", []), "output": entry.get("output", ""),
                        "trace": entry["trace"], "minimized": entry.get("minimized"),
                        "points": sorted(points_of.get(entry["id"], ())),
                        "diff": _clip_diff(entry.get("diff") or {})})
    return classes, {point: sorted(numbers) for point, numbers in point_classes.items()}


def _clip_diff(diff: dict) -> dict:
    clipped = {}
    for name in ("missing", "extra", "wrong"):
        items = list(diff.get(name, {}).items())
        shown = items[:DIFF_KEYS_SHOWN_MAX]
        if name == "wrong":     # (key, [expected, actual, where they differ])
            shown = [(key, [pair[0], pair[1], value_difference(pair[0], pair[1])]) for key, pair in shown]
        clipped[name] = shown
        clipped[name + "_more"] = max(0, len(items) - DIFF_KEYS_SHOWN_MAX)
    return clipped
