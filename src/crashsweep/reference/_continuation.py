"""The continuation after a recovery, and stable map hashes: the standard library only.

The explorer continues a state its engine recovered to some snapshot S_m with a few
operations and a sync (`_recover._continue`). A kept native host runs that continuation
itself, in the same request stream as the read-out (`_native_host.py`, `continue`), so
both sides must make the same operations from the same recovered map: this file is the
one definition, and the host loads it by its path (it imports nothing of crashsweep).

Invariants:
- `continuation_steps(continuation_rng(seed, depth, m), recovered)` depends only on its
  arguments (string-seeded `random.Random`, sorted keys): equal in every process;
- `map_hash` is a commutative 128-bit hash of a map's items that is the same in every
  process (unlike Python's `hash` of bytes), maintained incrementally by `snapshot_hashes`.
"""

from __future__ import annotations

import hashlib
import random

CONTINUATION_OPS = 3
MAP_HASH_MODULUS = 1 << 128


def continuation_rng(seed: int, depth: int, snapshot: int) -> random.Random:
    """The continuation's randomness: a function of what was recovered, not of the crash state, so two
    states an engine recovers alike are continued alike. `snapshot` is the first m with S_m equal to
    the recovered map (the continuation runs only after a recovery to some S_m)."""
    return random.Random(f"{seed}:continue:{depth}:{snapshot}")


def continuation_steps(rng: random.Random, recovered) -> list[tuple]:
    """The continuation as (kind, key, value) triples: a put of a new key, an update and a delete of
    recovered keys, a get of each key written, and a sync."""
    keys = sorted(recovered)
    steps = [("put", b"continued-%d" % rng.randrange(1000), b"after-crash-%d" % rng.randrange(10**6))]
    if keys:
        steps.append(("put", rng.choice(keys), b"updated-after-crash-%d" % rng.randrange(10**6)))
        steps.append(("delete", rng.choice(keys), None))
    steps = steps[:CONTINUATION_OPS]
    steps += [("get", step[1], None) for step in steps] + [("sync", None, None)]
    return steps


def steps_digest(steps) -> str:
    """A digest of a sequence of (kind, key, value) steps: both sides confirm they ran the same ones."""
    parts = []
    for kind, key, value in steps:
        for part in (kind.encode(), key, value):
            if part is None:
                parts.append(b"\xff")
            else:
                parts += (len(part).to_bytes(8, "little"), part)
    return hashlib.blake2b(b"".join(parts), digest_size=16).hexdigest()


def item_hash(key: bytes, value: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(len(key).to_bytes(8, "little") + key + value, digest_size=16).digest(),
                          "little")


def map_hash(items) -> int:
    """The hash of a map given as (key, value) pairs: the sum of its items' hashes (order does not matter)."""
    return sum(item_hash(key, value) for key, value in items) % MAP_HASH_MODULUS


def snapshot_hashes(base, changes) -> list[int]:
    """`map_hash(S_m)` for m = 0 … n: `base` is S_0, `changes[m - 1]` = (key, before, after) of mutation m
    (None: absent), as `History.changes` holds them."""
    running = map_hash(base.items())
    hashes = [running]
    for key, before, after in changes:
        if before is not None:
            running -= item_hash(key, before)
        if after is not None:
            running += item_hash(key, after)
        running %= MAP_HASH_MODULUS
        hashes.append(running)
    return hashes
