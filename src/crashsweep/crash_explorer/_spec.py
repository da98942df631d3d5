"""A sweep's complete settings as plain data: what every work unit, trace and resume check carries.

Invariants:
- a spec round-trips through JSON exactly (`SweepSpec.from_json(spec.to_json()) == spec`);
- `spec_id` depends on every field that can change a result, and on nothing else
  (not on --jobs, --out, budgets or shards), so results never depend on how they ran.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field, replace

from crashsweep.disk_model import (
    FS_MODEL_DEFAULT, FS_MODELS, SECTOR_COUNT_DEFAULT, SECTOR_SIZE_DEFAULT_BYTES, FaultPlan, check_geometry,
)
from crashsweep.disk_model.errors import DiskModelError
from crashsweep.reference import Op, decode_ops, encode_ops
from crashsweep.crash_explorer._profiles import engine_profile
from crashsweep.engines import ADAPTERS
from crashsweep.engines._native import EXEC_PREFIX
from crashsweep.engines._user import is_user_engine_name
from crashsweep.crash_explorer.errors import SpecError

STRATEGIES = ("exhaustive", "bounded", "prefix", "random")
STRATEGY_DEFAULT = "bounded"
BOUND_DEFAULT = 2
SAMPLES_DEFAULT = 32
STATES_PER_POINT_MAX_DEFAULT = 4096
CRASH_DEPTH_MAX = 3
NESTED_STATES_MAX_DEFAULT = 8
STATE_TIMEOUT_DEFAULT_S = 10.0
OPS_MAX = 100_000            # operations in one workload (a scenario file, a trace)
NAME_CHARS_MAX = 4096
_FIELD_TYPES = {"engine": str, "scenario": str, "seed": int, "sector_size": int, "sector_count": int,
                "volatile_cache": bool, "strategy": str, "bound": int, "samples": int, "states_per_point_max": int,
                "crash_depth": int, "nested_states_max": int, "continuation": bool,
                "state_timeout_s": (int, float), "fs_model": str, "medium": str, "recorded": str}
MEDIA = ("", "native")
IGNORE_MMAP_MAX = 64
RECORDED_CHARS_MAX = 1 << 30
_OPTIONAL_FIELDS = {"medium": "", "ignore_mmap": (), "recorded": ""}   # left out of JSON (and ids) when default


@dataclass(frozen=True)
class SweepSpec:
    """Everything that decides a sweep's results. Example: `SweepSpec(ops=[put(b"a", b"1"), sync()])`."""

    ops: tuple[Op, ...]
    engine: str = "example-wal"
    options: tuple[tuple[str, str], ...] = ()
    scenario: str = "custom"
    seed: int = 0
    sector_size: int = SECTOR_SIZE_DEFAULT_BYTES
    sector_count: int = SECTOR_COUNT_DEFAULT
    volatile_cache: bool = True
    faults: FaultPlan = field(default_factory=FaultPlan)
    strategy: str = STRATEGY_DEFAULT
    bound: int = BOUND_DEFAULT
    samples: int = SAMPLES_DEFAULT
    states_per_point_max: int = STATES_PER_POINT_MAX_DEFAULT
    crash_depth: int = 1
    nested_states_max: int = NESTED_STATES_MAX_DEFAULT
    continuation: bool = True
    state_timeout_s: float = STATE_TIMEOUT_DEFAULT_S
    fs_model: str = FS_MODEL_DEFAULT
    medium: str = ""                        # "": the engine's own; "native": a path engine run natively
    ignore_mmap: tuple[str, ...] = ()       # native: file globs whose shared writable mmaps do not matter
    recorded: str = ""                      # native: the recorded I/O log (`recorded_log`), "" = record live

    def validate(self, engine: bool = True) -> "SweepSpec":
        """Check every field; returns self. Raises SpecError (or the engine's EngineError) with one line.
        `engine=False` checks only what needs no knowledge of the engine (a trace's spec, before the user
        allowed its engine to be imported anywhere)."""
        self._validate_types()
        if self.strategy not in STRATEGIES:
            raise SpecError(f"unknown strategy {self.strategy!r} (known: {', '.join(STRATEGIES)})")
        if not 1 <= self.bound <= 16:
            raise SpecError(f"--bound must be in 1..16, got {self.bound}")
        if not 1 <= self.samples <= 100_000:
            raise SpecError(f"--samples must be in 1..100000, got {self.samples}")
        if not 1 <= self.states_per_point_max <= 1_000_000:
            raise SpecError(f"states per point must be in 1..1000000, got {self.states_per_point_max}")
        if not 0 <= self.crash_depth <= CRASH_DEPTH_MAX:
            raise SpecError(f"--crash-depth must be in 0..{CRASH_DEPTH_MAX}, got {self.crash_depth}")
        if not 0 < self.state_timeout_s <= 3600:
            raise SpecError(f"--state-timeout must be in (0, 3600] seconds, got {self.state_timeout_s}")
        if not self.ops:
            raise SpecError("the scenario has no operations")
        try:
            check_geometry(self.sector_size, self.sector_count)
        except DiskModelError as error:
            raise SpecError(str(error)) from None
        if self.fs_model not in FS_MODELS:
            raise SpecError(f"unknown file-system model {self.fs_model!r} (known: {', '.join(FS_MODELS)})")
        if len(self.ops) > OPS_MAX:
            raise SpecError(f"the scenario has {len(self.ops):,} operations; at most {OPS_MAX:,} are allowed")
        if self.engine not in ADAPTERS and not is_user_engine_name(self.engine) \
                and not self.engine.startswith(EXEC_PREFIX):
            raise SpecError(f"unknown engine {self.engine!r} (known: {', '.join(ADAPTERS)}, MODULE:CLASS or "
                            "exec:COMMAND)")
        if self.medium not in MEDIA:
            raise SpecError(f"unknown medium {self.medium!r} (known: native, or the engine's own)")
        if not engine:
            return self
        adapter = engine_profile(self.engine, medium=self.medium)
        if adapter.medium != "block" and self.faults.corruption_kinds:
            where = "the file-system model" if adapter.medium == "fs" else "the native file system"
            raise SpecError(f"engine {self.engine} runs on {where}, which injects crash faults only "
                            f"(crash, torn, lost); drop {', '.join(self.faults.corruption_kinds)} from --faults")
        options = adapter.parse_options(dict(self.options))
        needed = adapter.sectors_needed(options, self.sector_size)
        if self.sector_count < needed:
            raise SpecError(f"engine {self.engine} needs {needed} sectors with these options; "
                            f"the device has {self.sector_count} (--device-sectors)")
        return self

    def _checked_types(self) -> "SweepSpec":
        self._validate_types()
        return self

    def _validate_types(self) -> None:
        for name, kind in _FIELD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
                expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
                raise SpecError(f"spec: {name!r} must be {expected}, got {type(value).__name__}")
        if len(self.engine) > NAME_CHARS_MAX or len(self.scenario) > NAME_CHARS_MAX:
            raise SpecError(f"spec: engine and scenario names must be at most {NAME_CHARS_MAX} characters")
        if not 0 <= self.seed < 2 ** 63:
            raise SpecError(f"spec: seed must be in 0..2^63-1, got {self.seed}")
        if not isinstance(self.ignore_mmap, tuple) or len(self.ignore_mmap) > IGNORE_MMAP_MAX \
                or not all(isinstance(glob, str) and 0 < len(glob) <= NAME_CHARS_MAX for glob in self.ignore_mmap):
            raise SpecError(f"spec: ignore_mmap must be at most {IGNORE_MMAP_MAX} non-empty file globs")
        if len(self.recorded) > RECORDED_CHARS_MAX:
            raise SpecError("spec: the recorded I/O log is too large")
        if not 0 < self.nested_states_max <= 1_000_000:
            raise SpecError(f"spec: nested_states_max must be in 1..1000000, got {self.nested_states_max}")

    def engine_options(self) -> dict:
        return engine_profile(self.engine, medium=self.medium).parse_options(dict(self.options))

    def to_json(self) -> dict:
        """The spec as JSON data: a fresh dict each call; its `ops` list is shared (do not change it)."""
        cached = self.__dict__.get("_json")
        if cached is None:           # a frozen spec encodes the same every time: once (traces ask per violation)
            cached = asdict(self)
            cached["ops"] = encode_ops(list(self.ops))
            cached["options"] = dict(self.options)
            cached["faults"] = self.faults.to_json()
            cached["ignore_mmap"] = list(self.ignore_mmap)
            for name, default in _OPTIONAL_FIELDS.items():
                if getattr(self, name) == default:
                    del cached[name]
            object.__setattr__(self, "_json", cached)
        return {**cached, "options": dict(cached["options"]), "faults": copy.deepcopy(cached["faults"]),
                **({"ignore_mmap": list(cached["ignore_mmap"])} if "ignore_mmap" in cached else {})}

    @classmethod
    def from_json(cls, data: dict) -> "SweepSpec":
        if not isinstance(data, dict):
            raise SpecError("spec: expected an object")
        known = {name for name in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"spec: unknown field {unknown[0]!r}")
        values = dict(data)
        try:
            values["ops"] = tuple(decode_ops(data.get("ops")))
            options = data.get("options", {})
            if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float))
                                                        and not isinstance(v, bool) for k, v in options.items()):
                raise SpecError("spec: \"options\" must be an object of KEY: VALUE texts")
            values["options"] = tuple(sorted((k, str(v)) for k, v in options.items()))
            values["faults"] = FaultPlan.from_json(data.get("faults", {"kinds": ["crash", "torn", "lost"]}))
            ignored = data.get("ignore_mmap", [])
            if not isinstance(ignored, list):
                raise SpecError("spec: \"ignore_mmap\" must be a list of file globs")
            values["ignore_mmap"] = tuple(ignored)
            return cls(**values)._checked_types()
        except SpecError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            raise SpecError(f"spec: {error}") from None

    @property
    def spec_id(self) -> str:
        cached = self.__dict__.get("_id")
        if cached is None:
            text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
            cached = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
            object.__setattr__(self, "_id", cached)
        return cached

    def with_ops(self, ops: list[Op]) -> "SweepSpec":
        return replace(self, ops=tuple(ops), recorded="")     # other ops: a recorded log no longer applies


def make_options(pairs: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(pairs.items()))
