"""index.html, junit.xml and `crashsweep report` (merging shards), from real sweeps."""

import json
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser

import pytest

from crashsweep.cli import main
from crashsweep.reports import render_html

FAST = ["--engine", "example-wal", "--option", "checkpoint_sectors=16", "--option", "log_sectors=16", "--option", "checkpoint_every_syncs=2",
        "--ops", "40", "--jobs", "2", "--quiet"]


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.external = set(), [], []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        for name in ("href", "src"):
            value = attributes.get(name)
            if value:
                (self.external if "://" in value or value.startswith("//") else self.links).append(value)


def test_sweep_writes_a_self_contained_html_report_with_working_trace_links(tmp_path):
    out = tmp_path / "report"
    assert main(["sweep", *FAST, "--option", "bug=no-log-checksum", "--out", str(out)]) == 1
    html = (out / "index.html").read_text()
    collector = _Collector()
    collector.feed(html)
    assert {"verdict", "summary", "timeline", "points", "strategies", "faults", "violations-heading",
            "bugs"} <= collector.ids
    assert collector.external == []                      # nothing fetched from the network
    files = [link for link in collector.links if not link.startswith("#")]
    anchors = [link[1:] for link in collector.links if link.startswith("#")]
    assert files and all((out / link).exists() for link in files)
    assert anchors and all(anchor in collector.ids for anchor in anchors)     # bars and classes link inside
    assert "crashsweep replay" in html and "crashsweep explain" in html and "no-log-checksum" in html
    summary = json.loads((out / "summary.json").read_text())
    minimized = list((out / "traces").glob("*.min.json"))          # each class's trace, minimized by the sweep
    assert len(minimized) == len(summary["classes"]) >= 1
    assert all(f"traces/{path.name}" in collector.links for path in minimized)


def test_minimize_zero_leaves_traces_as_found(tmp_path):
    out = tmp_path / "report"
    assert main(["sweep", *FAST, "--option", "bug=no-log-checksum", "--minimize", "0", "--out", str(out)]) == 1
    assert list((out / "traces").glob("*.json")) and not list((out / "traces").glob("*.min.json"))


def test_report_escapes_keys_and_values():
    results = [{"state": 0, "point": 0, "op": 1, "kind": "not-a-snapshot", "outcome": "not-a-snapshot",
                "detail": "<script>alert(1)</script>", "choice": {}, "class": "c",
                "diff": {"missing": {"<b>key</b>": "hex:00ff"}, "extra": {}, "wrong": {"<i>k</i>": ["hex:00", "hex:01"]}}}]
    summary = {"engine": "e", "scenario": "s", "ops": 1, "options": {}, "strategy": "bounded", "bound": 2,
               "samples": None, "faults": "crash", "seed": 0, "crash_points": 1, "states_explored": 1,
               "distinct_states": 1, "nested_states": 0, "coverage": "1 of 1", "violations": 1,
               "violations_by_kind": {"not-a-snapshot": 1}, "elapsed_s": 0, "states_per_s": 0,
               "recovery_paths": {}, "spec_id": "x",
               "classes": [{"id": "c", "kind": "not-a-snapshot", "title": "<u>title</u>", "states": 1,
                            "first_state": 0, "trace": "traces/not-a-snapshot-c.json",
                            "detail": "<script>alert(1)</script>", "why": ["needs <em>x</em>"],
                            "io": [{"op": 1, "call": "write <a>", "site": "<s>.py:1", "fate": "lost"}],
                            "diff": {"missing": {"<b>key</b>": "hex:00ff"}, "wrong": {"<i>k</i>": ["hex:00", "hex:01"]}}}]}
    import tempfile
    with tempfile.TemporaryDirectory() as out:
        html = open(render_html(summary, [], results, out)).read()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;key&lt;/b&gt;" in html
    for raw in ("<u>", "<em>", "<a>", "<s>", "<i>"):
        assert raw not in html, raw
    assert "&lt;u&gt;title&lt;/u&gt;" in html and "&lt;i&gt;k&lt;/i&gt;" in html


