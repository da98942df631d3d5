"""summary.json and junit.xml, derived from result data only.

junit.xml has one test suite per sweep: one failing test case per failure class
(its title, state count, explanation, replay and explain commands) and one test
case for the sweep as a whole.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ElementTree

from crashsweep.reports._text import engine_flag, xml_safe


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


def write_junit(out_dir: str, summary: dict) -> str:
    """One failing test case per failure class (with its state count, explanation and replay command), and one
    test case for the sweep as a whole, which passes when no state violated."""
    classes = summary.get("classes", [])
    flag = engine_flag(summary)
    suite = ElementTree.Element("testsuite", name=f"crashsweep {summary['engine']} {summary['scenario']}",
                                tests=str(len(classes) + 1), failures=str(len(classes)),
                                time=str(summary.get("elapsed_s", 0)))
    for number, entry in enumerate(classes, 1):
        case = ElementTree.SubElement(suite, "testcase", classname=f"crashsweep.{summary['engine']}",
                                      name=f"class {number} ({entry['id']}): {entry['title']}")
        trace = entry.get("minimized") or entry["trace"]
        failure = ElementTree.SubElement(case, "failure", type=entry["kind"],
                                         message=f"{entry['title']} — {entry['states']:,} state(s)")
        why = "".join(f"  {line}\n" for line in entry.get("why", []))
        detail = f"{entry['detail']}\n" if entry.get("detail") else ""
        failure.text = (f"{entry['title']}\n{entry['states']:,} state(s) of this class; its trace: state "
                        f"{entry['first_state']}\n{detail}" + (f"why:\n{why}" if why else "")
                        + f"replay: crashsweep replay {out_dir}/{trace}{flag}\n"
                          f"explain: crashsweep explain {out_dir}/{trace}{flag}\n")
    whole = ElementTree.SubElement(suite, "testcase", classname=f"crashsweep.{summary['engine']}",
                                   name=f"sweep: {summary['distinct_states']:,} distinct states")
    ElementTree.SubElement(whole, "system-out").text = (
        f"{summary['distinct_states']:,} distinct states ({summary['coverage']}); {summary['violations']:,} "
        f"violation(s) in {len(classes)} class(es)")
    if summary["violations"]:
        ElementTree.SubElement(whole, "failure", type="violations",
                               message=f"{summary['violations']:,} violating state(s) in {len(classes)} class(es)")
    for element in suite.iter():        # engine text may hold any character; XML 1.0 allows only some
        element.text = None if element.text is None else xml_safe(element.text)
        for name, value in element.attrib.items():
            element.set(name, xml_safe(value))
    suite.set("failures", str(len(classes) + (1 if summary["violations"] else 0)))
    path = os.path.join(out_dir, "junit.xml")
    ElementTree.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path
