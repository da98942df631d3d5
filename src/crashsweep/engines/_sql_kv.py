"""The key-value table both SQLite engines use (`sqlite` through apsw on the model, `sqlite-native` through the
standard library): one table `kv(k BLOB PRIMARY KEY, v BLOB)`, mutations and reads in one open transaction,
`sync()` is COMMIT. Kept in one place so the two interpositions run the very same SQL (their verdicts are
compared). Standard library only: the native host imports it.
"""

from __future__ import annotations


class SqlKeyValue:
    """Requires: `self.cursor` (a DB-API cursor in autocommit mode) set by the subclass, then `setup(...)`."""

    def setup(self, journal_mode: str, synchronous: str) -> None:
        cursor = self.cursor
        if journal_mode == "wal":       # WAL without a shared-memory index (SQLite's documented way)
            cursor.execute("PRAGMA locking_mode=EXCLUSIVE")
        cursor.execute(f"PRAGMA journal_mode={journal_mode}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB)")
        self.in_transaction = False

    def _begin(self) -> None:
        if not self.in_transaction:
            self.cursor.execute("BEGIN")
            self.in_transaction = True

    def put(self, key: bytes, value: bytes) -> None:
        self._begin()
        self.cursor.execute("INSERT OR REPLACE INTO kv VALUES(?, ?)", (key, value))

    def delete(self, key: bytes) -> None:
        self._begin()
        self.cursor.execute("DELETE FROM kv WHERE k = ?", (key,))

    def get(self, key: bytes) -> bytes | None:
        self._begin()         # reads share the open transaction (one lock, one hot-journal check)
        for (value,) in self.cursor.execute("SELECT v FROM kv WHERE k = ?", (key,)):
            return bytes(value)
        return None

    def items(self):
        self._begin()
        return [(bytes(k), bytes(v)) for k, v in self.cursor.execute("SELECT k, v FROM kv ORDER BY k")]

    def sync(self) -> None:
        if self.in_transaction:
            self.cursor.execute("COMMIT")
            self.in_transaction = False

    def close(self) -> None:
        self.connection.close()
