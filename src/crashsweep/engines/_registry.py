"""Engine adapters: how the explorer opens an engine on a device and what options it takes.

An adapter is plain data plus a function: `open(device, options, events)` returns
an object with put/get/delete/sync/close and optionally items(). `events` is a
list the engine may append short strings to, naming the recovery paths it took
("used the older superblock", "replayed 3 log block(s)"): reports count them.

Options arrive as text (`--option KEY=VALUE`) and are converted and validated
here, so a bad value is one clear line before any work starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from crashsweep.disk_model import BlockDevice
from crashsweep.engines._fs_engines import interposition_scope, open_path_engine
from crashsweep.engines._native_adapters import EXEC_PREFIX, exec_adapter, native_adapters, native_variant
from crashsweep.engines._sqlite import journal_mode, open_sqlite, synchronous_level
from crashsweep.engines._python_stores import DbmDumbStore, TinyDbStore
from crashsweep.engines._user import engine_kind, is_user_engine_name, load_class, open_block_engine
from crashsweep.engines.errors import EngineError
from crashsweep.engines.examples import WAL_BUGS, WalConfig, WalStore
from crashsweep.store import BUGS as BETREE_BUGS
from crashsweep.store import BetreeStore, StoreConfig, StoreConfigError

DEFAULT_ENGINE = "betree"

# The sweep's default geometry for the built-in store, small so that a short workload splits
# nodes, writes back from the cache and checkpoints: 16 KiB nodes (entries up to ~8 KiB; the
# large-values scenario needs --option node_size_bytes=65536), fanout 4, a cache of 4 nodes, an
# 8-sector journal.
BETREE_SWEEP_DEFAULTS = {"node_size_bytes": 16384, "fanout": 4, "cache_bytes": 65536, "journal_sectors": 8}


@dataclass(frozen=True)
class EngineAdapter:
    name: str
    description: str
    open: Callable[[BlockDevice, dict, list], object]
    option_types: dict[str, type] = field(default_factory=dict)
    bugs: dict[str, str] = field(default_factory=dict)
    sectors_needed: Callable[[dict, int], int] = lambda options, sector_size: 8
    medium: str = "block"          # "block": opens on a device; "fs": opens on the file-system model
    scope: Callable | None = None  # for "fs" engines in Python: the interposition around engine calls
    memoizable: bool = False       # a function of its calls' responses: file calls or device requests (disk_model/_memo.py)
    ignore_mmap: tuple[str, ...] = ()   # "native": files whose shared writable mappings do not matter after a crash

    def parse_options(self, raw: dict[str, str]) -> dict:
        """Text options -> typed options. Raises EngineError naming the bad one."""
        parsed = {}
        for key, text in raw.items():
            if key not in self.option_types:
                known = ", ".join(sorted(self.option_types)) or "none"
                raise EngineError(f"engine {self.name} has no option {key!r} (options: {known})")
            kind = self.option_types[key]
            if key == "bug" and self.bugs and text not in self.bugs:
                raise EngineError(f"engine {self.name} has no seeded bug {text!r} (bugs: {', '.join(self.bugs)})")
            try:
                parsed[key] = kind(text)
            except ValueError:
                raise EngineError(f"option {key}={text!r}: expected {kind.__name__}") from None
        return parsed


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


parse_bool.__name__ = "bool (true/false)"


def _wal_config(options: dict) -> WalConfig:
    try:
        return WalConfig(**options)
    except (TypeError, ValueError) as error:
        raise EngineError(f"engine example-wal: {error}") from None


def _open_wal(device: BlockDevice, options: dict, events: list) -> WalStore:
    return WalStore(device, _wal_config(options), events)


def _betree_config(options: dict, sector_size: int | None = None) -> StoreConfig:
    try:
        config = StoreConfig(**{**BETREE_SWEEP_DEFAULTS, **options})
        return config.validate(sector_size) if sector_size else config
    except (TypeError, StoreConfigError) as error:
        raise EngineError(f"engine betree: {error}") from None


def _open_betree(device: BlockDevice, options: dict, events: list) -> BetreeStore:
    return BetreeStore(device, _betree_config(options), events)


ADAPTERS: dict[str, EngineAdapter] = {
    "betree": EngineAdapter(
        name="betree",
        description="built-in B^ε-tree store: journal, copy-on-write nodes, indirection table, "
                    "alternating superblocks, CRC32C with addresses",
        open=_open_betree,
        option_types={"node_size_bytes": int, "fanout": int, "cache_bytes": int, "journal_sectors": int,
                      "checkpoint_journal_share": float, "bug": str},
        bugs=dict(BETREE_BUGS), memoizable=True,
        sectors_needed=lambda options, sector_size: _betree_config(options, sector_size).sectors_needed(sector_size),
    ),
    "example-wal": EngineAdapter(
        name="example-wal",
        description="example block engine: write-ahead log + alternating checkpoints, per-sector CRC32C",
        open=_open_wal,
        option_types={"checkpoint_sectors": int, "log_sectors": int, "checkpoint_every_syncs": int,
                      "checkpoint_on_open": parse_bool, "bug": str},
        bugs=dict(WAL_BUGS), memoizable=True,
        sectors_needed=lambda options, sector_size: _wal_config(options).sectors_needed(),
    ),
}


def _python_store(name: str, engine_class: type, description: str, modules: list[str]) -> EngineAdapter:
    return EngineAdapter(name=name, description=description, medium="fs",
                         open=lambda session, options, events: open_path_engine(engine_class, options, events),
                         scope=interposition_scope([engine_class.__module__, *modules]))


ADAPTERS["dbm-dumb"] = _python_store("dbm-dumb", DbmDumbStore, "the standard library's dbm.dumb, unmodified, on "
                                     "the POSIX file-system model", ["dbm.dumb"])
ADAPTERS["tinydb"] = _python_store("tinydb", TinyDbStore, "TinyDB (PyPI) with its JSON storage, unmodified, on "
                                   "the POSIX file-system model", ["tinydb.storages", "tinydb.database"])


ADAPTERS["sqlite"] = EngineAdapter(
    name="sqlite", description="SQLite (through apsw's VFS) on the POSIX file-system model; sync() is COMMIT",
    open=open_sqlite, medium="fs", memoizable=True,
    option_types={"journal_mode": journal_mode, "synchronous": synchronous_level})


ADAPTERS.update(native_adapters(journal_mode, synchronous_level, parse_bool))


def resolve_engine(name: str, medium: str = "") -> EngineAdapter:
    """A built-in engine's adapter, or one made for a user class named `MODULE:CLASS` or a program
    `exec:COMMAND`; `medium="native"` runs a path engine natively (`native_variant`)."""
    if isinstance(name, str) and name.startswith(EXEC_PREFIX):
        return exec_adapter(name)
    if name in ADAPTERS:
        adapter = ADAPTERS[name]
    elif is_user_engine_name(name):
        adapter = _user_adapter(name)
    else:
        raise EngineError(f"unknown engine {name!r} (known: {', '.join(ADAPTERS)}, MODULE:CLASS or exec:COMMAND)")
    return native_variant(adapter, name) if medium == "native" else adapter


def describe_user_engine(name: str) -> dict:
    """What the explorer needs to know of a user engine, as plain data (no class, nothing to run):
    {"kind": "block" | "path", "options": [...], "open_keywords": bool, "bugs": {...}, "description": str}.
    Imports the engine's module: call it only where engine code may run (a worker process)."""
    engine_class = load_class(name)
    kind = engine_kind(engine_class)
    try:
        parameters = inspect.signature(engine_class).parameters
    except (TypeError, ValueError):
        parameters = {}
    open_keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    bugs = getattr(engine_class, "BUGS", None)
    bugs = {str(k)[:200]: str(v)[:500] for k, v in bugs.items()} if isinstance(bugs, dict) else {}
    description = (inspect.getdoc(engine_class) or f"user {kind} engine").splitlines()[0][:500]
    return {"kind": kind, "options": [p for p in list(parameters)[1:] if p != "events"],
            "open_keywords": open_keywords, "bugs": bugs, "description": description}


