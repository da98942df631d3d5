"""summary.json and junit.xml, derived from result data only.

junit.xml has one test suite per sweep and one test case per crash point that
was explored (named by point and operation), failing with the violation's kind,
detail and replay command when any state of that point violated; the failure
of the un-crashed run, if any, is a test case of its own.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree
from collections import defaultdict

from crashsweep.reports._text import xml_safe


def write_json_atomically(path: str, data: dict) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(temporary, path)


def write_summary(out_dir: str, summary: dict) -> str:
    path = os.path.join(out_dir, "summary.json")
    write_json_atomically(path, summary)
    return path


def write_junit(out_dir: str, summary: dict, results: list[dict], trace_names: dict[int, str],
                per_point: list[dict] | None = None) -> str:
    """One test case per crash point (every point of the plan, when given)."""
    by_point: dict[object, list[dict]] = defaultdict(list)
    for entry in per_point or ():
        by_point[entry["point"]]
    for result in results:
        by_point[result.get("point")].append(result)
    suite = ElementTree.Element("testsuite", name=f"crashsweep {summary['engine']} {summary['scenario']}",
                                tests=str(len(by_point)), failures="0", time=str(summary.get("elapsed_s", 0)))
    failures = 0
    for point in sorted(by_point, key=lambda p: -1 if p is None else p):
        group = by_point[point]
        name = "workload without crash" if point is None else f"crash point {point}"
        case = ElementTree.SubElement(suite, "testcase", classname=f"crashsweep.{summary['engine']}", name=name,
                                      time=f"{sum(r.get('total_s', 0.0) for r in group):.6f}")
        bad = [result for result in group if result.get("kind")]
        if bad:
            failures += 1
            first = bad[0]
            trace = trace_names.get(first["state"], "")
            failure = ElementTree.SubElement(case, "failure", type=first["kind"],
                                             message=f"{len(bad)} of {len(group)} state(s) violate: {first['detail']}")
            failure.text = (f"{first['detail']}\nreplay: crashsweep replay {trace}\n" if trace else first["detail"])
        elif group:
            ElementTree.SubElement(case, "system-out").text = f"{len(group)} state(s) recovered or refused as allowed"
        else:
            ElementTree.SubElement(case, "system-out").text = (
                "no state was recovered for this point here: its images were met at other points (recovered "
                "once and checked against this point's crash windows too), or it belongs to another shard")
    suite.set("failures", str(failures))
    for element in suite.iter():        # engine text may hold any character; XML 1.0 allows only some
        element.text = None if element.text is None else xml_safe(element.text)
        for name, value in element.attrib.items():
            element.set(name, xml_safe(value))
    path = os.path.join(out_dir, "junit.xml")
    ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path
