"""The block-device interface every device implements (simulated, real file, in memory).

Asynchronous core: `submit_read`, `submit_write`, `submit_flush` return a request
id; `wait(request_id)` blocks until that request completes (other requests may
complete first, in an order the device chooses) and returns the data of a
read. A synchronous convenience layer (`read`, `write`, `flush`) sits on top.

Contract (the conformance suite in tests/unit/test_device_conformance.py):
- a read returns the latest completed write of each sector, or zeros;
- `write` takes whole sectors; requests outside the device raise DeviceRangeError;
- after `flush()` returns, every write that completed before it is durable;
- a write with `fua=True` is durable when it completes.
"""

from __future__ import annotations

from crashsweep.disk_model.errors import DeviceRangeError

SECTOR_SIZE_DEFAULT_BYTES = 4096
SECTOR_SIZE_MIN_BYTES = 512
SECTOR_COUNT_DEFAULT = 256


class BlockDevice:
    """Base class: the synchronous layer and range checks over the asynchronous core."""

    sector_size: int
    sector_count: int

    # -- asynchronous core, implemented by each device --
    def submit_read(self, sector: int, sector_count: int) -> int:
        raise NotImplementedError

    def submit_write(self, sector: int, data: bytes, fua: bool = False) -> int:
        raise NotImplementedError

    def submit_flush(self) -> int:
        raise NotImplementedError

    def wait(self, request_id: int) -> bytes | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources; pending requests are completed first."""

    # -- synchronous layer --
    def read(self, sector: int, sector_count: int = 1) -> bytes:
        """Read whole sectors. Example: `device.read(0, 2)` returns 2 * sector_size bytes."""
        data = self.wait(self.submit_read(sector, sector_count))
        assert data is not None and len(data) == sector_count * self.sector_size
        return data

    def write(self, sector: int, data: bytes, fua: bool = False) -> None:
        self.wait(self.submit_write(sector, data, fua))

    def flush(self) -> None:
        self.wait(self.submit_flush())

    def wait_all(self, request_ids: list[int]) -> None:
        for request_id in request_ids:
            self.wait(request_id)

    @property
    def size_bytes(self) -> int:
        return self.sector_size * self.sector_count

    def _check_range(self, sector: int, sector_count: int) -> None:
        if sector_count < 1 or sector < 0 or sector + sector_count > self.sector_count:
            raise DeviceRangeError(
                f"sectors {sector}..{sector + sector_count - 1} are outside the device (0..{self.sector_count - 1})")

    def _check_write(self, sector: int, data: bytes) -> int:
        if not data or len(data) % self.sector_size:
            raise DeviceRangeError(f"write of {len(data)} bytes is not a whole number of "
                                   f"{self.sector_size}-byte sectors")
        sector_count = len(data) // self.sector_size
        self._check_range(sector, sector_count)
        return sector_count


def check_geometry(sector_size: int, sector_count: int) -> None:
    """Requires: sector size a power of two >= 512; at least 8 sectors."""
    if sector_size < SECTOR_SIZE_MIN_BYTES or sector_size & (sector_size - 1):
        raise DeviceRangeError(f"sector size {sector_size} is not a power of two >= {SECTOR_SIZE_MIN_BYTES}")
    if sector_count < 8:
        raise DeviceRangeError(f"a device needs at least 8 sectors, got {sector_count}")


class ImmediateDevice(BlockDevice):
    """A device whose requests are performed when submitted; `wait` only collects the result."""

    def _start_requests(self) -> None:
        self._next_id = 0
        self._results: dict[int, bytes | None] = {}

    def _finish(self, result: bytes | None) -> int:
        request_id = self._next_id
        self._next_id += 1
        self._results[request_id] = result
        return request_id

    def wait(self, request_id: int) -> bytes | None:
        if request_id not in self._results:
            raise DeviceRangeError(f"request {request_id} is unknown or already collected")
        return self._results.pop(request_id)
