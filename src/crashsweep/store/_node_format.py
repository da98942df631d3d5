"""On-disk blocks and B^ε-tree nodes. Document: docs/format/node.md.

Every block (node or indirection-table block) starts with BLOCK_HEADER:
magic, kind, version, reserved, payload length, CRC32C of (header without the
CRC + payload) with the block's first sector mixed in. Only the sectors the
block needs are written; the rest of its slot is never read.

Leaf payload:     LEAF_HEAD (entry count), an offset table (LEAF_OFFSET per entry: where the
                  entry starts in the payload), then per entry LEAF_ENTRY (key length,
                  value length), key, value; keys strictly ascending. The offset table lets a
                  point read binary-search the encoded leaf without decoding it (`leaf_lookup`).
Internal payload: INTERNAL_HEAD (child count, message count), child node ids
                  (CHILD each), child count - 1 pivots (PIVOT key length, key),
                  then messages (MESSAGE kind, key length, value length, key, value).
"""

from __future__ import annotations

import struct

from crashsweep.store._checksum import checksum
from crashsweep.store.errors import FormatError

BLOCK_HEADER = struct.Struct("<4sBBHII")
LEAF_HEAD = struct.Struct("<I")
LEAF_ENTRY = struct.Struct("<HI")
LEAF_OFFSET = struct.Struct("<I")
INTERNAL_HEAD = struct.Struct("<HI")
CHILD = struct.Struct("<Q")
PIVOT = struct.Struct("<H")
MESSAGE = struct.Struct("<BHI")
assert BLOCK_HEADER.size == 16 and LEAF_HEAD.size == 4 and LEAF_ENTRY.size == 6 and LEAF_OFFSET.size == 4
assert INTERNAL_HEAD.size == 6 and CHILD.size == 8 and PIVOT.size == 2 and MESSAGE.size == 7

BLOCK_MAGIC = b"CSBK"
FORMAT_VERSION = 1
KIND_LEAF, KIND_INTERNAL, KIND_TABLE = 1, 2, 3
MESSAGE_PUT, MESSAGE_DELETE = 1, 2
KEY_BYTES_MAX = 0xFFFF


def encode_block(kind: int, payload: bytes, address: int, sector_size: int) -> tuple[bytes, int]:
    """(bytes padded to whole sectors, CRC). Example: `encode_block(KIND_LEAF, b"...", 40, 4096)`."""
    head = BLOCK_HEADER.pack(BLOCK_MAGIC, kind, FORMAT_VERSION, 0, len(payload), 0)[:-4]
    crc = checksum(head + payload, address)
    data = head + crc.to_bytes(4, "little") + payload
    padded = data + bytes(-len(data) % sector_size)
    assert len(padded) % sector_size == 0 and len(padded) >= BLOCK_HEADER.size
    return padded, crc


def decode_block(data: bytes, address: int) -> tuple[int, bytes, int]:
    """(kind, payload, CRC). Raises FormatError if the block is not a valid block for `address`."""
    if len(data) < BLOCK_HEADER.size:
        raise FormatError("block shorter than its header")
    magic, kind, version, _, length, crc = BLOCK_HEADER.unpack_from(data)
    if magic != BLOCK_MAGIC:
        raise FormatError("not a block (bad magic)" if any(data[:16]) else "block is all zeros (never written)")
    if version != FORMAT_VERSION or kind not in (KIND_LEAF, KIND_INTERNAL, KIND_TABLE):
        raise FormatError(f"unknown block version {version} or kind {kind}")
    if BLOCK_HEADER.size + length > len(data):
        raise FormatError(f"payload length {length} runs past the block")
    payload = data[BLOCK_HEADER.size:BLOCK_HEADER.size + length]
    if checksum(data[:BLOCK_HEADER.size - 4] + payload, address) != crc:
        raise FormatError("checksum mismatch")
    return kind, payload, crc


def encode_leaf(keys: list[bytes], values: list[bytes]) -> bytes:
    assert len(keys) == len(values) and all(a < b for a, b in zip(keys, keys[1:]))
    offsets, entries = [], []
    position = LEAF_HEAD.size + LEAF_OFFSET.size * len(keys)
    for key, value in zip(keys, values):
        offsets.append(LEAF_OFFSET.pack(position))
        entries += (LEAF_ENTRY.pack(len(key), len(value)), key, value)
        position += LEAF_ENTRY.size + len(key) + len(value)
    return b"".join([LEAF_HEAD.pack(len(keys))] + offsets + entries)


