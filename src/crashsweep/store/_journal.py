"""The logical journal: records of every mutation since the last sync, and the ring they go to.

`sync()` writes every pending record as one journal block at the ring's write
position (wrapping to the ring's start when the block does not fit before its
end) and the caller flushes. The live part of the ring runs from the durable
checkpoint's start position to the write position; a block never overwrites a
live sector. A checkpoint reclaims the whole live part (`reclaim`).

Reading (recovery) starts where the superblock says and takes blocks while they
are whole, in sequence order. A torn or lost tail ends the journal. Damage is
refused: a sector that fails its checksum where the next block would start or
inside a block, or any sector of a later block still on the ring (so the one
that ended the journal was durable once).

Invariants: sequence numbers of blocks on the ring are unique; live_sectors <= ring_sectors.
"""

from __future__ import annotations

from crashsweep.store import _journal_format as fmt
from crashsweep.store.errors import CorruptionDetected, FormatError


TOMBSTONE_SEQ = 0     # an empty block with this sequence number marks a store that has had a checkpoint


def tombstone(first_sector: int, sector_size: int) -> bytes:
    """The sector written at the ring's position 0 once the first checkpoint is durable (journal.md)."""
    return fmt.encode_journal_block(b"", TOMBSTONE_SEQ, first_sector, sector_size)


