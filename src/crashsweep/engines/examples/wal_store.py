"""A small, correct block-level store: write-ahead log + checkpoints, per-sector checksums.

It keeps the whole map in memory. `sync()` appends one log block (every record
since the last sync) and flushes. Every `checkpoint_every_syncs` syncs, or when
the log is full, it writes the whole map to the checkpoint area the durable
superblock does not point to, flushes, then writes the other superblock with a
higher counter and a new log epoch, and flushes again. Recovery loads the newest
valid superblock, its checkpoint, and replays log blocks of that epoch in order;
it writes nothing.

Damage is refused, never returned: a sector that is neither valid nor zero, a
damaged superblock or checkpoint, or a gap in the log before a later valid
block raises `CorruptionDetected(address, reason)`. A torn or lost tail block
(some of its sectors stale or zero, nothing valid after it) is the end of the log.

Each name in `WAL_BUGS` switches on one classic bug, for measuring the harness.
The format is in `wal_format.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crashsweep.disk_model import BlockDevice, DeviceIOError
from crashsweep.engines.examples import wal_format as fmt

WAL_BUGS = {
    "sync-without-flush": "sync() returns after writing the log block but before flushing it",
    "no-barrier-before-superblock": "a checkpoint writes its data and the new superblock with no flush between",
    "superblock-before-checkpoint": "a checkpoint writes (and flushes) the new superblock before its data",
    "no-log-checksum": "recovery replays log sectors without verifying their checksums",
    "checkpoint-in-place": "a checkpoint overwrites the area the durable superblock points to",
    "superblock-ignores-counter": "recovery takes superblock 0 whenever it is valid, newest or not",
    "log-epoch-unchecked": "recovery replays log blocks left over from before the last checkpoint",
    "open-checkpoint-no-barrier": "checkpoints the replayed log while opening, with no flush before its "
                                  "superblock (found only by crashing during recovery)",
}
READ_ATTEMPTS_MAX = 2


class CorruptionDetected(Exception):
    """Durable data is damaged; the store refuses to return anything from it."""

    def __init__(self, address: int, reason: str):
        super().__init__(f"corruption detected at sector {address}: {reason}")
        self.address = address
        self.reason = reason


@dataclass(frozen=True)
class WalConfig:
    """Layout and behaviour. Requires: the device holds 2 + 2 * checkpoint_sectors + log_sectors sectors."""

    checkpoint_sectors: int = 32
    log_sectors: int = 32
    checkpoint_every_syncs: int = 4
    checkpoint_on_open: bool = False   # fold a replayed log into a fresh checkpoint while opening
    bug: str | None = None

    def __post_init__(self) -> None:
        if self.bug is not None and self.bug not in WAL_BUGS:
            raise ValueError(f"unknown bug {self.bug!r} (known: {', '.join(WAL_BUGS)})")
        for name in ("checkpoint_sectors", "log_sectors", "checkpoint_every_syncs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def sectors_needed(self) -> int:
        return 2 + 2 * self.checkpoint_sectors + self.log_sectors


class WalStore:
    """Example: `store = WalStore(MemoryBlockDevice(512, 256)); store.put(b"k", b"v"); store.sync()`."""

    def __init__(self, device: BlockDevice, config: WalConfig | None = None, events=None):
        self.device = device
        self.config = config or WalConfig()
        self.events = events if events is not None else []   # recovery paths taken, for reports
        if device.sector_count < self.config.sectors_needed():
            raise ValueError(f"device has {device.sector_count} sectors, the store needs "
                             f"{self.config.sectors_needed()}")
        self.log_start = 2 + 2 * self.config.checkpoint_sectors
        self.zero_sector = bytes(device.sector_size)
        self.map: dict[bytes, bytes] = {}
        self.pending: list[tuple[int, bytes, bytes]] = []
        self._open()

    def _has(self, bug: str) -> bool:
        return self.config.bug == bug

    # ---- public API ----
    def put(self, key: bytes, value: bytes) -> None:
        self.map[key] = value
        self.pending.append((fmt.RECORD_PUT, key, value))

    def delete(self, key: bytes) -> None:
        self.map.pop(key, None)
        self.pending.append((fmt.RECORD_DELETE, key, b""))

    def get(self, key: bytes) -> bytes | None:
        return self.map.get(key)

    def items(self):
        return sorted(self.map.items())

    def sync(self) -> None:
        if not self.pending:
            return
        block_sectors = len(fmt.encode_log_block(self.device.sector_size, 0, 0, 0,
                                                 fmt.encode_records(self.pending))) // self.device.sector_size
        full = self.log_tail + block_sectors > self.config.log_sectors
        if full or self.syncs_since_checkpoint + 1 >= self.config.checkpoint_every_syncs:
            self._checkpoint()
            return
        address = self.log_start + self.log_tail
        data = fmt.encode_log_block(self.device.sector_size, address, self.epoch, self.sequence,
                                    fmt.encode_records(self.pending))
        self.device.write(address, data)
        if not self._has("sync-without-flush"):
            self.device.flush()
        self.log_tail += block_sectors
        self.sequence += 1
        self.syncs_since_checkpoint += 1
        self.pending = []

    def close(self) -> None:
        self.device.close()

    # ---- checkpoint ----
    def _checkpoint(self, during_open: bool = False) -> None:
        size = self.device.sector_size
        area = self.area if self._has("checkpoint-in-place") else 1 - self.area
        address = self._area_address(area)
        data = fmt.encode_checkpoint(size, address, self.map)
        if len(data) > self.config.checkpoint_sectors * size:
            raise ValueError("store is full: the map no longer fits in a checkpoint area")
        counter, epoch = self.counter + 1, self.epoch + 1
        slot = counter % 2
        superblock = fmt.encode_superblock(size, slot, counter, area, epoch)
        if self._has("superblock-before-checkpoint"):   # the commit record goes first: wrong
            self.device.write(slot, superblock)
            self.device.flush()
        chunk = 4 * size   # several requests in flight, so the device may reorder them
        requests = [self.device.submit_write(address + start // size, data[start:start + chunk])
                    for start in range(0, len(data), chunk)]
        self.device.wait_all(requests)
        skip_barrier = self._has("no-barrier-before-superblock") or (
            during_open and self._has("open-checkpoint-no-barrier"))
        if not skip_barrier:
            self.device.flush()
        if not self._has("superblock-before-checkpoint"):
            self.device.write(slot, superblock)
        self.device.flush()
        self.counter, self.area, self.epoch = counter, area, epoch
        self.log_tail, self.sequence, self.syncs_since_checkpoint = 0, 0, 0
        self.pending = []

    def _area_address(self, area: int) -> int:
        return 2 + area * self.config.checkpoint_sectors

    # ---- recovery ----
    def _read(self, sector: int, count: int = 1) -> bytes:
        for attempt in range(READ_ATTEMPTS_MAX):
            try:
                return self.device.read(sector, count)
            except DeviceIOError:
                if attempt + 1 == READ_ATTEMPTS_MAX:
                    raise
                self.events.append("read retried after I/O error")
        raise AssertionError("unreachable")

    def _open(self) -> None:
        superblocks = []
        for slot in (0, 1):
            data = self._read(slot)
            try:
                superblocks.append((fmt.decode_superblock(data, slot), slot))
            except fmt.FormatError as error:
                if data != self.zero_sector:
                    raise CorruptionDetected(slot, str(error)) from None
        if not superblocks:
            self._format()
            return
        if self._has("superblock-ignores-counter"):
            (counter, area, epoch), slot = superblocks[0]
        else:
            (counter, area, epoch), slot = max(superblocks)
        if len(superblocks) == 2 and slot != max(superblocks)[1]:
            self.events.append("used the older superblock")
        self.counter, self.area, self.epoch = counter, area, epoch
        self.map = self._load_checkpoint(area)
        self._replay()
        checkpoint_on_open = self.config.checkpoint_on_open or self._has("open-checkpoint-no-barrier")
        if checkpoint_on_open and self.sequence:
            self.events.append("checkpointed the replayed log while opening")
            self._checkpoint(during_open=True)

    def _format(self) -> None:
        self.events.append("formatted an empty device")
        size = self.device.sector_size
        self.device.write(self._area_address(0), fmt.encode_checkpoint(size, self._area_address(0), {}))
        self.device.flush()
        self.device.write(1, fmt.encode_superblock(size, 1, 1, 0, 1))
        self.device.flush()
        self.counter, self.area, self.epoch = 1, 0, 1
        self.log_tail, self.sequence, self.syncs_since_checkpoint = 0, 0, 0

    def _load_checkpoint(self, area: int) -> dict[bytes, bytes]:
        address = self._area_address(area)
        first = self._read(address)
        try:
            length = fmt.checkpoint_length(first)
            sectors = -(-length // self.device.sector_size)
            if sectors > self.config.checkpoint_sectors:
                raise fmt.FormatError("checkpoint longer than its area")
            data = first if sectors == 1 else self._read(address, sectors)
            return fmt.decode_checkpoint(data, address)
        except fmt.FormatError as error:
            raise CorruptionDetected(address, str(error)) from None

    def _replay(self) -> None:
        self.log_tail, self.sequence, self.syncs_since_checkpoint = 0, 0, 0
        while self.log_tail < self.config.log_sectors:
            records = self._read_block(self.log_start + self.log_tail)
            if records is None:
                break
            block_sectors, payload = records
            for operation, key, value in fmt.decode_records(payload):
                if operation == fmt.RECORD_PUT:
                    self.map[key] = value
                else:
                    self.map.pop(key, None)
            self.log_tail += block_sectors
            self.sequence += 1
            self.syncs_since_checkpoint += 1
        if self.sequence:
            self.events.append(f"replayed {self.sequence} log block(s)")
        self._check_nothing_after_tail()

    def _valid_log_sector(self, address: int) -> tuple[int, int, int, int, bytes] | None:
        """A decoded log sector, None for a never-written (zero) one; damage raises.

        The log area only ever holds zeros or log sectors (of this or an older epoch),
        so anything else there — a bad checksum, or foreign bytes such as a misdirected
        checkpoint write — is damage, never the end of the log.
        """
        data = self._read(address)
        verify = not self._has("no-log-checksum")
        try:
            return fmt.decode_log_sector(data, address, verify)
        except fmt.FormatError as error:
            if data == self.zero_sector:
                return None
            if self._has("no-log-checksum"):
                return None
            raise CorruptionDetected(address, str(error)) from None

    def _belongs(self, decoded, sequence: int) -> bool:
        epoch_ok = self._has("log-epoch-unchecked") or decoded[0] == self.epoch
        return epoch_ok and decoded[1] == sequence

    def _read_block(self, address: int) -> tuple[int, bytes] | None:
        first = self._valid_log_sector(address)
        if first is None or not self._belongs(first, self.sequence) or first[2] != 0:
            return None
        count = first[3]
        if self.log_tail + count > self.config.log_sectors:
            return None
        payload = [first[4]]
        for index in range(1, count):
            decoded = self._valid_log_sector(address + index)
            if decoded is None or not self._belongs(decoded, self.sequence) or decoded[2] != index:
                if self._has("no-log-checksum"):
                    payload.append(self._read(address + index)[fmt.LOG_SECTOR.size:])
                    continue
                self.events.append("torn log block at the tail ignored")
                return None
            payload.append(decoded[4])
        return count, b"".join(payload)

    def _check_nothing_after_tail(self) -> None:
        """A valid block of this epoch beyond the tail means a durable block was damaged or lost."""
        if self._has("no-log-checksum") or self._has("log-epoch-unchecked"):
            return
        for offset in range(self.log_tail + 1, self.config.log_sectors):
            decoded = self._valid_log_sector(self.log_start + offset)
            if decoded is not None and decoded[0] == self.epoch and decoded[1] > self.sequence:
                raise CorruptionDetected(self.log_start + self.log_tail,
                                         f"log block {self.sequence} is damaged but block {decoded[1]} follows it")
