"""The built-in B^ε-tree key-value store (DESIGN §7): journal, copy-on-write nodes, indirection
table, alternating superblocks, CRC32C with addresses. Runs on any block device or a real file."""

from crashsweep.store._bugs import BUGS
from crashsweep.store._config import StoreConfig
from crashsweep.store._store import BetreeStore, open_file
from crashsweep.store.errors import (
    CorruptionDetected, EntryTooLargeError, FormatError, StoreConfigError, StoreError, StoreFullError,
)

__all__ = ["BUGS", "BetreeStore", "CorruptionDetected", "EntryTooLargeError", "FormatError", "StoreConfig",
           "StoreConfigError", "StoreError", "StoreFullError", "open_file"]
