"""Node pages: the LRU node cache, copy-on-write writeback, and the in-memory indirection table.

The cache is bounded in bytes (each node counted at its encoded size) and may
write a dirty node back at any time between operations. The bound is checked
after any operation that brought a node into the cache, and otherwise every
CHECK_EVERY_CALLS operations (in between, cached nodes grow by at most one
message per operation), so summing the cache is not a per-operation cost.
Leaves go first (least recently used first), internal nodes only when no leaf
is left to evict: every lookup passes through the internal nodes. A write-back never
overwrites a block: it goes to a freshly allocated block, the indirection
table entry (node id -> block, length, CRC) moves there, and the old block is
released to the allocator, which keeps it until no durable checkpoint can reach
it. Reading a node checks its block's CRC (with the address) and the CRC the
table expects, so a stale, torn or misdirected block raises CorruptionDetected
and never yields a node.

Invariants: a node is in `dirty` only if it is cached; every table entry's block
is in the allocator's `current` set.
"""

from __future__ import annotations

from collections import OrderedDict

from crashsweep.store import _node_format as fmt
from crashsweep.store._allocator import BlockAllocator
from crashsweep.store._tree import Internal, Leaf
from crashsweep.store.errors import CorruptionDetected, FormatError

CHECK_EVERY_CALLS = 64


