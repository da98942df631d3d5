import random

from hypothesis import given, settings
from hypothesis import strategies as st

from crashsweep.crash_explorer import point_states, tear_patterns
from crashsweep.crash_explorer._crash_points import CrashPoint
from crashsweep.crash_explorer._plan import PlannedState, pack_choice
from crashsweep.crash_explorer._strategies import choice_key, sparse_choice, sparse_packed, sparse_point_states
from crashsweep.disk_model import FaultPlan

POINT = CrashPoint(0, 0, 0, (10, 11, 12), ((0, 0),), 0)
FAULTS = FaultPlan.parse("crash,torn,lost")


def states(strategy, counts=(1, 2, 1), bound=1, samples=5, states_max=4096, faults=FAULTS, seed=0):
    return point_states(POINT, list(counts), faults, strategy, bound, samples, states_max, random.Random(seed))


def test_tears_are_proper_non_empty_subsets_or_prefixes_and_suffixes():
    assert tear_patterns(1) == []
    assert sorted(tear_patterns(2)) == [(0,), (1,)]
    assert len(tear_patterns(4)) == 14
    assert len(tear_patterns(9)) == 16


def test_exhaustive_enumerates_every_combination_and_says_so():
    choices, space, exhausted = states("exhaustive")
    assert space == 2 * 4 * 2 and len(choices) == 16 and exhausted
    assert len({choice_key(c) for c in choices}) == 16


def test_exhaustive_over_the_limit_samples_and_says_so():
    choices, space, exhausted = states("exhaustive", states_max=5)
    assert len(choices) == 5 and space == 16 and not exhausted


def test_bounded_deviates_at_most_k_writes_from_all_landed_and_all_lost():
    choices, _, _ = states("bounded", bound=1)
    for choice in choices:
        landed = len(choice.get("persist", []))
        assert landed >= 2 or landed + len(choice.get("torn", [])) <= 1


def test_prefix_lands_submission_order_prefixes():
    choices, _, _ = states("prefix", counts=(1, 1, 1))
    assert [c.get("persist", []) for c in choices] == [[], [10], [10, 11], [10, 11, 12]]


def test_random_is_seeded():
    assert states("random", seed=4)[0] == states("random", seed=4)[0]
    assert len(states("random", samples=5)[0]) == 5


def test_without_lost_every_pending_write_lands():
    choices, space, _ = states("exhaustive", faults=FaultPlan.parse("crash,torn"))
    assert space == 1 * 3 * 1
    assert all(len(c.get("persist", [])) + len(c.get("torn", [])) == 3 for c in choices)


def test_a_bounded_space_past_the_limit_is_sampled_not_truncated_and_not_enumerated():
    pending = tuple(range(100, 3100))           # thousands of pending writes: ~2e7 combinations within k = 2
    point = CrashPoint(0, 0, 0, pending, ((0, 0),), 0)
    caller = random.Random(7)
    before = caller.getstate()
    choices, space, exhausted = point_states(point, [1] * len(pending), FAULTS, "bounded", 2, 5, 500, caller)
    assert caller.getstate() == before          # what the caller draws next does not depend on the sampling
    assert len(choices) == 500 and not exhausted and space == 2 ** len(pending)
    assert choices[0] == {"persist": list(pending)} and choices[1] == {}          # both bases first
    assert len({choice_key(choice) for choice in choices}) == 500
    lost = [sorted(set(pending) - set(choice.get("persist", ()))) for choice in choices[2:]]
    landed_few = [choice for choice in choices[2:] if len(choice.get("persist", ())) <= 2]
    assert all(len(gone) <= 2 or len(gone) >= len(pending) - 2 for gone in lost)
    deviated = {write for gone in lost if len(gone) <= 2 for write in gone}
    assert max(deviated) > pending[len(pending) // 2]      # not only the first writes (a truncation would be)
    assert landed_few, "deviations from all-lost are sampled too"
    again, _, _ = point_states(point, [1] * len(pending), FAULTS, "bounded", 2, 5, 500, random.Random(7))
    assert again == choices


def test_a_planned_state_keeps_its_choice_packed_and_gives_it_back_exactly():
    from crashsweep.crash_explorer._plan import PlannedState, pack_choice
    pending = tuple(range(40, 400, 3))
    for choice in ({}, {"persist": list(pending[:-1])}, {"persist": [pending[5]], "torn": [[pending[9], [0, 2]]]},
                   {"persist": [1, 2]}, {"persist": list(pending), "faults": [{"kind": "corrupt", "sector": 3}]}):
        planned = PlannedState(0, 0, choice, ((0, 0),), 1, pending=pending)
        assert planned.choice == choice
    assert not isinstance(pack_choice(pending, {"persist": list(pending)}), dict)     # the compact form is used


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(1, 6), min_size=1, max_size=12), bound=st.integers(1, 3),
       states_max=st.integers(1, 40), seed=st.integers(0, 2 ** 32), lost=st.booleans(), torn=st.booleans())
