"""Named, seeded workloads: the same (name, seed, length) always gives the same operations.

Invariants: every generator returns a list of `Op`; keys and values are bytes;
a workload that mutates ends with a sync, so its final state is promised durable.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from crashsweep.reference import Op, delete, get, put, sync
from crashsweep.scenarios.errors import ScenarioError

OPS_COUNT_MAX = 1_000_000
VALUE_SIZE_SMALL_BYTES = 100


def _key(index: int) -> bytes:
    return b"user%08d" % index


def _value(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size // 2).hex().encode()[:size].ljust(size, b"0")


def _zipf_index(rng: random.Random, count: int, skew: float = 0.99) -> int:
    """An index in [0, count) drawn from a bounded Zipf-like law (YCSB's request distribution)."""
    assert count > 0
    return min(count - 1, int(count * rng.random() ** (1.0 / (1.0 - skew * 0.5)) ** 2))


def _with_syncs(ops: list[Op], every: int) -> list[Op]:
    result, mutations = [], 0
    for op in ops:
        result.append(op)
        if op.mutating:
            mutations += 1
            if mutations % every == 0:
                result.append(sync())
    if not result or result[-1].kind != "sync":
        result.append(sync())
    return result


def default(rng: random.Random, count: int) -> list[Op]:
    """Mixed puts (a few multi-sector values), overwrites, deletes and reads, a sync every ~6 mutations."""
    ops, live = [], []
    for index in range(count):
        choice = rng.random()
        if live and choice < 0.15:
            key = live.pop(rng.randrange(len(live)))
            ops.append(delete(key))
        elif live and choice < 0.30:
            ops.append(get(rng.choice(live)))
        else:
            key = rng.choice(live) if live and choice < 0.45 else b"key-%03d" % index
            size = rng.choice((16, 64, 200, 200, 1500, 6000))
            ops.append(put(key, _value(rng, size)))
            if key not in live:
                live.append(key)
    return _with_syncs(ops, 6)


def ycsb_load(rng: random.Random, count: int) -> list[Op]:
    """YCSB Load: inserts of new keys, 100-byte values."""
    order = list(range(count))
    rng.shuffle(order)
    return _with_syncs([put(_key(index), _value(rng, VALUE_SIZE_SMALL_BYTES)) for index in order], 10)


def _ycsb_mix(rng: random.Random, count: int, read_share: float) -> list[Op]:
    records = max(4, count // 3)
    ops = [put(_key(index), _value(rng, VALUE_SIZE_SMALL_BYTES)) for index in range(records)]
    ops.append(sync())
    for _ in range(count - records):
        key = _key(_zipf_index(rng, records))
        ops.append(get(key) if rng.random() < read_share else put(key, _value(rng, VALUE_SIZE_SMALL_BYTES)))
    return _with_syncs(ops, 10)


def ycsb_a(rng: random.Random, count: int) -> list[Op]:
    """YCSB A: a load, then 50 % reads and 50 % updates, Zipf-distributed keys."""
    return _ycsb_mix(rng, count, 0.5)


def ycsb_c(rng: random.Random, count: int) -> list[Op]:
    """YCSB C: a load, then reads only."""
    return _ycsb_mix(rng, count, 1.0)


def uniform_random(rng: random.Random, count: int) -> list[Op]:
    """Uniform random puts, deletes, gets and syncs over a small key space."""
    ops = []
    for _ in range(count):
        key = b"k%02d" % rng.randrange(24)
        choice = rng.random()
        if choice < 0.5:
            ops.append(put(key, _value(rng, rng.choice((8, 120, 900)))))
        elif choice < 0.7:
            ops.append(delete(key))
        elif choice < 0.9:
            ops.append(get(key))
        else:
            ops.append(sync())
    return ops + [sync()]


def sync_heavy(rng: random.Random, count: int) -> list[Op]:
    """A sync after every mutation: every crash window is one operation wide."""
    return _with_syncs([put(b"s%03d" % rng.randrange(count), _value(rng, 64)) for _ in range(count)], 1)


def delete_heavy(rng: random.Random, count: int) -> list[Op]:
    """Inserts, then deletes of most keys and some re-inserts."""
    inserted = max(2, count // 3)
    ops = [put(b"d%03d" % index, _value(rng, 80)) for index in range(inserted)]
    for _ in range(count - inserted):
        key = b"d%03d" % rng.randrange(inserted)
        ops.append(delete(key) if rng.random() < 0.75 else put(key, _value(rng, 80)))
    return _with_syncs(ops, 5)


def large_values(rng: random.Random, count: int) -> list[Op]:
    """Values of 2 to 16 KiB, so every write spans several sectors and can tear."""
    ops = [put(b"big-%02d" % rng.randrange(max(2, count // 2)), _value(rng, rng.randrange(2048, 16384)))
           for _ in range(count)]
    return _with_syncs(ops, 3)


SCENARIOS: dict[str, tuple[Callable[[random.Random, int], list[Op]], int]] = {
    "default": (default, 48),
    "ycsb-load": (ycsb_load, 60),
    "ycsb-a": (ycsb_a, 60),
    "ycsb-c": (ycsb_c, 40),
    "random": (uniform_random, 60),
    "sync-heavy": (sync_heavy, 24),
    "delete-heavy": (delete_heavy, 48),
    "large-values": (large_values, 12),
}


def generate(name: str, seed: int, ops_count: int | None = None) -> list[Op]:
    """The ops of a named scenario. Example: `generate("ycsb-a", seed=1, ops_count=100)`."""
    if name not in SCENARIOS:
        raise ScenarioError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)}; or a path to a .json file)")
    generator, default_count = SCENARIOS[name]
    count = default_count if ops_count is None else ops_count
    if not 1 <= count <= OPS_COUNT_MAX:
        raise ScenarioError(f"scenario length must be in 1..{OPS_COUNT_MAX}, got {count}")
    return generator(random.Random(f"scenario:{name}:{seed}"), count)


def describe() -> dict[str, str]:
    return {name: (generator.__doc__ or "").strip().splitlines()[0] for name, (generator, _) in SCENARIOS.items()}
