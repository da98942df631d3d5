from hypothesis import given, settings, strategies as st

from crashsweep.reference import (
    CrashWindow, Diff, History, check_reads, check_recovered, check_refusal, delete, put, sync,
)

keys = st.sampled_from([b"a", b"b", b"c", b"d"])
values = st.binary(min_size=0, max_size=3)
mutations = st.lists(st.one_of(st.builds(put, keys, values), st.builds(delete, keys)), min_size=1, max_size=30)


def test_recovered_prefix_within_window_is_accepted_with_its_index():
    history = History([put(b"a", b"1"), sync(), put(b"a", b"2"), put(b"b", b"3")])
    verdict = check_recovered(history, CrashWindow(1, 3), {b"a": b"2"})
    assert verdict.ok and verdict.matched == 2 and not verdict.latest


def test_latest_flag_set_when_every_started_mutation_survived():
    history = History([put(b"a", b"1"), put(b"b", b"2")])
    assert check_recovered(history, CrashWindow(0, 2), {b"a": b"1", b"b": b"2"}).latest


def test_snapshot_older_than_last_sync_is_lost_synced_data_with_diff():
    history = History([put(b"a", b"1"), sync(), put(b"a", b"2"), sync()])
    verdict = check_recovered(history, CrashWindow(2, 2), {b"a": b"1"})
    assert verdict.kind == "lost-synced-data" and verdict.matched == 1
    assert verdict.diff.wrong == {b"a": (b"2", b"1")}


def test_map_matching_no_prefix_is_not_a_snapshot_with_nearest_and_exact_diff():
    history = History([put(b"a", b"1"), put(b"b", b"2"), put(b"c", b"3")])
    verdict = check_recovered(history, CrashWindow(0, 3), {b"a": b"1", b"c": b"3"})
    assert verdict.kind == "not-a-snapshot"
    assert verdict.nearest == 3
    assert verdict.diff.missing == {b"b": b"2"} and not verdict.diff.extra and not verdict.diff.wrong


def test_refusal_allowed_only_with_corruption():
    assert check_refusal("CorruptionDetected", corruption_injected=True).ok
    assert check_refusal("ValueError", corruption_injected=False).kind == "recovery-error"


def test_reads_disagreeing_with_snapshot_are_wrong_read():
    verdict = check_reads({b"a": b"1"}, {b"a": b"2", b"b": None})
    assert verdict.kind == "wrong-read" and verdict.diff.wrong == {b"a": (b"1", b"2")}
    assert check_reads({b"a": b"1"}, {b"a": b"1", b"z": None}) is None


def test_base_map_continuation_history():
    history = History([put(b"x", b"1"), sync()], base={b"a": b"0"})
    assert history.snapshot(0) == {b"a": b"0"}
    assert check_recovered(history, CrashWindow(1, 1), {b"a": b"0", b"x": b"1"}).ok


def test_diff_between_counts_every_kind():
    diff = Diff.between({b"a": b"1", b"b": b"2"}, {b"b": b"3", b"c": b"4"})
    assert (diff.missing, diff.extra, diff.wrong, len(diff)) == ({b"a": b"1"}, {b"c": b"4"}, {b"b": (b"2", b"3")}, 3)


@settings(max_examples=150, deadline=None)
@given(ops=mutations, data=st.data())
def test_every_allowed_prefix_is_accepted(ops, data):
    history = History(ops)
    n = history.mutation_count
    synced = data.draw(st.integers(0, n))
    started = data.draw(st.integers(synced, n))
    m = data.draw(st.integers(synced, started))
    verdict = check_recovered(history, CrashWindow(synced, started), history.snapshot(m))
    assert verdict.ok
    assert history.snapshot(verdict.matched) == history.snapshot(m)


@settings(max_examples=150, deadline=None)
@given(ops=mutations, data=st.data())
def test_snapshot_older_than_last_completed_sync_is_lost_synced_data(ops, data):
    history = History(ops)
    n = history.mutation_count
    synced = data.draw(st.integers(1, n)) if n else 0
    m = data.draw(st.integers(0, max(0, synced - 1)))
    recovered = history.snapshot(m)
    allowed = [k for k in range(synced, n + 1) if history.snapshot(k) == recovered]
    verdict = check_recovered(history, CrashWindow(synced, n), recovered)
    if allowed:   # the same map reappears later in the history: then it is allowed
        assert verdict.ok
    else:
        assert verdict.kind == "lost-synced-data"


