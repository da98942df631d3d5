"""Fault plans: which faults a sweep injects, and how many damaged variants per crash point.

Faults (DESIGN §3):
- `crash`: power loss between any two device events (always on);
- `lost`: a write pending at the crash may be lost (without it every pending write lands);
- `torn`: a multi-sector write pending at the crash may land only in part (sector granular);
- `corrupt`: a sector is damaged, at rest (already durable) or in flight (a pending write);
- `misdirect`: a pending write lands at the wrong address, leaving its target unchanged;
- `read-error`: a read fails once with EIO, and succeeds when retried;
- `latent`: a durable sector becomes unreadable (EIO on every read).

The first three are crash faults: an engine must recover from them without
error. The last four are corruption faults: an engine may refuse, never lie.

Invariants: `crash` is in every plan; `variants_per_point` bounds the damaged
states added per crash point, whatever the strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

from crashsweep.disk_model.errors import FaultPlanError

CRASH_FAULTS = ("crash", "lost", "torn")
CORRUPTION_FAULTS = ("corrupt", "misdirect", "read-error", "latent")
FAULT_KINDS = CRASH_FAULTS + CORRUPTION_FAULTS
DEFAULT_FAULTS = ("crash", "torn", "lost")
VARIANTS_PER_POINT_DEFAULT = 4
VARIANTS_PER_POINT_MAX = 1024


@dataclass(frozen=True)
class FaultPlan:
    """Which faults are on. Example: `FaultPlan.parse("crash,torn,lost,corrupt")`."""

    kinds: frozenset[str] = frozenset(DEFAULT_FAULTS)
    variants_per_point: int = VARIANTS_PER_POINT_DEFAULT

    def __post_init__(self) -> None:
        unknown = sorted(self.kinds - set(FAULT_KINDS))
        if unknown:
            raise FaultPlanError(f"unknown fault {unknown[0]!r} (known: {', '.join(FAULT_KINDS)})")
        if "crash" not in self.kinds:
            raise FaultPlanError("a fault plan always includes 'crash'")
        if not 0 <= self.variants_per_point <= VARIANTS_PER_POINT_MAX:
            raise FaultPlanError(f"variants per point must be in 0..{VARIANTS_PER_POINT_MAX}")

    @classmethod
    def parse(cls, text: str, variants_per_point: int = VARIANTS_PER_POINT_DEFAULT) -> "FaultPlan":
        """Parse "crash,torn,lost" (or "all"); `crash` is added when omitted."""
        names = [name.strip() for name in text.split(",") if name.strip()]
        if names == ["all"]:
            names = list(FAULT_KINDS)
        if not names:
            raise FaultPlanError("empty fault list")
        return cls(frozenset(names) | {"crash"}, variants_per_point)

    def has(self, kind: str) -> bool:
        assert kind in FAULT_KINDS, kind
        return kind in self.kinds

    @property
    def corruption_kinds(self) -> list[str]:
        return [kind for kind in CORRUPTION_FAULTS if kind in self.kinds]

    def describe(self) -> str:
        return ",".join(kind for kind in FAULT_KINDS if kind in self.kinds)

    def to_json(self) -> dict:
        return {"kinds": [kind for kind in FAULT_KINDS if kind in self.kinds],
                "variants_per_point": self.variants_per_point}

    @classmethod
    def from_json(cls, data: dict) -> "FaultPlan":
        if not isinstance(data, dict) or not isinstance(data.get("kinds"), list):
            raise FaultPlanError("fault plan: expected {\"kinds\": [...], \"variants_per_point\": N}")
        variants = data.get("variants_per_point", VARIANTS_PER_POINT_DEFAULT)
        if not isinstance(variants, int):
            raise FaultPlanError("fault plan: variants_per_point must be an integer")
        return cls(frozenset(data["kinds"]) | {"crash"}, variants)
