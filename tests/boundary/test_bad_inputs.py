"""Every malformed input — a trace, a results file, a scenario file — gets one line and exit 2 (or, when the
mutation left it valid, a normal run), never a traceback, never unbounded memory. Hypothesis mutates real files
written by a sweep: any node replaced by any JSON value, fields dropped, deep nesting, binary garbage."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crashsweep.cli import main

BUGGY = ["--engine", "example-wal", "--option", "bug=no-log-checksum", "--ops", "24", "--jobs", "1", "--quiet",
         "--crash-depth", "0", "--minimize", "0"]

EXAMPLES = int(os.environ.get("CRASHSWEEP_BAD_INPUT_EXAMPLES", "60"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def sweep_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "report"
    assert main(["sweep", *BUGGY, "--out", str(out)]) == 1
    trace = json.loads(sorted((out / "traces").glob("*.json"))[0].read_text())
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return trace, lines


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value[:6]):
            yield from _paths(inner, prefix + (index,))


def _mutate(document, path, replacement, drop):
    if not path:
        return replacement
    document = json.loads(json.dumps(document))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = replacement
    return document


def _check_one_line_or_run(code, capsys):
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code in (0, 1, 2), (code, text[-2000:])
    assert "Traceback" not in text
    if code == 2:
        assert len(captured.err.strip().splitlines()) == 1, captured.err[-2000:]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), replacement=json_values, drop=st.booleans())
def test_a_mutated_trace_is_refused_in_one_line_or_replays(sweep_files, tmp_path_factory, capsys, data,
                                                          replacement, drop):
    trace = sweep_files[0]
    paths = [path for path in _paths(trace) if not (path[:2] == ("spec", "ops") and len(path) > 2)]
    path = data.draw(st.sampled_from(paths))
    mutated = _mutate(trace, path, replacement, drop)
    file = tmp_path_factory.mktemp("trace") / "t.json"
    file.write_text(json.dumps(mutated))
    _check_one_line_or_run(main(["replay", str(file), "--quiet"]), capsys)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), replacement=json_values, drop=st.booleans())
def test_a_mutated_results_file_is_refused_in_one_line_or_reported(sweep_files, tmp_path_factory, capsys, data,
                                                                   replacement, drop):
    lines = sweep_files[1]
    index = data.draw(st.sampled_from([0, 1, len(lines) - 1]))
    path = data.draw(st.sampled_from(list(_paths(lines[index]))))
    mutated = list(lines)
    mutated[index] = _mutate(lines[index], path, replacement, drop)
    directory = tmp_path_factory.mktemp("results")
    (directory / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in mutated))
    _check_one_line_or_run(main(["report", str(directory / "results.jsonl"), "--out", str(directory / "r")]), capsys)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(document=json_values | st.fixed_dictionaries({"ops": json_values}) |
       st.fixed_dictionaries({"ops": st.lists(json_values, max_size=4), "name": json_values}))
def test_a_malformed_scenario_file_is_refused_in_one_line(tmp_path_factory, capsys, document):
    file = tmp_path_factory.mktemp("scenario") / "s.json"
    file.write_text(json.dumps(document))
    _check_one_line_or_run(main(["sweep", "--scenario", str(file), "--out", str(file.parent / "out"),
                                 "--ops", "4", "--quiet", "--jobs", "1", "--minimize", "0"]), capsys)


@pytest.mark.parametrize("content", [
    b"\xff\xfe\x00garbage" * 100,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    b"",
    b"\x00" * 4096,
])
@pytest.mark.parametrize("command", ["replay", "minimize", "report", "scenario"])
def test_binary_garbage_and_deep_nesting_get_one_line(tmp_path, capsys, content, command):
    file = tmp_path / ("input.jsonl" if command == "report" else "input.json")
    file.write_bytes(content)
    argv = {"replay": ["replay", str(file)], "minimize": ["minimize", str(file)],
            "report": ["report", str(file), "--out", str(tmp_path / "r")],
            "scenario": ["sweep", "--scenario", str(file), "--out", str(tmp_path / "o"), "--quiet"]}[command]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.out + captured.err


def test_a_huge_scenario_is_refused_before_it_is_built(tmp_path, capsys):
    file = tmp_path / "huge.json"
    file.write_text(json.dumps({"ops": [["put", "k", "v"]] * 300_000}))
    assert main(["sweep", "--scenario", str(file), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "at most 100,000" in capsys.readouterr().err


def test_a_trace_never_imports_the_engine_it_names(tmp_path, capsys, monkeypatch, sweep_files):
    """A trace naming a user engine outside the current directory is refused before anything is imported;
    naming it with --engine allows it; a .py file under the current directory is allowed."""
    marker = tmp_path / "imported"
    engine = tmp_path / "elsewhere" / "evil.py"
    engine.parent.mkdir()
    engine.write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass Evil:\n    pass\n")
    trace = json.loads(json.dumps(sweep_files[0]))
    trace["spec"]["engine"] = f"{engine}:Evil"
    trace["spec"]["options"] = {}
    file = tmp_path / "t.json"
    file.write_text(json.dumps(trace))
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    for command in (["replay", str(file)], ["minimize", str(file)]):
        assert main(command) == 2
        error = capsys.readouterr().err
        assert "--engine" in error and "evil.py" in error and len(error.strip().splitlines()) == 1
        assert not marker.exists()
    trace["spec"]["engine"] = "evilmodule:Evil"
    file.write_text(json.dumps(trace))
    assert main(["replay", str(file)]) == 2 and not marker.exists()
    trace["spec"]["engine"] = f"exec:touch {marker} {{dir}}"      # a program runs anything, wherever it lies
    file.write_text(json.dumps(trace))
    assert main(["replay", str(file)]) == 2 and not marker.exists()
    assert f"(the program 'touch {marker} {{dir}}')" in capsys.readouterr().err
    results = tmp_path / "results.jsonl"
    header = dict(sweep_files[1][0], spec=trace["spec"])
    results.write_text(json.dumps(header) + "\n")
    assert main(["report", str(results), "--out", str(tmp_path / "r")]) in (0, 1)
    assert not marker.exists() and "evilmodule" not in __import__("sys").modules
    # Allowed by name: the import happens, in a contained process (the marker appears, crashsweep's
    # own modules stay clean), and the class is refused as not an engine.
    trace["spec"]["engine"] = f"{engine}:Evil"
    file.write_text(json.dumps(trace))
    assert main(["replay", str(file), "--engine", f"{engine}:Evil"]) == 2
    assert marker.exists() and not any("evil" in name for name in __import__("sys").modules)
    assert "lacks method" in capsys.readouterr().err
