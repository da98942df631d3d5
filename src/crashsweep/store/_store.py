"""BetreeStore: a crash-safe key-value store on any block device (or a real file).

Layout (sectors): 0 and 1 superblocks; then the journal ring (`journal_sectors`);
then blocks of `node_size_bytes` each, holding nodes and indirection-table
blocks. Formats: docs/format/.

- put / delete: into the tree (the root's buffer) and the in-memory journal.
- sync(): write the pending journal records as one block, flush, return. When
  the journal would pass `checkpoint_journal_share` of the ring, checkpoint instead.
- checkpoint: write every dirty node (copy-on-write), flush; write the
  indirection table to fresh blocks, flush; write the other superblock with a
  higher counter and the journal position it covers, flush. Only then are the
  blocks the previous checkpoint alone reached free, and the journal reclaimed.
  Checkpoints run to completion inside one call, so no node is edited while a
  checkpoint that references it is in flight (writeback-before-editing holds
  trivially).
- open (recovery): the newest valid superblock, its indirection table, then the
  journal replayed into the root's buffer in memory. Recovery writes nothing.

Events appended to `events` (the harness counts them as recovery paths):
"opened an empty device", "checkpoint N (superblock S)", "the other superblock
is older", "replayed N journal record(s)", "journal tail torn or lost".
"""

from __future__ import annotations

import os

from crashsweep.disk_model import BlockDevice, RealFileDevice
from crashsweep.store import _node_format as node_format
from crashsweep.store._allocator import BlockAllocator
from crashsweep.store._config import StoreConfig
from crashsweep.store._journal import JournalRing, is_zero_sector, read_journal, tombstone
from crashsweep.store._node_format import MESSAGE_DELETE, MESSAGE_PUT
from crashsweep.store._pages import NodePages
from crashsweep.store._superblock_format import (
    SUPERBLOCK_SECTORS, Superblock, decode_superblock, encode_superblock, table_blocks_max,
)
from crashsweep.store._table_format import decode_table_block, encode_table
from crashsweep.store._tree import Leaf, Tree
from crashsweep.store.errors import (
    CorruptionDetected, EntryTooLargeError, FormatError, StoreConfigError, StoreError, StoreFullError,
)

def _zero_superblock_allowed(superblock: Superblock, address: int) -> bool:
    """May the other superblock sector be zero beside this valid one? Only as a crash inside the first
    checkpoint (version 2), or in a version-1 store (which wrote one sector at its first checkpoint)."""
    return superblock.version == 1 or (address == SUPERBLOCK_SECTORS[0] and superblock.counter == 1)


ROOT_ID_EMPTY = 0
JOURNAL_START_SEQ = 1