def _refuse_open(name: str):
    def open_engine(*args, **keywords):
        raise EngineError(f"engine {name} can only be opened in a worker process (crashsweep never runs "
                          "engine code in its own process)")
    return open_engine


def adapter_from_description(name: str, described: dict, engine_class: type | None = None) -> EngineAdapter:
    """The adapter of a user engine from `describe_user_engine`'s data. Without `engine_class` (in
    crashsweep's own process) it validates options and names the medium, but refuses to open."""
    kind, open_keywords, bugs = described["kind"], described["open_keywords"], described["bugs"]
    option_types: dict[str, type] = {key: str for key in described["options"]}
    if bugs:
        option_types["bug"] = str
    description = described["description"]

    class _Options(dict):
        """Accepts any key when the constructor takes **options."""

        def __contains__(self, key) -> bool:
            return open_keywords or dict.__contains__(self, key)

        def __getitem__(self, key):
            return dict.get(self, key, str)

    if engine_class is None:
        return EngineAdapter(name=name, description=description, medium="fs" if kind == "path" else "block",
                             open=_refuse_open(name), option_types=_Options(option_types), bugs=bugs)
    if kind == "path":
        return EngineAdapter(name=name, description=description, medium="fs",
                             open=lambda session, options, events: open_path_engine(engine_class, options, events),
                             option_types=_Options(option_types), bugs=bugs,
                             scope=interposition_scope([engine_class.__module__]))
    return EngineAdapter(name=name, description=description,
                         open=lambda device, options, events: open_block_engine(engine_class, device, options, events),
                         option_types=_Options(option_types), bugs=bugs)


def _user_adapter(name: str) -> EngineAdapter:
    return adapter_from_description(name, describe_user_engine(name), load_class(name))


def parse_option_pairs(pairs: list[str]) -> dict[str, str]:
    """["a=1", "b=x"] -> {"a": "1", "b": "x"}; a pair without "=" is an error."""
    result = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise EngineError(f"--option {pair!r}: expected KEY=VALUE")
        result[key.strip()] = value
    return result
