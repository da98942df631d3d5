"""StoreConfig: the store's geometry and behaviour, validated in one place.

Invariants (checked by `validate`): node size is a whole number of sectors; the
cache holds at least four nodes; the journal has at least JOURNAL_SECTORS_MIN
sectors. (The tree derives the largest key and entry from the node size and
fanout, so that a split always yields nodes that fit.)
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from crashsweep.store._bugs import BUGS
from crashsweep.store.errors import StoreConfigError

NODE_SIZE_MIN_BYTES = 512
NODE_SIZE_MAX_BYTES = 16 * 1024 * 1024
FANOUT_MIN = 3
FANOUT_MAX = 1024
JOURNAL_SECTORS_MIN = 4
DATA_BLOCKS_MIN = 16


@dataclass(frozen=True)
class StoreConfig:
    """Example: `StoreConfig(node_size_bytes=4096, fanout=4, cache_bytes=64 * 1024)`.

    Defaults suit flash: 128 KiB nodes, fanout 8, a 32 MiB cache.
    """

    node_size_bytes: int = 128 * 1024
    fanout: int = 8
    cache_bytes: int = 32 * 1024 * 1024
    journal_sectors: int = 1024
    checkpoint_journal_share: float = 0.5   # checkpoint at a sync once the journal is this full
    bug: str | None = None

    def validate(self, sector_size: int) -> "StoreConfig":
        """Raises StoreConfigError naming the first bad value."""
        if not NODE_SIZE_MIN_BYTES <= self.node_size_bytes <= NODE_SIZE_MAX_BYTES:
            raise StoreConfigError(f"node_size_bytes must be in {NODE_SIZE_MIN_BYTES}..{NODE_SIZE_MAX_BYTES}, "
                                   f"got {self.node_size_bytes}")
        if self.node_size_bytes % sector_size:
            raise StoreConfigError(f"node_size_bytes ({self.node_size_bytes}) must be a multiple of the sector "
                                   f"size ({sector_size})")
        if not FANOUT_MIN <= self.fanout <= FANOUT_MAX:
            raise StoreConfigError(f"fanout must be in {FANOUT_MIN}..{FANOUT_MAX}, got {self.fanout}")
        if self.cache_bytes < 4 * self.node_size_bytes:
            raise StoreConfigError(f"cache_bytes ({self.cache_bytes}) must hold at least 4 nodes "
                                   f"({4 * self.node_size_bytes})")
        if self.journal_sectors < JOURNAL_SECTORS_MIN:
            raise StoreConfigError(f"journal_sectors must be at least {JOURNAL_SECTORS_MIN}, "
                                   f"got {self.journal_sectors}")
        if not 0.05 <= self.checkpoint_journal_share <= 1.0:
            raise StoreConfigError(f"checkpoint_journal_share must be in 0.05..1, got {self.checkpoint_journal_share}")
        if self.bug is not None and self.bug not in BUGS:
            raise StoreConfigError(f"no seeded bug {self.bug!r} (bugs: {', '.join(BUGS)})")
        return self

    def sectors_needed(self, sector_size: int) -> int:
        """2 superblocks + the journal + DATA_BLOCKS_MIN nodes."""
        return 2 + self.journal_sectors + DATA_BLOCKS_MIN * (self.node_size_bytes // sector_size)

    def with_values(self, **values) -> "StoreConfig":
        known = {field.name for field in fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise StoreConfigError(f"unknown store setting {unknown[0]!r} (settings: {', '.join(sorted(known))})")
        return replace(self, **values)
