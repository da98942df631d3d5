"""SQLite on the file-system model, through an apsw VFS (`--engine sqlite`).

Every file SQLite opens (database, rollback journal, WAL, super-journal, temp
files) is a file of the model's live session, so its writes, truncates,
deletes and syncs are micro-ops like a Python engine's. Durability-relevant
behaviour follows SQLite's unix VFS (os_unix.c):
- `xDelete(name, syncdir)` fsyncs the directory when SQLite asks (`syncdir`);
- a newly created rollback journal, WAL or super-journal gets its directory
  fsynced after its first `xSync` (os_unix.c's UNIXFILE_DIRSYNC);
- `xSectorSize` is the model's tear unit (`FS_BLOCK_BYTES`), and the only device
  characteristic claimed is SQLITE_IOCAP_POWERSAFE_OVERWRITE: the model never
  changes bytes a write did not cover. Not claimed: atomic writes, safe append
  (a size may persist without its data), sequential writes (syncs reorder).
SQLite's randomness (journal nonces, WAL salts) comes from the model's seed (`session.random_seed`):
each open resets SQLite's generator and reseeds it through this VFS, so a run writes the same bytes
every time. Locks always succeed (one connection), and in WAL mode `locking_mode=EXCLUSIVE` lets WAL
keep its index in heap memory, as SQLite documents for VFSes without shared memory.

The engine: one table `kv(k BLOB PRIMARY KEY, v BLOB)`; mutations and reads run in one open
transaction and `sync()` is COMMIT. Options: `journal_mode` (delete, truncate,
persist, wal) and `synchronous` (off, normal, full, extra).
"""

from __future__ import annotations

import itertools
import os
import random

from crashsweep.engines._sql_kv import SqlKeyValue
from crashsweep.disk_model import FS_BLOCK_BYTES, STORE_PATH, SessionCalls, shared_session

try:
    import apsw
except ImportError:      # pragma: no cover - reported when the engine is opened
    apsw = None

VFS_NAME = "crashsweep"
DATABASE_PATH = f"{STORE_PATH}/db.sqlite"
JOURNAL_MODES = ("delete", "truncate", "persist", "wal")
SYNCHRONOUS_LEVELS = ("off", "normal", "full", "extra")
_temporary_names = itertools.count()
# SQLite's only channel to the world: these calls. With randomness from the seed, SQLite is a function
# of their responses, so the explorer may answer a state from a memo of them (`CallMemo`).
_calls = SessionCalls()


class ModelFile:
    """One SQLite file on the model (the VFSFile protocol), through the recorded file calls."""

    def __init__(self, name: str, flags: list[int]):
        create = bool(flags[0] & apsw.mapping_open_flags["SQLITE_OPEN_CREATE"])
        existed = _calls.exists(name)
        mode = os.O_RDWR | (os.O_CREAT if create else 0)
        if flags[0] & apsw.mapping_open_flags["SQLITE_OPEN_EXCLUSIVE"]:
            mode |= os.O_EXCL
        self.generation = _calls.generation
        self.handle = _calls.open(name, mode)
        self.name = name
        journal_kinds = ("SQLITE_OPEN_MAIN_JOURNAL", "SQLITE_OPEN_WAL", "SQLITE_OPEN_SUPER_JOURNAL")
        is_journal = any(flags[0] & apsw.mapping_open_flags[kind] for kind in journal_kinds)
        self.directory_sync_due = is_journal and not existed
        self.delete_on_close = bool(flags[0] & apsw.mapping_open_flags["SQLITE_OPEN_DELETEONCLOSE"])
        flags[1] = flags[0]

    def _live(self) -> int:
        if self.generation != _calls.generation:     # a file of an engine that was let go
            raise apsw.IOError(f"{self.name}: file of an earlier run")
        return self.handle

    def xRead(self, amount: int, offset: int) -> bytes:
        return _calls.pread(self._live(), amount, offset)

    def xWrite(self, data, offset: int) -> None:
        _calls.pwrite(self._live(), bytes(data), offset)

    def xTruncate(self, size: int) -> None:
        _calls.ftruncate(self._live(), size)

    def xSync(self, flags: int) -> None:
        _calls.fsync(self._live())
        if self.directory_sync_due:           # os_unix.c: the first sync of a new journal syncs its directory
            _calls.fsync_directory_of(self.name)
            self.directory_sync_due = False

    def xFileSize(self) -> int:
        return _calls.size(self._live())

    def xLock(self, level: int) -> None:
        pass

    def xUnlock(self, level: int) -> None:
        pass

    def xCheckReservedLock(self) -> bool:
        return False

    def xFileControl(self, op: int, pointer: int) -> bool:
        return False

    def xSectorSize(self) -> int:
        return FS_BLOCK_BYTES

    def xDeviceCharacteristics(self) -> int:
        return apsw.mapping_device_characteristics["SQLITE_IOCAP_POWERSAFE_OVERWRITE"]

    def xClose(self) -> None:
        if self.generation != _calls.generation:
            return
        _calls.close(self.handle)
        if self.delete_on_close and _calls.exists(self.name):
            _calls.unlink(self.name)