def test_large_report_is_aggregated_not_one_element_per_state(tmp_path):
    results = [{"state": i, "point": i % 50, "kind": None, "outcome": "recovered", "latest": i % 2 == 0,
                "choice": {}} for i in range(100_000)]
    per_point = [{"point": p, "op": p, "pending": 1, "space": 2, "enumerated": 2, "distinct": 2,
                  "exhausted": True} for p in range(50)]
    summary = {"engine": "e", "scenario": "s", "ops": 1, "options": {}, "strategy": "bounded", "bound": 2,
               "samples": None, "faults": "crash", "seed": 0, "crash_points": 50, "states_explored": 100_000,
               "distinct_states": 100_000, "nested_states": 0, "coverage": "all", "violations": 0,
               "violations_by_kind": {}, "elapsed_s": 0, "states_per_s": 0, "recovery_paths": {}, "spec_id": "x"}
    html = open(render_html(summary, per_point, results, str(tmp_path))).read()
    assert html.count("<rect") <= 50 * 5 and len(html) < 200_000


def test_fault_kind_and_per_point_breakdowns_count_each_state_by_what_it_contains():
    from crashsweep.reports._html import breakdowns

    per_point = [{"point": 0, "pending": 2}, {"point": 1, "pending": 1}]
    results = [
        {"point": 0, "choice": {"persist": [1, 2]}, "outcome": "recovered", "latest": True, "kind": None},
        {"point": 0, "choice": {"persist": [1]}, "outcome": "recovered", "latest": False, "kind": None},
        {"point": 0, "choice": {"torn": [[1, [0]]]}, "outcome": "recovered", "latest": False, "kind": None},
        {"point": 1, "choice": {"persist": [3], "faults": [{"kind": "corrupt", "sector": 1, "byte": 0, "bit": 0}]},
         "outcome": "refused", "kind": None},
        {"point": 1, "choice": {}, "outcome": "not-a-snapshot", "kind": "not-a-snapshot"},
    ]
    counts = breakdowns(results, per_point)
    rows = {row["kind"]: (row["total"], dict(row["counts"])) for row in counts["by_fault"]}
    assert rows == {"crash": (1, {"latest": 1}), "lost": (3, {"older": 2, "violation": 1}),
                    "torn": (1, {"older": 1}), "corrupt": (1, {"refused": 1})}
    assert dict(counts["by_point"][0]) == {"latest": 1, "older": 2}
    assert dict(counts["by_point"][1]) == {"refused": 1, "violation": 1}


def test_junit_has_one_case_per_failure_class_naming_its_explanation_and_replay(tmp_path):
    out = tmp_path / "report"
    main(["sweep", *FAST, "--option", "bug=no-log-checksum", "--out", str(out)])
    suite = ElementTree.parse(out / "junit.xml").getroot()
    summary = json.loads((out / "summary.json").read_text())
    cases = suite.findall("testcase")
    assert len(cases) == len(summary["classes"]) + 1 >= 2            # a case per class, and the sweep's own
    failures = [case.find("failure") for case in cases if case.find("failure") is not None]
    assert int(suite.get("failures")) == len(failures) == len(cases)
    for entry, failure in zip(summary["classes"], failures):
        assert entry["title"] in failure.get("message") and f"{entry['states']:,} state(s)" in failure.get("message")
        assert "crashsweep replay" in failure.text and "crashsweep explain" in failure.text
        assert all(line in failure.text for line in entry.get("why", []))


def test_junit_of_a_clean_sweep_is_one_passing_case(tmp_path):
    out = tmp_path / "report"
    assert main(["sweep", *FAST, "--out", str(out)]) == 0
    suite = ElementTree.parse(out / "junit.xml").getroot()
    assert len(suite.findall("testcase")) == 1 and suite.get("failures") == "0"


@pytest.mark.long
def test_report_merges_shards_into_the_same_summary(tmp_path):
    whole = tmp_path / "whole"
    main(["sweep", *FAST, "--option", "bug=log-epoch-unchecked", "--out", str(whole)])
    for index in range(3):
        main(["sweep", *FAST, "--option", "bug=log-epoch-unchecked", "--shard", f"{index}/3",
              "--out", str(tmp_path / f"shard{index}")])
    merged = tmp_path / "merged"
    code = main(["report", *[str(tmp_path / f"shard{i}" / "results.jsonl") for i in range(3)], "--out", str(merged)])
    assert code == 1
    timing = ("elapsed_s", "timed", "states_per_s", "recoveries_per_s", "engine_share", "elapsed_total_s", "corpus",
              "phases_s")
    first, second = (json.loads((d / "summary.json").read_text()) for d in (whole, merged))
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in second.items() if k not in timing}
    assert (merged / "index.html").exists() and all((merged / t).exists() for t in second["traces"])
    # The merged report does not claim a time it does not know (the results files keep none).
    assert first["timed"] and not second["timed"]
    assert "which keep no sweep time" in (merged / "index.html").read_text()
    assert "s checking" in (whole / "index.html").read_text()


