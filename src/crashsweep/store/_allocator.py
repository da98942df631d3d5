"""Which blocks are free: a block is reused only once no durable checkpoint can reach it.

Three sets of blocks: those the durable checkpoint references (its nodes and its
table blocks), those the in-memory indirection table references (written since),
and the free ones. Releasing a block the durable checkpoint references only
marks it; it becomes free when the next checkpoint is durable (`checkpointed`).
Allocation takes the lowest free block, so layouts are deterministic.

Invariants: durable ∩ free = ∅ and current ∩ free = ∅ (unless the seeded bug
`reuse-before-durable` is on).
"""

from __future__ import annotations

import heapq

from crashsweep.store.errors import StoreFullError


class BlockAllocator:
    """Example: `allocator = BlockAllocator(64, durable=set()); block = allocator.allocate()`."""

    def __init__(self, block_count: int, durable: set[int], reuse_before_durable: bool = False):
        self.block_count = block_count
        self.durable = set(durable)
        self.current: set[int] = set(durable)
        self.reuse_before_durable = reuse_before_durable
        self._free = [block for block in range(block_count) if block not in self.durable]
        heapq.heapify(self._free)
        self._free_set = set(self._free)

    @property
    def free_count(self) -> int:
        return len(self._free)

    def allocate(self) -> int:
        if not self._free:
            raise StoreFullError(f"no free block among {self.block_count} (the device is too small for the data)")
        block = heapq.heappop(self._free)
        self._free_set.discard(block)
        self.current.add(block)
        assert self.reuse_before_durable or block not in self.durable
        return block

    def release(self, block: int) -> None:
        """`block` is no longer referenced by the in-memory state."""
        assert block in self.current, block
        self.current.discard(block)
        if block not in self.durable or self.reuse_before_durable:
            self._make_free(block)

    def checkpointed(self, durable: set[int]) -> None:
        """A checkpoint referencing exactly `durable` is now durable: free what only the old one reached."""
        assert durable <= self.current, sorted(durable - self.current)[:5]
        for block in self.durable - durable:
            if block not in self.current:
                self._make_free(block)
        self.durable = set(durable)

    def _make_free(self, block: int) -> None:
        if block not in self._free_set:
            heapq.heappush(self._free, block)
            self._free_set.add(block)
