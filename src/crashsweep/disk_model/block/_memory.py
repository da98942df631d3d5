"""An in-memory block device with no simulation: every request completes at once.

Useful as the fastest device for an engine's own unit tests; it passes the same
conformance suite as the others.
"""

from __future__ import annotations

from crashsweep.disk_model.block._interface import ImmediateDevice, check_geometry


class MemoryBlockDevice(ImmediateDevice):
    """Example: `MemoryBlockDevice(4096, 64).write(0, bytes(4096))`."""

    def __init__(self, sector_size: int, sector_count: int):
        check_geometry(sector_size, sector_count)
        self.sector_size = sector_size
        self.sector_count = sector_count
        self.sectors: dict[int, bytes] = {}
        self._start_requests()

    def submit_read(self, sector: int, sector_count: int) -> int:
        self._check_range(sector, sector_count)
        zero = bytes(self.sector_size)
        return self._finish(b"".join(self.sectors.get(s, zero) for s in range(sector, sector + sector_count)))

    def submit_write(self, sector: int, data: bytes, fua: bool = False) -> int:
        sector_count = self._check_write(sector, data)
        size = self.sector_size
        for index in range(sector_count):
            self.sectors[sector + index] = bytes(data[index * size:(index + 1) * size])
        return self._finish(None)

    def submit_flush(self) -> int:
        return self._finish(None)