def test_report_refuses_results_of_different_sweeps(tmp_path, capsys):
    for name, seed in (("a", "1"), ("b", "2")):
        main(["sweep", *FAST, "--seed", seed, "--out", str(tmp_path / name)])
    code = main(["report", str(tmp_path / "a" / "results.jsonl"), str(tmp_path / "b" / "results.jsonl"),
                 "--out", str(tmp_path / "m")])
    assert code == 2 and "different sweep" in capsys.readouterr().err


def test_a_wrong_value_is_described_by_where_it_differs_not_by_a_prefix():
    from crashsweep.reports._values import value_difference
    same_start = "x" * 100
    text = value_difference(same_start + "A" + "y" * 50, same_start + "B" + "y" * 50)
    assert "same length (151 bytes)" in text and "first difference at byte 100" in text
    assert "[41]" in text and "[42]" in text
    assert "expected 3 bytes, got 2" in value_difference("hex:000102", "hex:0001")


def test_the_axis_labels_of_the_coverage_chart_never_overlap():
    """One tick per operation the points belong to, but a label that would be drawn over the one before it is
    left out ("open" and "0" one bar apart were unreadable)."""
    from crashsweep.reports._html import TICK_CHAR_PX, timeline
    per_point = [{"point": 0, "op": -1}] + [{"point": point, "op": point - 1} for point in range(1, 40)]
    ticks = timeline([], per_point)["ticks"]
    assert ticks[0]["label"] == "open" and len(ticks) > 3
    edges = [(tick["x"], tick["x"] + len(tick["label"]) * TICK_CHAR_PX) if index == 0 else
             (tick["x"] - len(tick["label"]) * TICK_CHAR_PX / 2, tick["x"] + len(tick["label"]) * TICK_CHAR_PX / 2)
             for index, tick in enumerate(ticks)]
    assert all(left >= right for (_, right), (left, _) in zip(edges, edges[1:])), edges
    wide = timeline([], [{"point": point, "op": point * 10} for point in range(5)])["ticks"]
    assert [tick["label"] for tick in wide] == ["0", "10", "20", "30", "40"]       # room for all: all drawn


def test_a_points_state_space_is_shown_short_with_its_exact_count_as_its_title(tmp_path):
    """A point's space can run to dozens of digits (2^84 states): the per-point table shows ~2^k past 100,000,
    as the summary line does, and keeps the exact count in the cell's title; counts get thousands separators."""
    from crashsweep.reports._text import state_count
    assert [state_count(n) for n in (0, 99_999, 100_000, 2 ** 84 + 5, str(3 * 2 ** 40))] == \
        ["0", "99,999", "~2^16", "~2^84", "~2^41"]
    per_point = [{"point": 0, "op": 1, "pending": 90, "space": 2 ** 84, "enumerated": 4096, "distinct": 1234,
                  "exhausted": False}]
    results = [{"state": 0, "point": 0, "kind": None, "outcome": "recovered", "latest": True, "choice": {}}]
    summary = {"engine": "e", "scenario": "s", "ops": 1, "options": {}, "strategy": "bounded", "bound": 2,
               "samples": None, "faults": "crash", "seed": 0, "crash_points": 1, "states_explored": 4096,
               "distinct_states": 1, "nested_states": 0, "coverage": "some", "violations": 0,
               "violations_by_kind": {}, "elapsed_s": 0, "states_per_s": 0, "recovery_paths": {}, "spec_id": "x"}
    html = open(render_html(summary, per_point, results, str(tmp_path))).read()
    assert f'<td title="{2 ** 84}">~2^84</td><td>4,096</td><td>1,234</td>' in html
