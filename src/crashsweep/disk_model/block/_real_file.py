"""A block device on a real file: the same interface, served by os.pread/os.pwrite/os.fsync.

Requests are performed when submitted (the kernel reorders as it likes); `wait`
only collects the result. `flush` is `os.fsync`; a write with `fua=True` is
followed by `os.fdatasync` before it completes.

Invariants: the file is exactly `sector_size * sector_count` bytes; nothing is
written outside it.
"""

from __future__ import annotations

import os

from crashsweep.disk_model.block._interface import ImmediateDevice, check_geometry
from crashsweep.disk_model.errors import DeviceIOError, DeviceRangeError


class RealFileDevice(ImmediateDevice):
    """Example: `with RealFileDevice("store.img", 4096, 1024) as device: device.write(0, b"\\0" * 4096)`."""

    def __init__(self, path: str, sector_size: int, sector_count: int):
        check_geometry(sector_size, sector_count)
        self.path = path
        self.sector_size = sector_size
        self.sector_count = sector_count
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size not in (0, self.size_bytes):
            os.close(self._fd)
            raise DeviceRangeError(f"{path} is {size} bytes, expected {self.size_bytes} "
                                   f"({sector_count} sectors of {sector_size})")
        if size == 0:
            os.ftruncate(self._fd, self.size_bytes)
        self._start_requests()

    def submit_read(self, sector: int, sector_count: int) -> int:
        self._check_range(sector, sector_count)
        length = sector_count * self.sector_size
        try:
            data = os.pread(self._fd, length, sector * self.sector_size)
        except OSError as error:
            raise DeviceIOError(sector, str(error)) from error
        return self._finish(data.ljust(length, b"\0"))

    def submit_write(self, sector: int, data: bytes, fua: bool = False) -> int:
        self._check_write(sector, data)
        written = os.pwrite(self._fd, data, sector * self.sector_size)
        assert written == len(data), (written, len(data))
        if fua:
            os.fdatasync(self._fd)
        return self._finish(None)

    def submit_flush(self) -> int:
        os.fsync(self._fd)
        return self._finish(None)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "RealFileDevice":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
