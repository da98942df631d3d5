"""The executable specification: a map whose history is a sequence of prefix snapshots.

Number the mutating operations of a history op_1 … op_n and let S_m be the map
after the first m of them, starting from a base map S_0 (empty for a fresh
store; the recovered snapshot when a history continues after a crash). A
`History` answers, cheaply, which m a given map equals.

Invariants:
- `snapshot_hash(m)` is a commutative hash of the items of S_m, maintained
  incrementally, so matching a recovered map costs O(|map|), not O(n × keys);
  it is Python's own (per-process) hash of each item: hashes never leave the
  process that made them, and every hash match is confirmed by comparing maps;
- a full copy of S_m is kept every `SNAPSHOT_INTERVAL_MUTATIONS`, so any S_m is
  rebuilt in O(|S| + interval) to confirm a hash match exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crashsweep.reference._ops import Op

SNAPSHOT_INTERVAL_MUTATIONS = 64
HASH_MODULUS = 1 << 64
ITEM_HASH_MASK = HASH_MODULUS - 1


def item_hash(key: bytes, value: bytes) -> int:
    """Hash of one (key, value) item; the hash of a map is the sum of its items' hashes."""
    return hash((key, value)) & ITEM_HASH_MASK


_DICT_ITEMS = type({}.items())


def map_hash(items: Iterable[tuple[bytes, bytes]]) -> int:
    """The sum of `item_hash` over the items, modulo HASH_MODULUS. (HASH_MODULUS is a power of two, so the sum
    of the masked hashes and the sum of the hashes agree modulo it: a dict's items are summed in C.)"""
    if type(items) is _DICT_ITEMS:
        return sum(map(hash, items)) % HASH_MODULUS
    return sum(hash(item if type(item) is tuple else tuple(item)) & ITEM_HASH_MASK for item in items) % HASH_MODULUS


class History:
    """Prefix snapshots S_0 … S_n of a history of operations.

    Example:
        >>> from crashsweep.reference import History, put, sync
        >>> history = History([put(b"a", b"1"), sync(), put(b"a", b"2")])
        >>> history.matching_mutations({b"a": b"1"})
        [1]
    """

    def __init__(self, ops: list[Op], base: Mapping[bytes, bytes] | None = None):
        self.ops = list(ops)
        self.base = dict(base or {})
        # changes[m - 1] = (key, value before, value after) of mutation m; None means absent.
        self.changes: list[tuple[bytes, bytes | None, bytes | None]] = []
        # mutations_before[i] = number of mutating operations among ops[:i].
        self.mutations_before: list[int] = []
        self._hashes: list[int] = []
        self._snapshots: dict[int, dict[bytes, bytes]] = {}
        self._keys: frozenset[bytes] | None = None
        self._keys_sorted: list[bytes] | None = None
        self._build()

    def _build(self) -> None:
        current = dict(self.base)
        running_hash = map_hash(current.items())
        self._hashes.append(running_hash)
        self._snapshots[0] = dict(current)
        for op in self.ops:
            self.mutations_before.append(len(self.changes))
            if not op.mutating:
                continue
            before = current.get(op.key)
            after = op.value if op.kind == "put" else None
            if before is not None:
                running_hash -= item_hash(op.key, before)
                del current[op.key]
            if after is not None:
                running_hash += item_hash(op.key, after)
                current[op.key] = after
            running_hash %= HASH_MODULUS
            self.changes.append((op.key, before, after))
            self._hashes.append(running_hash)
            if len(self.changes) % SNAPSHOT_INTERVAL_MUTATIONS == 0:
                self._snapshots[len(self.changes)] = dict(current)
        self.mutations_before.append(len(self.changes))
        self._by_hash: dict[int, list[int]] = {}
        for index, value in enumerate(self._hashes):
            self._by_hash.setdefault(value, []).append(index)
        self.final = current

    @property
    def mutation_count(self) -> int:
        return len(self.changes)

    def keys_touched(self) -> frozenset[bytes]:
        """Every key the history (and its base) ever mentions: the read-out set for engines without items()."""
        if self._keys is None:
            keys = set(self.base)
            keys.update(op.key for op in self.ops if op.key is not None)
            self._keys = frozenset(keys)
        return self._keys

    def keys_sorted(self) -> list[bytes]:
        """`keys_touched()` in order, computed once."""
        if self._keys_sorted is None:
            self._keys_sorted = sorted(self.keys_touched())
        return self._keys_sorted

    def snapshot(self, mutations: int) -> dict[bytes, bytes]:
        """S_m as a fresh dict. Requires: 0 <= mutations <= mutation_count."""
        assert 0 <= mutations <= self.mutation_count, mutations
        start = mutations - mutations % SNAPSHOT_INTERVAL_MUTATIONS
        current = dict(self._snapshots[start])
        for key, _, after in self.changes[start:mutations]:
            if after is None:
                current.pop(key, None)
            else:
                current[key] = after
        return current

    def snapshot_hash(self, mutations: int) -> int:
        return self._hashes[mutations]

    def matching_mutations(self, recovered: Mapping[bytes, bytes]) -> list[int]:
        """Every m with S_m == recovered, ascending; confirmed exactly, not only by hash."""
        recovered = recovered if isinstance(recovered, dict) else dict(recovered)
        candidates = self._by_hash.get(map_hash(recovered.items()), [])
        return [m for m in candidates if self.snapshot(m) == recovered]

    def distances(self, recovered: Mapping[bytes, bytes]) -> list[int]:
        """distances[m] = number of keys on which S_m and recovered differ, for every m, in O(n + keys)."""
        current = self.base
        distance = sum(1 for key in current.keys() | recovered.keys() if current.get(key) != recovered.get(key))
        result = [distance]
        for key, before, after in self.changes:
            seen = recovered.get(key)
            distance += (after != seen) - (before != seen)
            result.append(distance)
        return result