class NodePages:
    def __init__(self, device, data_start_sector: int, sectors_per_block: int, cache_bytes: int,
                 table: dict[int, tuple[int, int, int]], allocator: BlockAllocator, next_node_id: int,
                 in_place: bool = False):
        self.device = device
        self.data_start_sector = data_start_sector
        self.sectors_per_block = sectors_per_block
        self.cache_bytes = cache_bytes
        self.table = table
        self.allocator = allocator
        self.next_node_id = next_node_id
        self.in_place = in_place          # seeded bug node-written-in-place
        self.cache: OrderedDict[int, Leaf | Internal] = OrderedDict()
        self.leaf_order: OrderedDict[int, None] = OrderedDict()   # the cached leaves, least recently used first
        self.dirty: set[int] = set()
        self.bytes_read = 0
        self.bytes_written = 0
        self._grown = False          # a node entered the cache since the last bound check
        self._calls_unchecked = 0    # operations since the last bound check
        self._total = 0              # the cached nodes' bytes, when `_total_exact`
        self._total_exact = True     # no node changed since `_total` was counted (loads and evictions keep it)

    def sector_of(self, block: int) -> int:
        return self.data_start_sector + block * self.sectors_per_block

    # -- what the tree uses --
    def get(self, node_id: int) -> Leaf | Internal:
        node = self.cache.get(node_id)
        if node is not None:
            self.cache.move_to_end(node_id)
            if node.is_leaf:
                self.leaf_order.move_to_end(node_id)
            return node
        node = self._load(node_id)
        self._insert(node_id, node)
        self._total += node.size
        return node

    def modified(self, node_id: int) -> None:
        assert node_id in self.cache, node_id
        self.dirty.add(node_id)
        self._total_exact = False

    def create(self, node: Leaf | Internal) -> int:
        node_id = self.next_node_id
        self.next_node_id += 1
        self._insert(node_id, node)
        self.dirty.add(node_id)
        self._grown = True
        self._total_exact = False
        return node_id

    def adopt(self, node_id: int, node: Leaf | Internal) -> None:
        """Cache a new node under a given id, dirty (the empty root of a new store)."""
        self._insert(node_id, node)
        self.modified(node_id)

    def _insert(self, node_id: int, node: Leaf | Internal) -> None:
        self.cache[node_id] = node
        if node.is_leaf:
            self.leaf_order[node_id] = None
        self._grown = True

    def _forget(self, node_id: int) -> Leaf | Internal | None:
        self.leaf_order.pop(node_id, None)
        return self.cache.pop(node_id, None)

    def drop(self, node_id: int) -> None:
        self._total_exact = False
        self._forget(node_id)
        self.dirty.discard(node_id)
        entry = self.table.pop(node_id, None)
        if entry is not None:
            self.allocator.release(entry[0])

    def relieve(self) -> None:
        """Drop clean nodes, least recently used first, while the cache is over its bound (no I/O)."""
        self._shrink(lambda node_id, node: node_id not in self.dirty, write_dirty=False)

    def evict(self, root_id: int) -> None:
        """Bring the cache within its bound: drop clean nodes, then write back dirty ones (LRU first)."""
        self._shrink(lambda node_id, node: node_id != root_id, write_dirty=True)

    def _shrink(self, eligible, write_dirty: bool) -> None:
        if not self._due():
            return
        total = self._cached_bytes()
        if total <= self.cache_bytes:
            return
        for leaves_only in (True, False):       # internal nodes are on every path: keep them longest
            for node_id in self._victims(total, eligible, leaves_only):
                if write_dirty and node_id in self.dirty:
                    self.device.wait(self.write_back(node_id))
                total -= self._forget(node_id).size
            self._total = total
            if total <= self.cache_bytes:
                return

    def _victims(self, total: int, eligible, leaves_only: bool) -> list[int]:
        """Least recently used first, the eligible nodes to drop to bring `total` within the bound
        (stops as soon as it would be: a read that brought one node in drops about one). Leaves are
        looked for in their own LRU order: walking past the internal nodes (which may fill most of
        the cache) at every read would make each miss cost the whole cache."""
        victims = []
        cache = self.cache
        for node_id in (self.leaf_order if leaves_only else cache):
            if total <= self.cache_bytes:
                break
            node = cache[node_id]
            if eligible(node_id, node):
                victims.append(node_id)
                total -= node.size
        return victims

    # -- cache bound and write-back --
    def _due(self) -> bool:
        """Whether to check the bound now: a node entered the cache, or CHECK_EVERY_CALLS calls passed
        (between them only cached nodes grow, by one operation's message each)."""
        self._calls_unchecked += 1
        if not self._grown and self._calls_unchecked < CHECK_EVERY_CALLS:
            return False
        self._grown, self._calls_unchecked = False, 0
        return True

    def _cached_bytes(self) -> int:
        """The cached nodes' bytes: counted again only after a node changed (a read-only workload never
        sums the cache: loads add their size and evictions subtract it)."""
        if not self._total_exact:
            self._total = sum(node.size for node in self.cache.values())
            self._total_exact = True
        return self._total

    def write_back(self, node_id: int) -> int:
        """Write a dirty node to a new block (copy-on-write); returns the write's request id."""
        node = self.cache[node_id]
        if node.is_leaf:
            kind, payload = fmt.KIND_LEAF, node.raw if node.raw is not None else fmt.encode_leaf(node.keys,
                                                                                                 node.values)
        else:
            kind, payload = fmt.KIND_INTERNAL, fmt.encode_internal(node.children, node.pivots, node.buffer)
        assert len(payload) == node.size, (len(payload), node.size)
        old = self.table.get(node_id)
        block = old[0] if (self.in_place and old is not None) else self.allocator.allocate()
        data, crc = fmt.encode_block(kind, payload, self.sector_of(block), self.device.sector_size)
        assert len(data) <= self.sectors_per_block * self.device.sector_size
        request = self.device.submit_write(self.sector_of(block), data)
        self.bytes_written += len(data)
        self.table[node_id] = (block, len(data), crc)
        if old is not None and old[0] != block:
            self.allocator.release(old[0])
        self.dirty.discard(node_id)
        return request

    def _load(self, node_id: int) -> Leaf | Internal:
        entry = self.table.get(node_id)
        if entry is None:
            raise CorruptionDetected(self.data_start_sector, f"node {node_id} is referenced but not in the "
                                                             f"indirection table")
        block, length, expected_crc = entry
        sector = self.sector_of(block)
        size = self.device.sector_size
        data = self.device.read(sector, length // size)
        self.bytes_read += len(data)
        try:
            kind, payload, crc = fmt.decode_block(data, sector)
            if crc != expected_crc:
                raise FormatError("block is not the version the indirection table names (stale or lost write)")
            if kind == fmt.KIND_LEAF:
                fmt.check_leaf(payload)
                return Leaf.encoded(payload)
            if kind == fmt.KIND_INTERNAL:
                return Internal(*fmt.decode_internal(payload))
            raise FormatError(f"block of kind {kind} where node {node_id} should be")
        except FormatError as error:
            raise CorruptionDetected(sector, f"node {node_id}: {error}") from None
