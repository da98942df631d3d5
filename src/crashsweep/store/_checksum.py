"""CRC32C (Castagnoli) with the structure's own address mixed in.

Every block, superblock and journal sector stores `checksum(content, address)`:
a write that lands at the wrong address (misdirected) fails its check where it
landed, so it is detected rather than taken for the structure that lives there.
"""

from __future__ import annotations

import crc32c

ADDRESS_BYTES = 8


def checksum(data: bytes, address: int) -> int:
    """Example: `checksum(b"node", 1024)`; the same bytes at sector 1025 give another value."""
    return crc32c.crc32c(address.to_bytes(ADDRESS_BYTES, "little"), crc32c.crc32c(data))
