"""Crash-state strategies: which states of one crash point to explore.

At a crash point each pending write has a *fate*: it landed whole, it was lost
(with the `lost` fault), or it tore (with `torn`, for writes of 2+ sectors: a
proper, non-empty subset of its sectors landed). The space of a point is the
product of its writes' fates. Strategies (DESIGN §5):

- `exhaustive`: every combination, if the space is at most `states_per_point_max`
  (tears of writes longer than TEAR_SECTORS_EXHAUSTIVE_MAX sectors are limited to
  prefixes and suffixes, and such a point counts as sampled, not exhausted);
  otherwise that many seeded samples;
- `bounded` (k, ACE-style): from "everything landed", at most k writes lost or
  torn; and from "everything lost", at most k writes landed (whole or torn);
- `prefix`: submission-order prefixes landed, the next one possibly torn;
- `random`: N seeded samples per point.

Corruption faults then add up to `variants_per_point` damaged states per point.

Invariants: the same (point, seed) gives the same choices in the same order;
every choice is canonical (sorted), so equal choices compare equal.
"""

from __future__ import annotations

import array
import hashlib
import itertools
import json
import math
import operator
import random

from crashsweep.crash_explorer._crash_points import CrashPoint
from crashsweep.disk_model import FaultPlan

TEAR_SECTORS_EXHAUSTIVE_MAX = 4
LANDED = "all"


def tear_patterns(sector_count: int) -> list[tuple[int, ...]]:
    """Sector offsets that may land when a write of `sector_count` sectors tears."""
    if sector_count < 2:
        return []
    if sector_count <= TEAR_SECTORS_EXHAUSTIVE_MAX:
        everything = range(sector_count)
        return [subset for size in range(1, sector_count) for subset in itertools.combinations(everything, size)]
    prefixes = [tuple(range(0, cut)) for cut in range(1, sector_count)]
    suffixes = [tuple(range(cut, sector_count)) for cut in range(1, sector_count)]
    return prefixes + suffixes


def fates(sector_count: int, faults: FaultPlan) -> list:
    result: list = [LANDED]
    if faults.has("lost"):
        result.append(None)
    if faults.has("torn"):
        result.extend(tear_patterns(sector_count))
    return result


def true_space(sector_counts: list[int], faults: FaultPlan) -> int:
    total = 1
    for count in sector_counts:
        options = 1 + faults.has("lost") + ((2 ** count - 2) if faults.has("torn") and count > 1 else 0)
        total *= options
    return total


def make_choice(pending: tuple[int, ...], chosen: tuple) -> dict:
    # Loops in C (a point may have thousands of pending writes and thousands of choices): a fate is LANDED
    # itself, None, or a tuple of the units that landed.
    persist = list(itertools.compress(pending, map(operator.is_, chosen, itertools.repeat(LANDED))))
    torn = [[rid, list(fate)] for rid, fate in
            itertools.compress(zip(pending, chosen), map(isinstance, chosen, itertools.repeat(tuple)))]
    return _choice(persist, torn)


def _choice(persist: list, torn: list) -> dict:
    choice: dict = {}
    if persist:
        choice["persist"] = persist
    if torn:
        choice["torn"] = torn
    return choice


def choice_key(choice: dict) -> str:
    return json.dumps(choice, sort_keys=True, separators=(",", ":"))


