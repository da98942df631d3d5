"""docs/tutorial.md, run as written: every file it shows is written, every command is run.

Grammar of the tutorial (HTML comments, invisible when rendered):
- `<!-- file: NAME -->` before a code block: write the block to NAME;
- `<!-- replace: NAME -->` before a code block holding one method: replace the method of
  that name in NAME;
- `<!-- exit: N -->` before a `console` block: its one `$ ` command must exit with N, and
  every output line shown (not `…`) must appear in the real output, `…` inside a line
  matching anything.
"""

import os
import pathlib
import re
import shlex
import subprocess
import sys


TUTORIAL = pathlib.Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
STEP = re.compile(r"<!-- (file|replace|exit): (\S+) -->\n```(\w+)\n(.*?)```", re.S)


def steps():
    return [(match.group(1), match.group(2), match.group(3), match.group(4))
            for match in STEP.finditer(TUTORIAL.read_text())]


def replace_method(source: str, method: str) -> str:
    name = re.match(r"\s*def (\w+)", method).group(1)
    start = re.search(rf"^    def {name}\(", source, re.M)
    assert start, f"tutorial replaces {name}, which the file does not have"
    body_start = source.index("\n", start.end()) + 1
    after = re.search(r"^    def |^\S", source[body_start:], re.M)
    end = body_start + after.start() if after else len(source)
    return source[:start.start()] + method.rstrip("\n") + "\n\n" + source[end:]


def run_command(command: str, cwd) -> subprocess.CompletedProcess:
    words = shlex.split(command)
    if words[0] == "crashsweep":
        words = [sys.executable, "-m", "crashsweep"] + words[1:]
    elif words[0] == "python":
        words[0] = sys.executable
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(words, cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_the_tutorial_has_every_kind_of_step():
    kinds = [kind for kind, *_ in steps()]
    assert kinds.count("file") >= 3 and "replace" in kinds and kinds.count("exit") >= 6


def test_every_command_in_the_tutorial_works_as_shown(tmp_path):
    for kind, argument, _, body in steps():
        if kind == "file":
            (tmp_path / argument).write_text(body)
        elif kind == "replace":
            path = tmp_path / argument
            path.write_text(replace_method(path.read_text(), body))
        else:
            lines = body.strip("\n").splitlines()
            assert lines[0].startswith("$ ") and not any(line.startswith("$ ") for line in lines[1:])
            command = lines[0][2:]
            completed = run_command(command, tmp_path)
            output = completed.stdout + completed.stderr
            assert completed.returncode == int(argument), (command, output[-3000:])
            for shown in lines[1:]:
                if shown.strip() in ("…", ""):
                    continue
                pattern = ".*".join(re.escape(part) for part in shown.split("…"))
                assert re.search(pattern, output), (command, shown, output[-3000:])
            if command.startswith("crashsweep sweep"):
                assert (tmp_path / "report" / "index.html").exists()
            if command.startswith("crashsweep minimize"):
                assert list((tmp_path / "report" / "traces").glob("*.min.json"))
