"""On-disk format of the example WAL store. Every structure names its own address in its CRC.

Layout (sectors): 0 and 1 superblocks (alternating), then checkpoint area A
and B (`checkpoint_sectors` each), then the log (`log_sectors`).

- Superblock (one sector): SUPERBLOCK = crc32c, magic, counter, checkpoint area,
  log epoch. The newest valid superblock (highest counter) wins.
- Checkpoint (one write of whole sectors): CHECKPOINT_HEADER = crc32c (over
  header + payload + address), magic, payload length; payload = records.
- Log block (one write of n sectors, one per sync): every sector carries
  LOG_SECTOR = crc32c (over the sector + address), magic, epoch, sequence,
  index in block, sectors in block, payload bytes in this sector; so a torn
  block (some sectors new, some stale) is told apart from a damaged one.
- Record: RECORD = operation (1 put, 2 delete), key length, value length; then
  key and value bytes.
"""

from __future__ import annotations

import struct

import crc32c

SUPERBLOCK = struct.Struct("<I8sQBQ")
CHECKPOINT_HEADER = struct.Struct("<I8sI")
LOG_SECTOR = struct.Struct("<I2sQQHHH")
RECORD = struct.Struct("<BII")
assert SUPERBLOCK.size == 29 and CHECKPOINT_HEADER.size == 16
assert LOG_SECTOR.size == 28 and RECORD.size == 9

SUPERBLOCK_MAGIC = b"CSWALSB1"
CHECKPOINT_MAGIC = b"CSWALCP1"
LOG_MAGIC = b"LB"
RECORD_PUT, RECORD_DELETE = 1, 2


class FormatError(Exception):
    """Bytes read from the device do not decode; the caller turns it into CorruptionDetected."""


def checksum(data: bytes, address: int) -> int:
    return crc32c.crc32c(data + address.to_bytes(8, "little"))


def encode_records(records: list[tuple[int, bytes, bytes]]) -> bytes:
    parts = []
    for operation, key, value in records:
        parts.append(RECORD.pack(operation, len(key), len(value)))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


def decode_records(payload: bytes) -> list[tuple[int, bytes, bytes]]:
    records, offset = [], 0
    while offset < len(payload):
        if offset + RECORD.size > len(payload):
            raise FormatError("record header runs past the payload")
        operation, key_length, value_length = RECORD.unpack_from(payload, offset)
        offset += RECORD.size
        end = offset + key_length + value_length
        if operation not in (RECORD_PUT, RECORD_DELETE) or end > len(payload):
            raise FormatError(f"bad record (operation {operation}, lengths {key_length}/{value_length})")
        records.append((operation, payload[offset:offset + key_length], payload[offset + key_length:end]))
        offset = end
    return records


def encode_superblock(sector_size: int, address: int, counter: int, area: int, epoch: int) -> bytes:
    body = SUPERBLOCK.pack(0, SUPERBLOCK_MAGIC, counter, area, epoch)[4:]
    return (struct.pack("<I", checksum(body, address)) + body).ljust(sector_size, b"\0")


def decode_superblock(data: bytes, address: int, verify: bool = True) -> tuple[int, int, int]:
    """Returns (counter, area, epoch). Raises FormatError when it is not a valid superblock."""
    crc, magic, counter, area, epoch = SUPERBLOCK.unpack_from(data)
    if magic != SUPERBLOCK_MAGIC or area not in (0, 1):
        raise FormatError("bad superblock magic or area")
    if verify and crc != checksum(data[4:SUPERBLOCK.size], address):
        raise FormatError("superblock checksum mismatch")
    return counter, area, epoch


def encode_checkpoint(sector_size: int, address: int, items: dict[bytes, bytes]) -> bytes:
    payload = encode_records([(RECORD_PUT, key, value) for key, value in sorted(items.items())])
    body = CHECKPOINT_HEADER.pack(0, CHECKPOINT_MAGIC, len(payload))[4:] + payload
    data = struct.pack("<I", checksum(body, address)) + body
    return data.ljust(-(-len(data) // sector_size) * sector_size, b"\0")


def checkpoint_length(header: bytes) -> int:
    _, magic, length = CHECKPOINT_HEADER.unpack_from(header)
    if magic != CHECKPOINT_MAGIC:
        raise FormatError("bad checkpoint magic")
    return CHECKPOINT_HEADER.size + length


def decode_checkpoint(data: bytes, address: int) -> dict[bytes, bytes]:
    crc, _, length = CHECKPOINT_HEADER.unpack_from(data)
    end = CHECKPOINT_HEADER.size + length
    if end > len(data) or crc != checksum(data[4:end], address):
        raise FormatError("checkpoint checksum mismatch")
    return {key: value for _, key, value in decode_records(data[CHECKPOINT_HEADER.size:end])}


def encode_log_block(sector_size: int, address: int, epoch: int, sequence: int, payload: bytes) -> bytes:
    room = sector_size - LOG_SECTOR.size
    chunks = [payload[start:start + room] for start in range(0, len(payload), room)] or [b""]
    sectors = []
    for index, chunk in enumerate(chunks):
        body = LOG_SECTOR.pack(0, LOG_MAGIC, epoch, sequence, index, len(chunks), len(chunk))[4:] + chunk
        body = body.ljust(sector_size - 4, b"\0")
        sectors.append(struct.pack("<I", checksum(body, address + index)) + body)
    return b"".join(sectors)


def decode_log_sector(data: bytes, address: int, verify: bool = True) -> tuple[int, int, int, int, bytes]:
    """Returns (epoch, sequence, index, count, payload). Raises FormatError if not a log sector."""
    crc, magic, epoch, sequence, index, count, length = LOG_SECTOR.unpack_from(data)
    if magic != LOG_MAGIC or index >= count or LOG_SECTOR.size + length > len(data):
        raise FormatError("not a log sector")
    if verify and crc != checksum(data[4:], address):
        raise FormatError("log sector checksum mismatch")
    return epoch, sequence, index, count, data[LOG_SECTOR.size:LOG_SECTOR.size + length]
