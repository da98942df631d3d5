"""Adapters of the native medium: built-in engines in the native host, `exec:COMMAND`, and the native
variant of any Python path engine (`--medium native`). Each opens a `NativeEngine` on a `NativeTarget`."""

from __future__ import annotations

import os

from crashsweep.engines._native import EXEC_PREFIX, NativeEngine, check_runnable, exec_command, host_command
from crashsweep.engines._user import engine_file
from crashsweep.engines.errors import EngineError

PYTHON_STORES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_python_stores.py")
HOSTED_PYTHON_STORES = {"dbm-dumb": f"{PYTHON_STORES_FILE}:DbmDumbStore", "tinydb": f"{PYTHON_STORES_FILE}:TinyDbStore"}


def _hosted(engine: str):
    def open_engine(target, options: dict, events: list) -> NativeEngine:
        return NativeEngine(target, host_command(engine, target.root, options), events, hosted=True)
    return open_engine


def native_adapters(journal_mode, synchronous_level, parse_bool) -> dict:
    """The built-in native engines (the registry passes its option parsers)."""
    from crashsweep.engines._registry import EngineAdapter
    extra = "extra: native"
    return {
        "leveldb": EngineAdapter(
            name="leveldb", medium="native", open=_hosted("leveldb"),
            description=f"LevelDB (plyvel, {extra}) natively, system calls recorded; sync() is a synced write",
            option_types={"sync_writes": parse_bool}),
        "rocksdb": EngineAdapter(
            name="rocksdb", medium="native", open=_hosted("rocksdb"),
            description=f"RocksDB (rocksdict, {extra}) natively, system calls recorded; sync() is a synced write",
            option_types={"sync_writes": parse_bool}),
        "lmdb": EngineAdapter(
            name="lmdb", medium="native", open=_hosted("lmdb"), ignore_mmap=("lock.mdb",),
            description=f"LMDB (lmdb, {extra}) natively, one transaction per write; sync() is env.sync()",
            option_types={"sync": parse_bool, "metasync": parse_bool, "map_size_bytes": int}),
        "sqlite-native": EngineAdapter(
            name="sqlite-native", medium="native", open=_hosted("sqlite-native"), ignore_mmap=("*-shm",),
            description="SQLite's own unix VFS (the standard library's sqlite3) natively; sync() is COMMIT",
            option_types={"journal_mode": journal_mode, "synchronous": synchronous_level}),
    }


def exec_adapter(name: str):
    """`exec:COMMAND`: any program speaking the native line protocol, `{dir}` in COMMAND its store directory."""
    from crashsweep.engines._registry import EngineAdapter
    check_runnable(name)          # a malformed command or a missing program is one line now, not every state

    def open_engine(target, options: dict, events: list) -> NativeEngine:
        return NativeEngine(target, exec_command(name, target.root), events)
    return EngineAdapter(name=name, medium="native", open=open_engine,
                         description=f"the program {name[len(EXEC_PREFIX):]!r} over the native line protocol")


def native_variant(adapter, name: str):
    """A Python path engine run natively in the host instead of on the file-system model."""
    from crashsweep.engines._registry import EngineAdapter
    if adapter.medium == "native":
        return adapter
    if adapter.medium != "fs" or adapter.memoizable:
        hint = " (for SQLite natively use --engine sqlite-native)" if name == "sqlite" else ""
        raise EngineError(f"--medium native runs Python path engines; engine {name} runs on the "
                          f"{'block device' if adapter.medium == 'block' else 'file-system model only'}{hint}")
    hosted = HOSTED_PYTHON_STORES.get(name)
    if hosted is None:
        module_text, _, class_name = name.rpartition(":")
        if module_text.endswith(".py") or os.sep in module_text:
            module_text = engine_file(module_text)          # a copy shipped to this machine (Dask), if any
        hosted = f"{module_text}:{class_name}"
    return EngineAdapter(name=name, medium="native", open=_hosted(hosted), description=adapter.description,
                         option_types=adapter.option_types, bugs=adapter.bugs)