def check_leaf(payload: bytes) -> int:
    """The entry count, after O(1) checks that the offset table and the last entry fit the payload."""
    if len(payload) < LEAF_HEAD.size:
        raise FormatError("leaf shorter than its head")
    (count,) = LEAF_HEAD.unpack_from(payload)
    start = LEAF_HEAD.size + LEAF_OFFSET.size * count
    if start > len(payload):
        raise FormatError("leaf offset table runs past the payload")
    if count:
        (last,) = LEAF_OFFSET.unpack_from(payload, start - LEAF_OFFSET.size)
        if last + LEAF_ENTRY.size > len(payload):
            raise FormatError("leaf entry runs past the payload")
        key_length, value_length = LEAF_ENTRY.unpack_from(payload, last)
        if last + LEAF_ENTRY.size + key_length + value_length != len(payload):
            raise FormatError("leaf entries do not end where the payload ends")
    elif start != len(payload):
        raise FormatError("empty leaf with trailing bytes")
    return count


def leaf_lookup(payload: bytes, key: bytes) -> bytes | None:
    """Binary search of an encoded leaf (checked by check_leaf); unpacks O(log n) entries."""
    (count,) = LEAF_HEAD.unpack_from(payload)
    low, high = 0, count
    entry, offset = LEAF_ENTRY.unpack_from, LEAF_OFFSET.unpack_from
    while low < high:
        middle = (low + high) // 2
        (position,) = offset(payload, LEAF_HEAD.size + LEAF_OFFSET.size * middle)
        key_length, value_length = entry(payload, position)
        start = position + LEAF_ENTRY.size
        found = payload[start:start + key_length]
        if found < key:
            low = middle + 1
        elif found > key:
            high = middle
        else:
            return payload[start + key_length:start + key_length + value_length]
    return None


def decode_leaf(payload: bytes) -> tuple[list[bytes], list[bytes]]:
    count = check_leaf(payload)
    reader = _Reader(payload)
    reader.unpack(LEAF_HEAD)
    offsets = [reader.unpack(LEAF_OFFSET)[0] for _ in range(count)]
    keys, values = [], []
    for expected in offsets:
        if reader.offset != expected:
            raise FormatError("leaf offset table does not match its entries")
        key_length, value_length = reader.unpack(LEAF_ENTRY)
        keys.append(reader.take(key_length))
        values.append(reader.take(value_length))
    reader.finish()
    if any(a >= b for a, b in zip(keys, keys[1:])):
        raise FormatError("leaf keys are not strictly ascending")
    return keys, values


def encode_internal(children: list[int], pivots: list[bytes], buffer: dict[bytes, tuple[int, bytes]]) -> bytes:
    assert len(pivots) == len(children) - 1 and len(children) >= 1
    parts = [INTERNAL_HEAD.pack(len(children), len(buffer))]
    parts += [CHILD.pack(child) for child in children]
    for pivot in pivots:
        parts += (PIVOT.pack(len(pivot)), pivot)
    for key in sorted(buffer):
        kind, value = buffer[key]
        parts += (MESSAGE.pack(kind, len(key), len(value)), key, value)
    return b"".join(parts)


def decode_internal(payload: bytes) -> tuple[list[int], list[bytes], dict[bytes, tuple[int, bytes]]]:
    reader = _Reader(payload)
    child_count, message_count = reader.unpack(INTERNAL_HEAD)
    if child_count < 1:
        raise FormatError("internal node without children")
    children = [reader.unpack(CHILD)[0] for _ in range(child_count)]
    pivots = [reader.take(reader.unpack(PIVOT)[0]) for _ in range(child_count - 1)]
    buffer = {}
    for _ in range(message_count):
        kind, key_length, value_length = reader.unpack(MESSAGE)
        if kind not in (MESSAGE_PUT, MESSAGE_DELETE):
            raise FormatError(f"unknown message kind {kind}")
        key = reader.take(key_length)
        buffer[key] = (kind, reader.take(value_length))
    reader.finish()
    if any(a >= b for a, b in zip(pivots, pivots[1:])):
        raise FormatError("pivots are not strictly ascending")
    return children, pivots, buffer


class _Reader:
    """Bounds-checked reading of a payload; every overrun is a FormatError, never an IndexError."""

    def __init__(self, data: bytes):
        self.data, self.offset = data, 0

    def unpack(self, layout: struct.Struct) -> tuple:
        if self.offset + layout.size > len(self.data):
            raise FormatError("structure runs past the payload")
        values = layout.unpack_from(self.data, self.offset)
        self.offset += layout.size
        return values

    def take(self, length: int) -> bytes:
        if self.offset + length > len(self.data):
            raise FormatError("bytes run past the payload")
        chunk = self.data[self.offset:self.offset + length]
        self.offset += length
        return chunk

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise FormatError(f"{len(self.data) - self.offset} unexpected bytes after the structure")
