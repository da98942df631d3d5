"""Errors of the built-in store. `StoreError` is the root."""


class StoreError(Exception):
    """Root of every error the store raises on purpose."""


class StoreConfigError(StoreError, ValueError):
    """A configuration value is out of range or inconsistent; the message names it."""


class CorruptionDetected(StoreError):
    """Durable data is damaged; the store refuses to return anything from it.

    `address` is the first sector of the structure that failed its check.
    """

    def __init__(self, address: int, reason: str):
        super().__init__(f"corruption detected at sector {address}: {reason}")
        self.address = address
        self.reason = reason


class StoreFullError(StoreError):
    """No free block is left on the device for a node or the indirection table."""


class EntryTooLargeError(StoreError, ValueError):
    """A key or value is larger than the node size allows."""


class FormatError(StoreError):
    """Bytes read from the device do not decode; callers turn it into CorruptionDetected."""
