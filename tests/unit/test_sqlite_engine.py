"""The SQLite engine on the file-system model: reproducible bytes, and the observation memo."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("apsw")

from crashsweep.crash_explorer._plan import plan_states   # noqa: E402
from crashsweep.crash_explorer._recording import record   # noqa: E402
from crashsweep.crash_explorer._spec import SweepSpec     # noqa: E402
from crashsweep.reference import put, sync                # noqa: E402

PLAN_DIGEST = """
import hashlib, sys
from crashsweep.crash_explorer._plan import plan_states
from crashsweep.crash_explorer._recording import record
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.reference import put, sync
spec = SweepSpec(engine="sqlite", options=(("journal_mode", sys.argv[1]),),
                 ops=tuple(op for n in range(4) for op in (put(b"k%d" % n, b"v" * 300), sync())))
print(hashlib.sha256(repr([p.image for p in plan_states(record(spec)).states]).encode()).hexdigest())
"""


def sqlite_spec(journal_mode: str, transactions: int = 4, **settings) -> SweepSpec:
    ops = tuple(op for n in range(transactions) for op in (put(b"k%d" % n, b"v" * 300), sync()))
    return SweepSpec(engine="sqlite", options=(("journal_mode", journal_mode),), ops=ops, **settings)


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_sqlite_writes_the_same_bytes_every_run(journal_mode):
    """Journal nonces and WAL salts come from the seed: two recordings, in this process and in a fresh
    one, give the same crash states (they once differed on every run: SQLite drew from /dev/urandom)."""
    first = [p.image for p in plan_states(record(sqlite_spec(journal_mode))).states]
    again = [p.image for p in plan_states(record(sqlite_spec(journal_mode))).states]
    assert first == again and len(first) > 20
    import hashlib
    out = subprocess.run([sys.executable, "-c", PLAN_DIGEST, journal_mode], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == hashlib.sha256(repr(first).encode()).hexdigest()
