"""The journal on disk: a ring of sectors holding one journal block per sync. Document: docs/format/journal.md.

A journal block is `count` consecutive sectors; every sector carries
JOURNAL_SECTOR (magic, block sequence number, index in the block, sectors in the
block, payload bytes used in this sector, CRC32C of the whole block's payload,
CRC32C of the sector's header and payload with its address mixed in). The
block CRC tells a complete block from a mix of two writes with the same
sequence number (a torn tail, then a new block written there after recovery). The block's payload (the sectors' used
bytes, concatenated) is a list of records: RECORD (kind, key length, value
length), key, value. Per-sector checksums and sequence numbers tell a torn block
(some sectors still hold an older lap of the ring) from a damaged one.
"""

from __future__ import annotations

import struct

import crc32c

from crashsweep.store._checksum import checksum
from crashsweep.store._node_format import MESSAGE_DELETE, MESSAGE_PUT
from crashsweep.store.errors import FormatError

JOURNAL_SECTOR = struct.Struct("<4sQHHIII")
RECORD = struct.Struct("<BHI")
assert JOURNAL_SECTOR.size == 28 and RECORD.size == 7

JOURNAL_MAGIC = b"CSJ1"
JOURNAL_BLOCK_SECTORS_MAX = 0xFFFF


def payload_per_sector(sector_size: int) -> int:
    return sector_size - JOURNAL_SECTOR.size


def encode_records(records: list[tuple[int, bytes, bytes]]) -> bytes:
    parts = []
    for kind, key, value in records:
        assert kind in (MESSAGE_PUT, MESSAGE_DELETE)
        parts += (RECORD.pack(kind, len(key), len(value)), key, value)
    return b"".join(parts)


def decode_records(payload: bytes) -> list[tuple[int, bytes, bytes]]:
    records, offset = [], 0
    while offset < len(payload):
        if offset + RECORD.size > len(payload):
            raise FormatError("journal record header runs past the block")
        kind, key_length, value_length = RECORD.unpack_from(payload, offset)
        offset += RECORD.size
        if kind not in (MESSAGE_PUT, MESSAGE_DELETE) or offset + key_length + value_length > len(payload):
            raise FormatError("journal record is malformed")
        key = payload[offset:offset + key_length]
        value = payload[offset + key_length:offset + key_length + value_length]
        offset += key_length + value_length
        records.append((kind, key, value))
    return records


def sectors_for(payload_bytes: int, sector_size: int) -> int:
    return max(1, -(-payload_bytes // payload_per_sector(sector_size)))


def encode_journal_block(payload: bytes, sequence: int, first_address: int, sector_size: int) -> bytes:
    """Whole sectors for one journal block starting at sector `first_address`."""
    per_sector = payload_per_sector(sector_size)
    count = sectors_for(len(payload), sector_size)
    assert count <= JOURNAL_BLOCK_SECTORS_MAX
    block_crc = crc32c.crc32c(payload)
    sectors = []
    for index in range(count):
        chunk = payload[index * per_sector:(index + 1) * per_sector]
        body = chunk + bytes(per_sector - len(chunk))
        head = JOURNAL_SECTOR.pack(JOURNAL_MAGIC, sequence, index, count, len(chunk), block_crc, 0)[:-4]
        crc = checksum(head + body, first_address + index)
        sectors.append(head + crc.to_bytes(4, "little") + body)
    return b"".join(sectors)


def decode_journal_sector(sector: bytes, address: int, verify: bool = True) -> tuple[int, int, int, int, bytes]:
    """(sequence, index, count, block CRC, used payload). Raises FormatError for anything but a valid
    journal sector.

    `verify=False` exists only for the seeded bug `journal-no-checksum`.
    """
    magic, sequence, index, count, used, block_crc, crc = JOURNAL_SECTOR.unpack_from(sector)
    if magic != JOURNAL_MAGIC:
        raise FormatError("not a journal sector (bad magic)")
    body = sector[JOURNAL_SECTOR.size:]
    if verify and checksum(sector[:JOURNAL_SECTOR.size - 4] + body, address) != crc:
        raise FormatError("journal sector checksum mismatch")
    if index >= count or used > len(body):
        raise FormatError("journal sector header is inconsistent")
    return sequence, index, count, block_crc, body[:used]


def block_checksum(payload: bytes) -> int:
    return crc32c.crc32c(payload)