def point_states(point: CrashPoint, sector_counts: list[int], faults: FaultPlan, strategy: str,
                 bound: int, samples: int, states_max: int, rng: random.Random,
                 sample_past_max: bool = True) -> tuple[list[dict], int, bool]:
    """(choices, size of the point's true space, whether the space was exhausted). A bounded space larger than
    `states_max` is sampled; with `sample_past_max` False its first `states_max` combinations are kept (nested
    crashes, which keep a few states per point and then sample across points)."""
    assert len(sector_counts) == len(point.pending)
    options = [fates(count, faults) for count in sector_counts]
    space = true_space(sector_counts, faults)
    tears_complete = all(count <= TEAR_SECTORS_EXHAUSTIVE_MAX for count in sector_counts) or not faults.has("torn")
    if strategy == "exhaustive":
        enumerable = math.prod(len(option) for option in options)
        if enumerable <= states_max:
            combos = list(itertools.product(*options))
            return [make_choice(point.pending, combo) for combo in combos], space, tears_complete
        return _sampled(point, options, min(states_max, enumerable), rng), space, False
    if strategy == "bounded":
        combos = _bounded(options, bound, states_max, rng, sample_past_max)
    elif strategy == "prefix":
        combos = _prefixes(options, faults)
    else:
        assert strategy == "random", strategy
        return _sampled(point, options, min(samples, math.prod(len(o) for o in options)), rng), space, False
    # Distinct combinations are distinct choices (make_choice is one-to-one): drop repeats before building.
    choices = [make_choice(point.pending, combo) for combo in list(dict.fromkeys(combos))[:states_max]]
    return choices, space, len(choices) == space


def _unique(choices: list[dict]) -> list[dict]:
    seen, result = set(), []
    for choice in choices:
        key = choice_key(choice)
        if key not in seen:
            seen.add(key)
            result.append(choice)
    return result


def _sampled(point: CrashPoint, options: list[list], count: int, rng: random.Random) -> list[dict]:
    seen, result = set(), []
    attempts = 0
    while len(result) < count and attempts < count * 8:
        attempts += 1
        choice = make_choice(point.pending, tuple(rng.choice(option) for option in options))
        key = choice_key(choice)
        if key not in seen:
            seen.add(key)
            result.append(choice)
    return result


def _bounded(options: list[list], bound: int, states_max: int, rng: random.Random,
             sample_past_max: bool = True, sparse: bool = False) -> list[tuple] | None:
    """ACE-style: deviate at most `bound` writes from all-landed, and (with `lost`) from all-lost. A space
    larger than `states_max` is sampled (seeded, never enumerated: thousands of pending writes make millions
    of combinations), keeping both bases first. `sparse`: the combinations as (base, deviations) — sampled
    (`_sampled_deviations`) or enumerated (`_deviations_sparse`) — and None where two bases can name one
    combination (few writes: the dense combinations are compared whole)."""
    bases = [LANDED] + ([None] if all(None in option for option in options) else [])
    sizes = [_deviation_counts(options, base, bound) for base in bases]
    if sum(map(sum, sizes)) <= states_max or not sample_past_max:
        if sparse:
            if len(options) <= 2 * bound or not sample_past_max:
                return None
            return [combo for base in bases for combo in _deviations_sparse(options, base, bound)]
        combos = []
        for base in bases:
            combos += _deviations(options, base, bound, states_max)
        return combos
    # A generator of its own, seeded from the caller's state without drawing from it: what the caller draws
    # next does not depend on whether this space was sampled.
    words = rng.getstate()[1]
    seed = hashlib.blake2b(array.array("Q", words).tobytes(), digest_size=8).digest()
    drawn = _sampled_deviations(options, bases, sizes, states_max, random.Random(seed))
    return drawn if sparse else [_dense(len(options), base, deviations) for base, deviations in drawn]


def _dense(count: int, base, deviations: tuple) -> tuple:
    combo = [base] * count
    for index, fate in deviations:
        combo[index] = fate
    return tuple(combo)


def sparse_point_states(point: CrashPoint, sector_counts: list[int], faults: FaultPlan, bound: int,
                        states_max: int, rng: random.Random) -> tuple[list[tuple], int, bool] | None:
    """`point_states` of the bounded strategy as (base, ((index, fate), ...)) combinations: all pending writes at
    `base` (LANDED or None) but those; `sparse_choice` makes one a choice. The same combinations in the same order
    as `point_states`'s choices, in O(bound) each instead of O(pending writes) (a point with hundreds of pending
    writes draws thousands; one with twenty lists hundreds). None where two bases can meet (at most 2 x bound
    writes: `point_states` compares its few combinations whole)."""
    options = [fates(count, faults) for count in sector_counts]
    combos = _bounded(options, bound, states_max, rng, sparse=True)
    if combos is None:
        return None
    combos, space = combos[:states_max], true_space(sector_counts, faults)
    return combos, space, len(combos) == space


