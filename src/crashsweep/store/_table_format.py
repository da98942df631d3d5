"""The indirection table on disk: node id -> (block, length, CRC). Document: docs/format/indirection-table.md.

The table is written at each checkpoint into fresh blocks (copy-on-write, like
nodes); each is an ordinary block (see _node_format) of kind KIND_TABLE whose
payload is TABLE_HEAD (entry count) then TABLE_ENTRY per node, ascending by id.
The superblock lists the table's blocks with their lengths and CRCs.
"""

from __future__ import annotations

import struct

from crashsweep.store._node_format import BLOCK_HEADER
from crashsweep.store.errors import FormatError

TABLE_HEAD = struct.Struct("<I")
TABLE_ENTRY = struct.Struct("<QIII")
assert TABLE_HEAD.size == 4 and TABLE_ENTRY.size == 20


def entries_per_block(node_size_bytes: int) -> int:
    count = (node_size_bytes - BLOCK_HEADER.size - TABLE_HEAD.size) // TABLE_ENTRY.size
    assert count >= 1
    return count


def encode_table(entries: dict[int, tuple[int, int, int]], node_size_bytes: int) -> list[bytes]:
    """Payloads of the table blocks. Example: `encode_table({0: (3, 4096, 0xabc)}, 4096)`."""
    per_block = entries_per_block(node_size_bytes)
    items = sorted(entries.items())
    payloads = []
    for start in range(0, max(1, len(items)), per_block):
        chunk = items[start:start + per_block]
        payloads.append(TABLE_HEAD.pack(len(chunk)) + b"".join(
            TABLE_ENTRY.pack(node_id, block, length, crc) for node_id, (block, length, crc) in chunk))
    return payloads


def decode_table_block(payload: bytes) -> dict[int, tuple[int, int, int]]:
    if len(payload) < TABLE_HEAD.size:
        raise FormatError("table block shorter than its head")
    (count,) = TABLE_HEAD.unpack_from(payload)
    if TABLE_HEAD.size + count * TABLE_ENTRY.size != len(payload):
        raise FormatError(f"table block of {len(payload)} bytes cannot hold {count} entries")
    entries = {}
    for index in range(count):
        node_id, block, length, crc = TABLE_ENTRY.unpack_from(payload, TABLE_HEAD.size + index * TABLE_ENTRY.size)
        if node_id in entries:
            raise FormatError(f"node {node_id} appears twice in the table")
        entries[node_id] = (block, length, crc)
    return entries
