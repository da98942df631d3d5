"""Real pure-Python stores, unmodified, behind the engine protocol (DESIGN §4).

- `dbm-dumb`: the standard library's `dbm.dumb` (a data file, an index file, a
  backup of the index); `sync()` is `dbm.dumb`'s own `sync()`.
- `tinydb`: TinyDB (PyPI) with its default JSON storage; every change rewrites the
  JSON file in place and fsyncs it, so `sync()` has nothing left to do.

Keys and values are bytes in the protocol; both stores keep text, so the
wrappers store them as hex (a bijection: nothing is lost or merged).
Only the wrappers are ours; every file operation is the store's own code.
"""

from __future__ import annotations

import dbm.dumb
import os

try:    # an optional dependency: `pip install crashsweep[engines]`
    import tinydb
    import tinydb.storages
except ImportError:     # pragma: no cover - reported when the engine is opened
    tinydb = None


class DbmDumbStore:
    """`dbm.dumb` on the store directory. Example: `DbmDumbStore("/crashsweep/store").put(b"k", b"v")`."""

    def __init__(self, path: str):
        self.db = dbm.dumb.open(os.path.join(path, "db"), "c")

    def put(self, key: bytes, value: bytes) -> None:
        self.db[key] = value

    def get(self, key: bytes) -> bytes | None:
        return self.db.get(key)

    def delete(self, key: bytes) -> None:
        if key in self.db:
            del self.db[key]

    def sync(self) -> None:
        self.db.sync()

    def items(self):
        return [(bytes(key), bytes(value)) for key, value in self.db.items()]

    def close(self) -> None:
        self.db.close()


class TinyDbStore:
    """TinyDB's default JSON storage, one document per key."""

    def __init__(self, path: str):
        if tinydb is None:
            raise RuntimeError("engine tinydb needs the tinydb package: pip install 'crashsweep[engines]'")
        self.db = tinydb.TinyDB(os.path.join(path, "db.json"))
        self.query = tinydb.Query()

    def put(self, key: bytes, value: bytes) -> None:
        self.db.upsert({"k": key.hex(), "v": value.hex()}, self.query.k == key.hex())

    def get(self, key: bytes) -> bytes | None:
        document = self.db.get(self.query.k == key.hex())
        return None if document is None else bytes.fromhex(document["v"])

    def delete(self, key: bytes) -> None:
        self.db.remove(self.query.k == key.hex())

    def sync(self) -> None:
        """TinyDB writes and fsyncs the whole file on every change."""

    def items(self):
        return [(bytes.fromhex(document["k"]), bytes.fromhex(document["v"])) for document in self.db.all()]

    def close(self) -> None:
        self.db.close()