if apsw is not None:
    class ModelVfs(apsw.VFS):
        """The VFS: file operations and randomness from the model; time and sleep from the default VFS."""

        def __init__(self):
            super().__init__(VFS_NAME, base="")
            self.random_seed = "0"

        def xRandomness(self, amount: int) -> bytes:
            return random.Random(f"sqlite:{self.random_seed}").randbytes(amount)

        def reseed(self, seed: str) -> None:
            """Restart SQLite's generator from `seed`. SQLite seeds it from the *default* VFS, once: make
            this VFS the default for the reseed only, reset the generator, draw once, restore the default."""
            self.random_seed = seed
            default = apsw.vfs_names()[0]
            apsw.set_default_vfs(VFS_NAME)
            try:
                apsw.randomness(0)      # sqlite3_randomness(0, …) resets; the next draw reseeds
                apsw.randomness(1)
            finally:
                apsw.set_default_vfs(default)

        def xOpen(self, name, flags):
            path = name.filename() if isinstance(name, apsw.URIFilename) else name
            if path is None:
                path = f"/tmp/sqlite-temporary-{next(_temporary_names)}"
            return ModelFile(path, flags)

        def xDelete(self, name: str, syncdir: bool) -> None:
            if not _calls.exists(name):
                raise apsw.IOError(f"{name} does not exist")
            _calls.unlink(name)
            if syncdir:
                _calls.fsync_directory_of(name)

        def xAccess(self, name: str, flags: int) -> bool:
            return _calls.exists(name)

        def xFullPathname(self, name: str) -> str:
            return name if name.startswith("/") else f"{STORE_PATH}/{name}"

_vfs: list = []


def _register() -> None:
    if apsw is None:
        raise RuntimeError("engine sqlite needs the apsw package: pip install apsw")
    if not _vfs:
        _vfs.append(ModelVfs())


class SqliteStore(SqlKeyValue):
    """SQLite with one key-value table; `sync()` commits. Example: `SqliteStore(journal_mode="wal")`."""

    def __init__(self, journal_mode: str = "delete", synchronous: str = "full"):
        _register()
        global _temporary_names
        _temporary_names = itertools.count()      # temporary file names, like randomness, start afresh
        _calls.restart()
        _vfs[0].reseed(shared_session().random_seed)
        self.connection = apsw.Connection(DATABASE_PATH, vfs=VFS_NAME)
        self.cursor = self.connection.cursor()
        self.setup(journal_mode, synchronous)


def open_sqlite(session, options: dict, events: list) -> SqliteStore:
    return SqliteStore(**options)


def journal_mode(text: str) -> str:
    if text.lower() not in JOURNAL_MODES:
        raise ValueError(text)
    return text.lower()


def synchronous_level(text: str) -> str:
    if text.lower() not in SYNCHRONOUS_LEVELS:
        raise ValueError(text)
    return text.lower()


journal_mode.__name__ = "one of " + "|".join(JOURNAL_MODES)
synchronous_level.__name__ = "one of " + "|".join(SYNCHRONOUS_LEVELS)
