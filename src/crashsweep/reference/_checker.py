"""The checker: is a recovered map allowed by CrashSafe<Map> for a given crash?

What it verifies: that the map an engine recovered equals S_m for some m with
`synced ≤ m ≤ started` (a whole prefix snapshot, never older than the last
sync that returned), and that reads after recovery agree with that snapshot.

What it does not verify, and why: it sees only the read-out it is given. For an
engine without `items()` the read-out is every key the history touched, so an
invented key the history never mentioned is invisible. It does not judge
whether an engine's refusal to open was justified by the damage; the caller
says whether corruption was injected (`corruption_injected`), and refusal is
then allowed because DESIGN §2 allows refusing damaged durable data.

Invariants:
- a verdict is `ok` exactly when `kind` is None;
- a violation carries the nearest allowed snapshot and its exact diff.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crashsweep.reference._history import History

VIOLATION_KINDS = ("lost-synced-data", "not-a-snapshot", "recovery-error", "wrong-read", "hang", "engine-error",
                   "resource-exhausted")
# engine-error: the engine raised during the workload itself, before any crash.
# resource-exhausted: the engine ran out of memory (the --memory-limit of its worker process).
OUTCOMES_ALLOWED = ("recovered", "refused")


@dataclass(frozen=True)
class CrashWindow:
    """The snapshots a crash allows: S_m for synced <= m <= started (mutation counts)."""

    synced: int
    started: int

    def __post_init__(self) -> None:
        assert 0 <= self.synced <= self.started, (self.synced, self.started)


@dataclass
class Diff:
    """Exact difference between an expected snapshot and an actual read-out."""

    missing: dict[bytes, bytes] = field(default_factory=dict)   # expected, absent
    extra: dict[bytes, bytes] = field(default_factory=dict)     # present, not expected
    wrong: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)  # key -> (expected, actual)

    @classmethod
    def between(cls, expected: Mapping[bytes, bytes], actual: Mapping[bytes, bytes]) -> "Diff":
        diff = cls()
        for key, value in expected.items():
            if key not in actual:
                diff.missing[key] = value
            elif actual[key] != value:
                diff.wrong[key] = (value, actual[key])
        for key, value in actual.items():
            if key not in expected:
                diff.extra[key] = value
        return diff

    def __len__(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.wrong)


@dataclass
class Verdict:
    """The checker's answer for one crash state."""

    kind: str | None                 # None when allowed, else one of VIOLATION_KINDS
    outcome: str                     # "recovered", "refused", or the violation kind
    matched: int | None = None       # the snapshot index m that matched
    latest: bool = False             # matched == window.started: every started operation survived
    nearest: int | None = None       # for violations: the nearest allowed snapshot
    diff: Diff | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is None


def check_recovered(history: History, window: CrashWindow, recovered: Mapping[bytes, bytes]) -> Verdict:
    """Check a recovered read-out against the prefix snapshots the crash window allows.

    Example:
        >>> from crashsweep.reference import History, CrashWindow, check_recovered, put, sync
        >>> history = History([put(b"a", b"1"), sync(), put(b"a", b"2")])
        >>> check_recovered(history, CrashWindow(synced=1, started=2), {b"a": b"1"}).matched
        1
    """
    assert window.started <= history.mutation_count, (window, history.mutation_count)
    matches = history.matching_mutations(recovered)
    allowed = [m for m in matches if window.synced <= m <= window.started]
    if allowed:
        return Verdict(None, "recovered", matched=allowed[-1], latest=allowed[-1] == window.started)
    distances = history.distances(recovered)
    in_window = range(window.synced, window.started + 1)
    nearest = min(in_window, key=lambda m: (distances[m], -m))
    diff = Diff.between(history.snapshot(nearest), recovered)
    older = [m for m in matches if m < window.synced]
    if older:
        detail = (f"recovered snapshot S_{older[-1]}, older than the last completed sync "
                  f"(allowed S_{window.synced}..S_{window.started})")
        return Verdict("lost-synced-data", "lost-synced-data", matched=older[-1], nearest=nearest,
                       diff=diff, detail=detail)
    detail = (f"recovered map equals no prefix snapshot; nearest allowed is S_{nearest} "
              f"(allowed S_{window.synced}..S_{window.started}), {len(diff)} key(s) differ")
    return Verdict("not-a-snapshot", "not-a-snapshot", nearest=nearest, diff=diff, detail=detail)


def check_recovered_windows(history: History, windows, recovered: Mapping[bytes, bytes],
                            matches: list[int] | None = None) -> Verdict:
    """The read-out must be allowed by every window (a disk state shared by several crash points).

    Equivalently m in [max synced, min started]; a window that fails is reported.
    The recovered map is hashed once, whatever the number of windows; `matches`, when given, is
    `history.matching_mutations(recovered)` already computed.
    """
    if matches is None:
        matches = history.matching_mutations(recovered)
    last = None
    for synced, started in windows:
        allowed = None                      # the latest match in the window (`matches` ascend)
        for m in matches:
            if m > started:
                break
            if m >= synced:
                allowed = m
        if allowed is None:
            return check_recovered(history, CrashWindow(synced, started), recovered)
        last = (allowed, started)
    assert last is not None, "at least one window"
    return Verdict(None, "recovered", matched=last[0], latest=last[0] == last[1])


def check_refusal(error: str, corruption_injected: bool) -> Verdict:
    """An engine refused to open or read. Allowed only where durable data was damaged."""
    if corruption_injected:
        return Verdict(None, "refused", detail=error)
    return Verdict("recovery-error", "recovery-error", detail=error)


def check_reads(expected: Mapping[bytes, bytes], reads: Mapping[bytes, bytes | None]) -> Verdict | None:
    """Reads (get(k) results, None for absent) must agree with the snapshot they follow."""
    wrong = {key: value for key, value in reads.items() if expected.get(key) != value}
    if not wrong:
        return None
    diff = Diff()
    for key, value in wrong.items():
        if value is None:
            diff.missing[key] = expected[key]
        elif key not in expected:
            diff.extra[key] = value
        else:
            diff.wrong[key] = (expected[key], value)
    detail = f"{len(wrong)} read(s) disagree with the snapshot the engine recovered"
    return Verdict("wrong-read", "wrong-read", diff=diff, detail=detail)
