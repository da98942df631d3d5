"""Superblocks: sectors 0 and 1, written alternately. Document: docs/format/superblock.md.

SUPERBLOCK then `table_block_count` TABLE_REF (block, length, CRC), zero padding,
and the CRC32C of the sector (all but its last 4 bytes, with the sector's own
address mixed in) in the last 4 bytes. The valid superblock with the highest
counter is the durable checkpoint.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from crashsweep.store._checksum import checksum
from crashsweep.store.errors import FormatError

SUPERBLOCK = struct.Struct("<4sHHQQIQQIIIIIH")
TABLE_REF = struct.Struct("<III")
CRC = struct.Struct("<I")
assert SUPERBLOCK.size == 66 and TABLE_REF.size == 12 and CRC.size == 4

SUPERBLOCK_MAGIC = b"CSBT"
FORMAT_VERSION = 2          # 2: both sectors are written from the first checkpoint on (a zero sector is damage)
FORMAT_VERSIONS_READ = (1, 2)
SUPERBLOCK_SECTORS = (0, 1)


@dataclass(frozen=True)
class Superblock:
    counter: int                      # checkpoint number; the highest valid one wins
    journal_start_seq: int            # first journal block not covered by this checkpoint
    journal_start_pos: int            # its sector offset within the journal ring
    root_id: int
    next_node_id: int
    sector_size: int
    node_size_bytes: int
    journal_sectors: int
    block_count: int
    table_entries: int
    table_blocks: tuple[tuple[int, int, int], ...]   # (block, length in bytes, CRC)
    version: int = FORMAT_VERSION


def table_blocks_max(sector_size: int) -> int:
    return (sector_size - SUPERBLOCK.size - CRC.size) // TABLE_REF.size


def encode_superblock(superblock: Superblock, address: int) -> bytes:
    """One sector. Example: `encode_superblock(Superblock(1, 1, 0, 0, 1, 4096, 8192, 16, 8, 1, ((0, 40, 7),)), 0)`."""
    size = superblock.sector_size
    assert len(superblock.table_blocks) <= table_blocks_max(size)
    body = SUPERBLOCK.pack(SUPERBLOCK_MAGIC, FORMAT_VERSION, 0, superblock.counter, superblock.journal_start_seq,
                           superblock.journal_start_pos, superblock.root_id, superblock.next_node_id,
                           superblock.sector_size, superblock.node_size_bytes, superblock.journal_sectors,
                           superblock.block_count, superblock.table_entries, len(superblock.table_blocks))
    body += b"".join(TABLE_REF.pack(*ref) for ref in superblock.table_blocks)
    body += bytes(size - CRC.size - len(body))
    sector = body + CRC.pack(checksum(body, address))
    assert len(sector) == size
    return sector


def decode_superblock(sector: bytes, address: int) -> Superblock:
    """Raises FormatError if the sector is not a valid superblock for `address`."""
    if len(sector) < SUPERBLOCK.size + CRC.size:
        raise FormatError("sector too small for a superblock")
    fields = SUPERBLOCK.unpack_from(sector)
    if fields[0] != SUPERBLOCK_MAGIC:
        raise FormatError("not a superblock (bad magic)")
    if checksum(sector[:-CRC.size], address) != CRC.unpack_from(sector, len(sector) - 4)[0]:
        raise FormatError("superblock checksum mismatch")
    (_, version, _, counter, journal_start_seq, journal_start_pos, root_id, next_node_id, sector_size,
     node_size_bytes, journal_sectors, block_count, table_entries, table_count) = fields
    if version not in FORMAT_VERSIONS_READ:
        raise FormatError(f"unknown superblock version {version}")
    if table_count > table_blocks_max(len(sector)):
        raise FormatError(f"superblock lists {table_count} table blocks, more than fit")
    refs = tuple(TABLE_REF.unpack_from(sector, SUPERBLOCK.size + index * TABLE_REF.size)
                 for index in range(table_count))
    return Superblock(counter, journal_start_seq, journal_start_pos, root_id, next_node_id, sector_size,
                      node_size_bytes, journal_sectors, block_count, table_entries, refs, version)