def test_sparse_bounded_combinations_are_the_choices_point_states_gives(counts, bound, states_max, seed, lost, torn):
    """The bounded strategy's (base, deviations) combinations, sampled or listed whole, made into choices are
    `point_states`'s choices in the same order (also where two bases can meet in a sample: few writes, all
    deviated); only a space of at most 2 x bound writes listed whole is left to `point_states`."""
    faults = FaultPlan.parse(",".join(["crash"] + ["lost"] * lost + ["torn"] * torn))
    pending = tuple(range(50, 50 + len(counts)))
    point = CrashPoint(0, 0, 0, pending, ((0, 0),), 0)
    dense = point_states(point, counts, faults, "bounded", bound, 5, states_max, random.Random(seed))
    drawn = sparse_point_states(point, counts, faults, bound, states_max, random.Random(seed))
    if drawn is None:         # listed whole, and two bases could name one combination
        assert len(dense[0]) <= states_max and len(counts) <= 2 * bound
        return
    combos, space, exhausted = drawn
    assert [sparse_choice(pending, base, deviations) for base, deviations in combos] == dense[0]
    assert (space, exhausted) == dense[1:]
    assert all(fate != base for base, deviations in combos for _, fate in deviations)
    # planning packs a new state's choice straight from its combination, as a planned state would pack it
    for base, deviations in combos:
        packed = sparse_packed(len(pending), base, deviations)
        assert packed == pack_choice(pending, sparse_choice(pending, base, deviations))
        assert PlannedState(0, 0, packed, (), 0, pending=pending).choice == sparse_choice(pending, base, deviations)


def test_sparse_combinations_of_thousands_of_writes_are_the_sampled_choices():
    pending = tuple(range(100, 3100))
    point = CrashPoint(0, 0, 0, pending, ((0, 0),), 0)
    counts = [1, 3] * (len(pending) // 2)
    dense, _, _ = point_states(point, counts, FAULTS, "bounded", 2, 5, 500, random.Random(7))
    combos, _, _ = sparse_point_states(point, counts, FAULTS, 2, 500, random.Random(7))
    assert [sparse_choice(pending, base, deviations) for base, deviations in combos] == dense
    assert max(len(deviations) for _, deviations in combos) == 2


_RIDS = st.one_of(st.integers(0, 12), st.booleans(), st.text(max_size=1))
_UNITS = st.one_of(st.lists(st.integers(0, 3), max_size=3), st.tuples(st.integers(0, 3)))


@settings(max_examples=400, deadline=None)
@given(pending=st.lists(st.integers(0, 12), unique=True, max_size=8).map(tuple),
       persist=st.none() | st.lists(_RIDS, max_size=6) | st.tuples(st.integers(0, 12)),
       torn=st.none() | st.lists(st.one_of(st.tuples(_RIDS, _UNITS).map(list), st.tuples(_RIDS, _UNITS)),
                                 max_size=3),
       extra=st.booleans())
def test_any_choice_comes_back_from_a_planned_state_exactly(pending, persist, torn, extra):
    """Packed or kept as it is, a planned state's choice is given back equal, with the same list and tuple
    types (a result line and a trace carry it as JSON): whatever order, repeats or ids the lists hold."""
    from crashsweep.crash_explorer._plan import PlannedState, pack_choice
    choice = {}
    if persist is not None:
        choice["persist"] = persist
    if torn is not None:
        choice["torn"] = torn
    if extra:
        choice["faults"] = []

    def typed(value):
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, [typed(item) for item in value])
        return (type(value).__name__, value)

    planned = PlannedState(0, 0, choice, ((0, 0),), 1, pending=pending)
    assert typed(list(planned.choice.items())) == typed(list(choice.items()))
    in_order = (type(persist) is list and persist and all(type(rid) is int for rid in persist)
                and set(persist) <= set(pending) and persist == sorted(set(persist), key=pending.index))
    if in_order and torn is None and not extra:
        assert not isinstance(pack_choice(pending, choice), dict), choice     # the compact form is used
