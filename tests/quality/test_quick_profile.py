"""`--profile quick` is for local edits: it must still find every seeded bug (with the faults each needs)."""

import json

import pytest

from crashsweep import cli
from crashsweep.engines.examples import WAL_BUGS
from crashsweep.store import BUGS as BETREE_BUGS

FAULTS = {"journal-no-checksum": "crash,torn,lost,corrupt"}
CASES = [("betree", bug) for bug in sorted(BETREE_BUGS)] + [("example-wal", bug) for bug in sorted(WAL_BUGS)]


@pytest.mark.parametrize("engine,bug", CASES)
def test_quick_profile_finds_the_seeded_bug(engine, bug, tmp_path):
    out = tmp_path / "out"
    code = cli.main(["sweep", "--profile", "quick", "--engine", engine, "--option", f"bug={bug}", "--faults",
                     FAULTS.get(bug, "crash,torn,lost"), "--quiet", "--no-corpus", "--minimize", "0",
                     "--jobs", "2", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 1 and summary["violations"] > 0, f"{engine} {bug} not found by --profile quick"
    assert summary["bound"] == 1
