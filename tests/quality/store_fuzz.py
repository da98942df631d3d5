"""A fuzz campaign against the built-in store: damage a durable image, reopen, and judge what comes back.

A *base* is the image of a store after a seeded history of puts, deletes and syncs
(some ending in a checkpoint, so the journal is empty, some not). A *fault* damages a
copy of it: bit flips, random bytes in a sector, a zeroed sector or block, two sectors
swapped, one sector copied over another, the two superblocks swapped, or two of these
at once. The store is opened on the copy and read out completely.

Outcomes (`judge`):
- `right`: the map of the last sync (damage the store never reads, or repairs);
- `refused`: `CorruptionDetected` (DESIGN §2: damaged durable data may be refused);
- `journal-tail`: the map of an earlier sync, when the damage hit the journal ring
  (the store's documented limit: damage to the newest journal block is indistinguishable
  from that block's write being torn or lost, docs/format/journal.md);
- `wrong`: any other map — the store lied (must never happen);
- `other-error`: any other exception (must never happen).

Shared by `tests/quality/test_store_fuzz.py` and `benchmarks/bench_store_fuzz.py`.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from crashsweep.disk_model import MemoryBlockDevice
from crashsweep.store import BetreeStore, CorruptionDetected, StoreConfig

SECTOR_BYTES = 512
SECTOR_COUNT = 160
CONFIG = StoreConfig(node_size_bytes=2048, fanout=4, cache_bytes=8192, journal_sectors=16,
                     checkpoint_journal_share=0.5)
FAULTS = ("bit-flips", "random-bytes", "zero-sector", "zero-block", "swap-sectors", "duplicate-sector",
          "swap-superblocks")
BASES = 24


@dataclass
class Base:
    sectors: dict[int, bytes]
    synced: list[dict[bytes, bytes]]     # the map after each completed sync, oldest first
    journal: range                       # the journal ring's sectors


def make_base(seed: int) -> Base:
    rng = random.Random(f"store-fuzz-base:{seed}")
    device = MemoryBlockDevice(SECTOR_BYTES, SECTOR_COUNT)
    store = BetreeStore(device, CONFIG)
    reference: dict[bytes, bytes] = {}
    synced = [{}]
    for _ in range(rng.randrange(5, 120)):
        roll = rng.random()
        key = b"key-%03d" % rng.randrange(40)
        if roll < 0.6:
            value = bytes(rng.randrange(256) for _ in range(rng.choice((1, 8, 60, 300))))
            store.put(key, value)
            reference[key] = value
        elif roll < 0.8:
            store.delete(key)
            reference.pop(key, None)
        else:
            store.sync()
            synced.append(dict(reference))
    store.sync()
    synced.append(dict(reference))
    if rng.random() < 0.4:
        store.checkpoint()
    first = 2
    return Base(dict(device.sectors), synced, range(first, first + CONFIG.journal_sectors))


def damage(base: Base, rng: random.Random) -> tuple[dict[int, bytes], list[str], set[int]]:
    """(damaged sectors, what was done, sectors touched). One fault, or two at once (one time in four)."""
    sectors = dict(base.sectors)
    done, touched = [], set()
    for _ in range(2 if rng.random() < 0.25 else 1):
        kind = rng.choice(FAULTS)
        done.append(kind)
        touched |= _apply(kind, sectors, rng)
    return sectors, done, touched


def _written(sectors: dict[int, bytes], rng: random.Random) -> int:
    live = [s for s, data in sectors.items() if any(data)]
    return rng.choice(live) if live and rng.random() < 0.9 else rng.randrange(SECTOR_COUNT)


def _apply(kind: str, sectors: dict[int, bytes], rng: random.Random) -> set[int]:
    zero = bytes(SECTOR_BYTES)
    if kind == "swap-superblocks":
        sectors[0], sectors[1] = sectors.get(1, zero), sectors.get(0, zero)
        return {0, 1}
    target = rng.choice((0, 1)) if rng.random() < 0.15 else _written(sectors, rng)
    if kind == "bit-flips":
        data = bytearray(sectors.get(target, zero))
        for _ in range(rng.randrange(1, 9)):
            data[rng.randrange(SECTOR_BYTES)] ^= 1 << rng.randrange(8)
        sectors[target] = bytes(data)
    elif kind == "random-bytes":
        data = bytearray(sectors.get(target, zero))
        start = rng.randrange(SECTOR_BYTES)
        length = rng.randrange(1, SECTOR_BYTES - start + 1)
        data[start:start + length] = bytes(rng.randrange(256) for _ in range(length))
        sectors[target] = bytes(data)
    elif kind == "zero-sector":
        sectors[target] = zero
    elif kind == "zero-block":
        per_block = CONFIG.node_size_bytes // SECTOR_BYTES
        first = target - (target - 2 - CONFIG.journal_sectors) % per_block if target >= 18 else target
        for sector in range(first, min(SECTOR_COUNT, first + per_block)):
            sectors[sector] = zero
        return set(range(first, min(SECTOR_COUNT, first + per_block)))
    else:
        other = _written(sectors, rng)
        if kind == "swap-sectors":
            sectors[target], sectors[other] = sectors.get(other, zero), sectors.get(target, zero)
            return {target, other}
        sectors[other] = sectors.get(target, zero)       # duplicate-sector: a misdirected copy
        return {other}
    return {target}


def judge(base: Base, sectors: dict[int, bytes], touched: set[int]) -> str:
    device = MemoryBlockDevice(SECTOR_BYTES, SECTOR_COUNT)
    device.sectors = dict(sectors)
    try:
        store = BetreeStore(device, CONFIG)
        recovered = dict(store.items())
        for key in {key for snapshot in base.synced for key in snapshot}:
            if store.get(key) != recovered.get(key):
                return "wrong"
    except CorruptionDetected:
        return "refused"
    except Exception:   # noqa: BLE001 - any other exception type is a finding of this campaign
        return "other-error"
    if recovered == base.synced[-1]:
        return "right"
    if touched & set(base.journal) and recovered in base.synced[:-1]:
        return "journal-tail"
    return "wrong"


def campaign(start: int, count: int, bases: list[Base] | None = None, examples: list | None = None) -> Counter:
    """Outcomes of images `start .. start + count` (image i: base i % BASES, faults seeded by i)."""
    bases = bases or [make_base(seed) for seed in range(BASES)]
    outcomes: Counter = Counter()
    for index in range(start, start + count):
        base = bases[index % len(bases)]
        rng = random.Random(f"store-fuzz:{index}")
        sectors, done, touched = damage(base, rng)
        outcome = judge(base, sectors, touched)
        outcomes[outcome] += 1
        if outcome in ("wrong", "other-error") and examples is not None and len(examples) < 10:
            examples.append((index, done, outcome))
    return outcomes