class JournalRing:
    def __init__(self, device, first_sector: int, ring_sectors: int, start_seq: int, start_pos: int):
        assert 0 <= start_pos < ring_sectors
        self.device, self.first_sector, self.ring_sectors = device, first_sector, ring_sectors
        self.next_seq, self.write_pos, self.live_sectors = start_seq, start_pos, 0
        self.pending: list[tuple[int, bytes, bytes]] = []
        self.pending_bytes = 0
        self.overflowed = False          # pending records outgrew the ring: the next sync must checkpoint
        self.bytes_written = 0

    # -- writing --
    def append(self, kind: int, key: bytes, value: bytes) -> None:
        if self.overflowed:
            return
        self.pending.append((kind, key, value))
        self.pending_bytes += fmt.RECORD.size + len(key) + len(value)
        if fmt.sectors_for(self.pending_bytes, self.device.sector_size) > self.ring_sectors // 2:
            self.overflowed, self.pending, self.pending_bytes = True, [], 0

    def placement(self) -> tuple[int, int] | None:
        """(position, sectors it uses including a skipped tail) for the pending block, or None if no room."""
        count = fmt.sectors_for(self.pending_bytes, self.device.sector_size)
        if self.write_pos + count <= self.ring_sectors:
            position, used = self.write_pos, count
        else:
            position, used = 0, self.ring_sectors - self.write_pos + count
        if self.live_sectors + used > self.ring_sectors:
            return None
        return position, used

    def write_pending(self) -> list[int]:
        """Submit the pending block; returns the write request ids. Requires: placement() is not None."""
        position, used = self.placement()
        payload = fmt.encode_records(self.pending)
        data = fmt.encode_journal_block(payload, self.next_seq, self.first_sector + position,
                                        self.device.sector_size)
        request = self.device.submit_write(self.first_sector + position, data)
        self.bytes_written += len(data)
        self.next_seq += 1
        self.write_pos = (position + len(data) // self.device.sector_size) % self.ring_sectors
        self.live_sectors += used
        self.pending, self.pending_bytes = [], 0
        return [request]

    def usage(self) -> float:
        return self.live_sectors / self.ring_sectors

    def reclaim(self) -> None:
        """A durable checkpoint covers everything written so far: the live part starts at the write position."""
        self.live_sectors = 0
        self.pending, self.pending_bytes, self.overflowed = [], 0, False


def read_journal(device, first_sector: int, ring_sectors: int, start_seq: int, start_pos: int,
                 verify: bool = True, from_oldest: bool = False, checkpointed: bool = True):
    """(records in order, next sequence number, write position, live sectors). Raises CorruptionDetected.

    `checkpointed=False` (no valid superblock): a checkpoint tombstone on the ring proves a checkpoint was
    durable once, so its superblocks were lost or damaged: refused.
    `from_oldest` exists only for the seeded bug `journal-replay-wrong-start`.
    """
    size = device.sector_size
    ring = device.read(first_sector, ring_sectors)
    sectors = [_decode(ring[i * size:(i + 1) * size], first_sector + i, verify)
               for i in range(ring_sectors)]
    if not checkpointed:
        tombstones = [i for i, info in enumerate(sectors) if isinstance(info, tuple) and info[0] == TOMBSTONE_SEQ]
        if tombstones:
            raise CorruptionDetected(first_sector + tombstones[0], "the journal shows a durable checkpoint, but "
                                                                   "no superblock is valid (both lost or damaged)")
    if from_oldest:
        valid = [(info[0], i) for i, info in enumerate(sectors)
                 if isinstance(info, tuple) and info[1] == 0 and info[0] != TOMBSTONE_SEQ]
        if valid:
            start_seq, start_pos = min(valid)
    records, seq, pos, live = [], start_seq, start_pos, 0
    while live < ring_sectors:
        found = None
        for position in ((pos, 0) if pos != 0 else (0,)):
            info = sectors[position]
            if isinstance(info, tuple) and info[0] == seq and info[1] == 0:
                found = position
                break
        if found is None:
            _refuse_if_damaged(sectors, (pos, 0), seq, first_sector)
            break
        count, block_crc = sectors[found][2], sectors[found][3]
        used = count if found == pos else ring_sectors - pos + count
        if found + count > ring_sectors or live + used > ring_sectors:
            raise CorruptionDetected(first_sector + found, f"journal block {seq} claims {count} sectors, "
                                                           f"more than the ring holds")
        block = sectors[found:found + count]
        if not all(isinstance(info, tuple) and info[0] == seq and info[1] == index and info[2] == count
                   for index, info in enumerate(block)):
            _refuse_if_damaged(sectors, range(found, found + count), seq, first_sector)
            break                                            # torn: the end of the journal
        payload = b"".join(info[4] for info in block)
        if fmt.block_checksum(payload) != block_crc:
            break                                            # two writes of this sequence number mixed: torn
        try:
            records.extend(fmt.decode_records(payload))
        except FormatError as error:
            raise CorruptionDetected(first_sector + found, f"journal block {seq}: {error}") from None
        seq, pos, live = seq + 1, (found + count) % ring_sectors, live + used
    later = [i for i, info in enumerate(sectors) if isinstance(info, tuple) and info[0] > seq]
    if later:
        raise CorruptionDetected(first_sector + later[0], f"journal block {sectors[later[0]][0]} follows a "
                                                          f"missing or damaged block {seq}")
    return records, seq, pos, live


_ZERO_SECTORS: dict[int, bytes] = {}


def is_zero_sector(sector: bytes) -> bool:
    """True for an all-zero sector (one comparison with zeros: memcmp, not a byte-by-byte `any`)."""
    zeros = _ZERO_SECTORS.get(len(sector))
    if zeros is None:
        zeros = _ZERO_SECTORS[len(sector)] = bytes(len(sector))
    return sector == zeros


def _decode(sector: bytes, address: int, verify: bool):
    """The sector's (seq, index, count, block CRC, payload), or "zero", or "stale" (not ours), or "damaged"."""
    if is_zero_sector(sector):
        return "zero"
    try:
        return fmt.decode_journal_sector(sector, address, verify)
    except FormatError:
        return "damaged"


def _refuse_if_damaged(sectors, positions, seq: int, first_sector: int) -> None:
    for position in positions:
        if sectors[position] == "damaged":
            raise CorruptionDetected(first_sector + position, f"journal sector fails its checksum where block "
                                                              f"{seq} would be")