@settings(max_examples=150, deadline=None)
@given(ops=mutations, data=st.data())
def test_mix_of_two_snapshots_is_rejected(ops, data):
    history = History(ops)
    n = history.mutation_count
    early, late = sorted(data.draw(st.tuples(st.integers(0, n), st.integers(0, n))))
    first, second = history.snapshot(early), history.snapshot(late)
    keys_ = sorted(first.keys() | second.keys())
    split = data.draw(st.integers(0, len(keys_)))
    mixed = {}
    for index, key in enumerate(keys_):
        source = first if index < split else second
        if key in source:
            mixed[key] = source[key]
    verdict = check_recovered(history, CrashWindow(0, n), mixed)
    is_prefix = any(history.snapshot(k) == mixed for k in range(n + 1))
    assert verdict.ok == is_prefix
    if not is_prefix:
        assert verdict.kind == "not-a-snapshot" and len(verdict.diff) > 0


@settings(max_examples=100, deadline=None)
@given(ops=mutations)
def test_incremental_hash_matches_full_recompute(ops):
    from crashsweep.reference import map_hash
    history = History(ops)
    for m in range(history.mutation_count + 1):
        assert history.snapshot_hash(m) == map_hash(history.snapshot(m).items())


def test_merged_windows_must_all_hold():
    from crashsweep.reference import check_recovered_windows
    history = History([put(b"a", b"1"), sync(), put(b"b", b"2")])
    # one disk state seen both during the sync (S_0..S_1 allowed) and after it returned (S_1 only)
    assert check_recovered_windows(history, [(0, 1), (1, 1)], {b"a": b"1"}).matched == 1
    verdict = check_recovered_windows(history, [(0, 1), (1, 1)], {})
    assert verdict.kind == "lost-synced-data"
    # a disk state that spans a sync that wrote nothing: no snapshot can satisfy both windows
    stuck = check_recovered_windows(history, [(0, 0), (1, 1)], {b"a": b"1"})
    assert stuck.kind is not None


def _windows_verdict_by_definition(history, windows, recovered):
    """Every window must allow the read-out: the latest S_m equal to it in each window, the last window's
    verdict; the first window allowing none is judged alone (`check_recovered`)."""
    matches = [m for m in range(history.mutation_count + 1) if history.snapshot(m) == dict(recovered)]
    verdict = None
    for synced, started in windows:
        allowed = [m for m in matches if synced <= m <= started]
        if not allowed:
            return check_recovered(history, CrashWindow(synced, started), recovered)
        verdict = (None, "recovered", allowed[-1], allowed[-1] == started)
    return verdict


@settings(max_examples=300, deadline=None)
@given(ops=mutations, data=st.data())
def test_windows_are_checked_as_defined(ops, data):
    """`check_recovered_windows` on any history, windows and read-out (a snapshot, often repeated: several m
    match) gives the verdict the definition gives."""
    from crashsweep.reference import check_recovered_windows
    history = History(ops)
    n = history.mutation_count
    window = st.tuples(st.integers(0, n), st.integers(0, n)).map(sorted).map(tuple)
    windows = data.draw(st.lists(window, min_size=1, max_size=4))
    recovered = data.draw(st.one_of(st.integers(0, n).map(history.snapshot),
                                    st.dictionaries(keys, values, max_size=3)))
    verdict = check_recovered_windows(history, windows, recovered)
    expected = _windows_verdict_by_definition(history, windows, recovered)
    if isinstance(expected, tuple):
        assert (verdict.kind, verdict.outcome, verdict.matched, verdict.latest) == expected
    else:
        assert (verdict.kind, verdict.outcome, verdict.matched, verdict.latest, verdict.detail) == \
            (expected.kind, expected.outcome, expected.matched, expected.latest, expected.detail)


def test_a_map_hashes_alike_from_tuples_and_from_lists():
    from crashsweep.reference import map_hash
    items = [(b"a", b"1"), (b"b", b"")]
    assert map_hash(items) == map_hash([list(item) for item in items]) == map_hash(dict(items).items())