class BetreeStore:
    """Example:

        >>> from crashsweep.disk_model import MemoryBlockDevice
        >>> store = BetreeStore(MemoryBlockDevice(4096, 128), StoreConfig(node_size_bytes=8192, fanout=4,
        ...                     cache_bytes=65536, journal_sectors=16))
        >>> store.put(b"k", b"v"); store.sync(); store.get(b"k")
        b'v'
    """

    def __init__(self, device: BlockDevice, config: StoreConfig | None = None, events: list | None = None):
        config = (config or StoreConfig()).validate(device.sector_size)
        self.device = device
        self.events = events if events is not None else []
        self.bug = config.bug
        superblock, self._counter = self._read_superblocks(config)
        if superblock is not None:
            config = config.with_values(node_size_bytes=superblock.node_size_bytes,
                                        journal_sectors=superblock.journal_sectors).validate(device.sector_size)
        self.config = config
        size = device.sector_size
        self._sectors_per_block = config.node_size_bytes // size
        self._journal_first = len(SUPERBLOCK_SECTORS)
        self._data_start = self._journal_first + config.journal_sectors
        self.block_count = (device.sector_count - self._data_start) // self._sectors_per_block
        if self.block_count < 4:
            raise StoreConfigError(f"the device ({device.sector_count} sectors) is too small for this "
                                   f"configuration (needs {config.sectors_needed(size)} sectors)")
        if superblock is not None and superblock.block_count != self.block_count:
            raise StoreConfigError(f"the store was made for {superblock.block_count} blocks, the device holds "
                                   f"{self.block_count}")
        if superblock is None:
            table, table_refs, root_id, next_id = {}, (), ROOT_ID_EMPTY, ROOT_ID_EMPTY + 1
            start_seq, start_pos = JOURNAL_START_SEQ, 0
        else:
            table_refs = superblock.table_blocks
            table = self._read_table(superblock)
            root_id, next_id = superblock.root_id, superblock.next_node_id
            start_seq, start_pos = superblock.journal_start_seq, superblock.journal_start_pos
            if start_pos >= config.journal_sectors:
                raise CorruptionDetected(self._counter % 2, "superblock's journal position is outside the ring")
        durable = {block for block, _, _ in table.values()} | {block for block, _, _ in table_refs}
        if any(block >= self.block_count for block in durable):
            raise CorruptionDetected(0, "the indirection table names a block outside the device")
        self._table_blocks = [block for block, _, _ in table_refs]
        allocator = BlockAllocator(self.block_count, durable, reuse_before_durable=config.bug == "reuse-before-durable")
        self.pages = NodePages(device, self._data_start, self._sectors_per_block, config.cache_bytes, table, allocator,
                               next_id, in_place=config.bug == "node-written-in-place")
        if superblock is None:
            self.pages.adopt(root_id, Leaf())           # an empty root; written at the first checkpoint
        self.tree = Tree(self.pages, root_id, config.node_size_bytes, config.fanout)
        self._entry_bytes_max = self.tree.entry_bytes_max
        self.journal = JournalRing(device, self._journal_first, config.journal_sectors, start_seq, start_pos)
        self._replay(start_seq, start_pos)
        self._closed = False
        self._owns_device = False

    _unwritten_superblocks: list[int] = []

    # -- opening --
    def _read_superblocks(self, config: StoreConfig) -> tuple[Superblock | None, int]:
        candidates, damaged, zero = [], [], []
        for address in SUPERBLOCK_SECTORS:
            sector = self.device.read(address)
            if is_zero_sector(sector):
                zero.append(address)
                continue
            try:
                candidates.append((decode_superblock(sector, address), address))
            except FormatError as error:
                damaged.append((address, str(error)))
        if damaged:   # one sector is written whole or not at all: a bad superblock is damage, never a crash
            address, reason = damaged[0]
            raise CorruptionDetected(address, reason)
        self._unwritten_superblocks = list(zero)
        if not candidates:
            self.events.append("opened an empty device")
            return None, 0
        if zero and not _zero_superblock_allowed(candidates[0][0], candidates[0][1]):
            # Version 2 writes both sectors at the first checkpoint, sector 0 first: the only crash state with
            # one zero sector is sector 0 holding checkpoint 1. Any other zero sector once held a superblock.
            raise CorruptionDetected(zero[0], "superblock sector is zero, but the other superblock shows it was "
                                              "written (a lost or zeroed superblock)")
        if self.bug == "superblock-counter-ignored":
            superblock, address = min(candidates, key=lambda item: item[1])
        else:
            superblock, address = max(candidates, key=lambda item: item[0].counter)
        if superblock.sector_size != self.device.sector_size:
            raise StoreConfigError(f"the store was made with {superblock.sector_size}-byte sectors, the device "
                                   f"has {self.device.sector_size}")
        self.events.append(f"loaded checkpoint from superblock {address}"
                           + (" (the other superblock is older)" if len(candidates) == 2 else ""))
        return superblock, superblock.counter

    def _read_table(self, superblock: Superblock) -> dict[int, tuple[int, int, int]]:
        table: dict[int, tuple[int, int, int]] = {}
        size = self.device.sector_size
        for block, length, expected_crc in superblock.table_blocks:
            sector = self._data_start + block * self._sectors_per_block
            if block >= self.block_count or length % size or not 0 < length <= self.config.node_size_bytes:
                raise CorruptionDetected(sector, "superblock names an impossible table block")
            try:
                kind, payload, crc = node_format.decode_block(self.device.read(sector, length // size), sector)
                if crc != expected_crc or kind != node_format.KIND_TABLE:
                    raise FormatError("not the table block the superblock names")
                part = decode_table_block(payload)
            except FormatError as error:
                raise CorruptionDetected(sector, f"indirection table: {error}") from None
            table.update(part)
        if len(table) != superblock.table_entries or superblock.root_id not in table:
            raise CorruptionDetected(self._data_start, "indirection table does not match its superblock")
        return table

    def _replay(self, start_seq: int, start_pos: int) -> None:
        records, seq, pos, live = read_journal(
            self.device, self._journal_first, self.config.journal_sectors, start_seq, start_pos,
            verify=self.bug != "journal-no-checksum",
            from_oldest=self.bug == "journal-replay-wrong-start", checkpointed=self._counter > 0)
        for kind, key, value in records:
            self.tree.replay(kind, key, value)
        self.journal.next_seq, self.journal.write_pos, self.journal.live_sectors = seq, pos, live
        if records:
            self.events.append(f"replayed {seq - start_seq} journal block(s)")

    # -- the key-value interface --
    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        value = self.tree.get(bytes(key))
        self.pages.relieve()
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self._check_open()
        key, value = bytes(key), bytes(value)
        self._check_entry(key, value)
        self.tree.put(key, value)
        self.journal.append(MESSAGE_PUT, key, value)
        self.pages.evict(self.tree.root_id)

    def delete(self, key: bytes) -> None:
        self._check_open()
        key = bytes(key)
        self._check_entry(key, b"")
        self.tree.delete(key)
        self.journal.append(MESSAGE_DELETE, key, b"")
        self.pages.evict(self.tree.root_id)

    def scan(self, start: bytes | None = None, end: bytes | None = None) -> list[tuple[bytes, bytes]]:
        """Sorted (key, value) pairs with start <= key < end; None leaves a side unbounded."""
        self._check_open()
        result = self.tree.scan(start, end)
        self.pages.relieve()
        return result

    def items(self) -> list[tuple[bytes, bytes]]:
        return self.scan(None, None)

    def sync(self) -> None:
        """Returns once every operation before it is durable."""
        self._check_open()
        if not self.journal.pending and not self.journal.overflowed:
            return
        placement = None if self.journal.overflowed else self.journal.placement()
        if self.bug == "journal-space-unchecked" and not self.journal.overflowed:
            self.journal.live_sectors = 0           # the bug: live journal sectors are not protected
            placement = self.journal.placement()
        elif placement is None or (self.journal.live_sectors + placement[1]
                                   > self.config.checkpoint_journal_share * self.config.journal_sectors):
            self.checkpoint()
            return
        requests = self.journal.write_pending()
        if self.bug == "sync-before-journal-durable":
            return
        self.device.wait_all(requests)
        self.device.flush()

    def compact(self) -> None:
        """Push every buffered message down to the leaves (deletes shrink the tree); durable at the next sync."""
        self._check_open()
        self.tree.compact()
        self.pages.evict(self.tree.root_id)

    def checkpoint(self) -> None:
        """Make the whole tree durable and reclaim the journal (see the module docstring)."""
        self._check_open()
        self.tree.restore_bounds()
        barrier = self.bug != "no-flush-before-superblock"
        dirty = sorted(self.pages.dirty)
        if self.bug == "checkpoint-forgets-new-nodes":
            dirty = [node_id for node_id in dirty if node_id in self.pages.table or node_id == self.tree.root_id]
        requests = [self.pages.write_back(node_id) for node_id in dirty]
        self.device.wait_all(requests)
        if barrier:
            self.device.flush()
        table = dict(self.pages.table)
        if self.bug == "checkpoint-forgets-new-nodes":
            self.pages.dirty.clear()
        payloads = encode_table(table, self.config.node_size_bytes)
        if len(payloads) > table_blocks_max(self.device.sector_size):
            raise StoreFullError(f"the indirection table needs {len(payloads)} blocks, more than a superblock lists")
        old_table_blocks, refs, requests = self._table_blocks, [], []
        for payload in payloads:
            block = self.pages.allocator.allocate()
            sector = self._data_start + block * self._sectors_per_block
            data, crc = node_format.encode_block(node_format.KIND_TABLE, payload, sector, self.device.sector_size)
            requests.append(self.device.submit_write(sector, data))
            refs.append((block, len(data), crc))
        self.device.wait_all(requests)
        if barrier:
            self.device.flush()
        first = self._counter == 0
        if first and self.journal.write_pos == 0:    # position 0 will hold the tombstone: the journal goes on after it
            self.journal.write_pos, self.journal.next_seq = 1, max(self.journal.next_seq, JOURNAL_START_SEQ + 1)
        self._counter += 1
        superblock = Superblock(self._counter, self.journal.next_seq, self.journal.write_pos, self.tree.root_id,
                                self.pages.next_node_id, self.device.sector_size, self.config.node_size_bytes,
                                self.config.journal_sectors, self.block_count, len(table), tuple(refs))
        address = SUPERBLOCK_SECTORS[self._counter % 2]
        for unwritten in sorted(set(self._unwritten_superblocks) - {address}):   # no superblock sector stays zero
            self.device.write(unwritten, encode_superblock(superblock, unwritten))
            self.device.flush()
        self.device.write(address, encode_superblock(superblock, address))
        self.device.flush()
        self._unwritten_superblocks = []
        if first:   # from now on a store without a valid superblock is damaged, never new (docs/format/journal.md)
            self.device.write(self._journal_first, tombstone(self._journal_first, self.device.sector_size))
            self.device.flush()
        for block in old_table_blocks:
            self.pages.allocator.release(block)
        self._table_blocks = [block for block, _, _ in refs]
        self.pages.allocator.checkpointed({block for block, _, _ in table.values()} | set(self._table_blocks))
        self.journal.reclaim()

    def close(self) -> None:
        """Sync and release the device. A closed store refuses further calls."""
        if self._closed:
            return
        self.sync()
        self._closed = True
        if self._owns_device:
            self.device.close()

    def __enter__(self) -> "BetreeStore":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._closed = True
            if self._owns_device:
                self.device.close()

    # -- helpers --
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _check_entry(self, key: bytes, value: bytes) -> None:
        if len(key) > self.tree.key_bytes_max:
            raise EntryTooLargeError(f"key of {len(key)} bytes is longer than {self.tree.key_bytes_max} (node size "
                                     f"{self.config.node_size_bytes}, fanout {self.config.fanout})")
        if len(key) + len(value) > self._entry_bytes_max:
            raise EntryTooLargeError(f"key and value of {len(key) + len(value)} bytes exceed "
                                     f"{self._entry_bytes_max} (about half a {self.config.node_size_bytes}-byte node)")

    def stats(self) -> dict:
        """I/O and cache counters, for benchmarks."""
        return {"bytes_written": self.pages.bytes_written + self.journal.bytes_written,
                "bytes_read": self.pages.bytes_read, "cached_nodes": len(self.pages.cache),
                "checkpoints": self._counter, "free_blocks": self.pages.allocator.free_count}


def open_file(path: str, size_bytes: int | None = None, config: StoreConfig | None = None,
              sector_size: int = 4096) -> BetreeStore:
    """Open the store in the file at `path`, creating a file of `size_bytes` if there is none.

    Example: `with open_file("data.betree", 64 << 20) as store: store.put(b"k", b"v")`.
    """
    exists = os.path.exists(path)
    if exists:
        actual = os.path.getsize(path)
        if size_bytes is not None and size_bytes != actual:
            raise StoreConfigError(f"{path} is {actual} bytes, not {size_bytes}")
        size_bytes = actual
    elif size_bytes is None:
        raise StoreConfigError(f"{path} does not exist: give size_bytes to create it")
    if size_bytes % sector_size or size_bytes <= 0:
        raise StoreConfigError(f"size_bytes ({size_bytes}) must be a positive multiple of the sector size "
                               f"({sector_size})")
    device = RealFileDevice(path, sector_size, size_bytes // sector_size)
    try:
        store = BetreeStore(device, config)
        store._owns_device = True
        return store
    except BaseException:
        device.close()
        raise