def sparse_choice(pending: tuple[int, ...], base, deviations: tuple) -> dict:
    """`make_choice` of a sparse combination (`sparse_point_states`)."""
    if base is LANDED:
        deviated = {index for index, _ in deviations}
        persist = [rid for index, rid in enumerate(pending) if index not in deviated]
    else:
        persist = [pending[index] for index, fate in deviations if fate is LANDED]
    return _choice(persist, [[pending[index], list(fate)] for index, fate in deviations if isinstance(fate, tuple)])


def sparse_packed(count: int, base, deviations: tuple) -> tuple:
    """`pack_choice(pending, sparse_choice(pending, base, deviations))` for a point of `count` pending writes,
    without making the choice: (mask of the landed writes' indices, ((index, units), ...) of the torn ones)."""
    if base is LANDED:
        mask = (1 << count) - 1
        for index, _ in deviations:
            mask &= ~(1 << index)
    else:
        mask = 0
        for index, fate in deviations:
            if fate is LANDED:
                mask |= 1 << index
    return mask, tuple((index, tuple(fate)) for index, fate in deviations if isinstance(fate, tuple))


def _deviation_counts(options: list[list], base, bound: int) -> list[int]:
    """counts[s]: combinations with exactly s writes away from `base` (elementary symmetric sums of the
    writes' numbers of other fates), s = 0..bound."""
    counts = [1] + [0] * bound
    for option in options:
        others = len(option) - (base in option)
        for size in range(bound, 0, -1):
            counts[size] += counts[size - 1] * others
    return counts


def _sampled_deviations(options, bases, sizes, states_max: int, rng: random.Random) -> list[tuple]:
    """`states_max` distinct combinations of the bounded space, as (base, ((index, fate), ...) by index): the
    bases, then deviations drawn with the weight of their size (each size's share of the space), writes and
    fates uniformly."""
    count = len(options)
    bound = len(sizes[0]) - 1
    # (base, deviations) names one combination: two with different bases are the same only when every write
    # deviates from one base or the other, which takes more writes than 2 x bound. Below that, compare whole.
    whole = count <= 2 * bound
    combos: dict = {}
    for base in bases:
        combos.setdefault(_dense(count, base, ()) if whole else (base, ()), (base, ()))
    weighted = [(base, size, number) for base, counts in zip(bases, sizes) for size, number in enumerate(counts)
                if size > 0 and number > 0]
    # The same draws as `rng.choices(weighted, weights)` and a choice among each write's other fates, with the
    # sums and the lists made once (a point may have thousands of writes and draw tens of thousands of times).
    cum_weights = list(itertools.accumulate(number for _, _, number in weighted))
    alternatives = {base: [[fate for fate in option if fate != base] for option in options] for base in bases}
    indexes = range(count)
    attempts = 0
    while len(combos) < states_max and weighted and attempts < states_max * 8:
        attempts += 1
        base, size, _ = rng.choices(weighted, cum_weights=cum_weights)[0]
        others = alternatives[base]
        deviations = []
        for index in rng.sample(indexes, size):
            if others[index]:
                deviations.append((index, rng.choice(others[index])))
        deviations.sort(key=operator.itemgetter(0))
        combo = (base, tuple(deviations))
        combos.setdefault(_dense(count, base, combo[1]) if whole else combo, combo)
    return list(combos.values())


def _deviations(options: list[list], base, bound: int, states_max: int) -> list[tuple]:
    """Every write at `base` except at most `bound` of them, which take another of their fates (the first
    `states_max`)."""
    count = len(options)
    combos: list[tuple] = [tuple(base for _ in options)]
    for size in range(1, min(bound, count) + 1):
        for chosen in itertools.combinations(range(count), size):
            alternatives = [[fate for fate in options[index] if fate != base] for index in chosen]
            for deviation in itertools.product(*alternatives):
                combo = [base] * count
                for index, fate in zip(chosen, deviation):
                    combo[index] = fate
                combos.append(tuple(combo))
                if len(combos) >= states_max:
                    return combos
    return combos


