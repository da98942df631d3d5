import random

from crashsweep.crash_explorer import point_states, tear_patterns
from crashsweep.crash_explorer._crash_points import CrashPoint
from crashsweep.crash_explorer._strategies import choice_key
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
