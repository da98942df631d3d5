"""Errors of the disk models. One root: `DiskModelError`."""

from __future__ import annotations

import errno


class DiskModelError(Exception):
    """Root of every error the disk models raise."""


class DeviceRangeError(DiskModelError, ValueError):
    """A request names sectors outside the device or data that is not whole sectors."""


class DeviceIOError(DiskModelError, OSError):
    """The device failed a read (EIO): a read error or a latent sector error."""

    def __init__(self, sector: int, reason: str):
        OSError.__init__(self, errno.EIO, f"I/O error reading sector {sector}: {reason}")
        self.sector = sector
        self.reason = reason


class FaultPlanError(DiskModelError, ValueError):
    """A fault plan names an unknown fault or a bad rate."""