def _deviations_sparse(options: list[list], base, bound: int) -> list[tuple]:
    """`_deviations` of a space it lists whole, as (base, ((index, fate), ...) by index), in its order."""
    others = [[fate for fate in option if fate != base] for option in options]
    combos: list[tuple] = [(base, ())]
    for size in range(1, min(bound, len(options)) + 1):
        for chosen in itertools.combinations(range(len(options)), size):
            for deviation in itertools.product(*[others[index] for index in chosen]):
                combos.append((base, tuple(zip(chosen, deviation))))
    return combos


def _prefixes(options: list[list], faults: FaultPlan) -> list[tuple]:
    count = len(options)
    if not faults.has("lost"):
        combos = [tuple(LANDED for _ in options)]
        return combos + [tuple(LANDED if i != j else tear for i in range(count))
                         for j in range(count) for tear in options[j][1:] if tear[0] == 0]
    combos = []
    for landed in range(count + 1):
        combos.append(tuple(LANDED if index < landed else None for index in range(count)))
        if landed < count:
            for tear in options[landed]:
                if tear not in (LANDED, None) and tear[0] == 0:
                    combos.append(tuple(LANDED if index < landed else (tear if index == landed else None)
                                        for index in range(count)))
    return combos


def corruption_variants(point: CrashPoint, base_choices: list[dict], faults: FaultPlan, durable_sectors: list[int],
                        sector_size: int, sector_count_device: int, writes: dict, rng: random.Random,
                        sector_bytes=None) -> list[dict]:
    """Up to `variants_per_point` states of this point with one corruption fault each.

    `sector_bytes(sector, request_id, offset)` gives a sector's content (durable, or of an in-flight write):
    a flipped bit then lands on a byte that carries data, not on zero padding, where damage rarely matters.
    """
    kinds = faults.corruption_kinds
    if not kinds or not base_choices:
        return []
    variants = []
    for number in range(faults.variants_per_point):
        kind = kinds[number % len(kinds)]
        base = dict(rng.choice(base_choices))
        fault = _one_fault(kind, base, durable_sectors, sector_size, sector_count_device, writes, rng, sector_bytes)
        if fault is None:
            continue
        base["faults"] = [fault]
        variants.append(base)
    return _unique(variants)


def _one_fault(kind, base, durable_sectors, sector_size, sector_count_device, writes, rng,
               sector_bytes=None) -> dict | None:
    landed = list(base.get("persist", ()))
    if kind == "misdirect":
        if not landed:
            return None
        request = rng.choice(landed)
        length = writes[request][1]
        targets = [s for s in durable_sectors if s + length <= sector_count_device
                   and not writes[request][0] <= s < writes[request][0] + length]
        if not targets:
            return None
        return {"kind": "misdirect", "request": request, "to": rng.choice(targets)}
    in_flight = [(writes[rid][0] + offset, rid, offset) for rid in landed for offset in range(writes[rid][1])]
    if kind == "corrupt":
        if not durable_sectors and not in_flight:
            return None
        if in_flight and (not durable_sectors or rng.random() < 0.5):   # damage what was just written, often
            sector, rid, offset = rng.choice(in_flight)
        else:
            sector, rid, offset = rng.choice(durable_sectors), None, None
        data = sector_bytes(sector, rid, offset) if sector_bytes is not None else b""
        meaningful = [index for index, byte in enumerate(data) if byte]
        byte = rng.choice(meaningful) if meaningful else rng.randrange(sector_size)
        return {"kind": "corrupt", "sector": sector, "byte": byte, "bit": rng.randrange(8)}
    if not durable_sectors:
        return None
    return {"kind": kind, "sector": rng.choice(durable_sectors)}
