"""Example block-level engines that teach users and test the explorer itself.

`WalStore` is a small, correct write-ahead-log + checkpoint store. The same
class, built with `bug=NAME`, carries one classic crash-consistency bug; the
names and what each does are in `WAL_BUGS`.
"""

from crashsweep.engines.examples.wal_store import WAL_BUGS, CorruptionDetected, WalConfig, WalStore

__all__ = ["WAL_BUGS", "CorruptionDetected", "WalConfig", "WalStore"]
