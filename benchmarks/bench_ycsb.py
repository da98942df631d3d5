"""YCSB-style comparison of the built-in B^ε-tree store with sqlite3, LMDB, RocksDB, LevelDB and
Berkeley DB, in the spirit of VeriBetrKV §7.2. Every engine runs the same workloads on real files,
in its own process (so peak memory is its own), one after another in one run:

- load: insert `--records` keys (random order, `--value-bytes` values);
- A:    50 % reads, 50 % updates, Zipfian keys;
- C:    100 % reads, Zipfian keys;
- U:    uniform random reads;
with a durable sync every `--sync-every` operations (sqlite3 / LMDB / LevelDB / Berkeley DB: a
committed transaction or synced batch; RocksDB: a synced WAL flush; betree: `sync()`), and each
engine's cache set to `--cache-mib`.

Reported per engine and workload: ops/s; bytes written per operation and bytes read per query as
the kernel counts them for the process (/proc/self/io write_bytes and read_bytes: storage I/O,
so page-cache hits read 0 bytes) and, for betree, as the store counts its own device I/O; and the
process's peak RSS.

Run: python benchmarks/bench_ycsb.py [--records 1000000] [--ops 200000] [--engines betree,sqlite3,...]
Engines whose Python package is missing are reported as skipped, with the reason.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ENGINES = ("betree", "sqlite3", "lmdb", "rocksdb", "leveldb", "berkeleydb")
WORKLOADS = ("load", "A", "C", "U")


def key_of(index: int) -> bytes:
    return b"user%012d" % (index * 2654435761 % 10**12)


def zipf_sampler(count: int, rng: random.Random, theta: float = 0.99):
    """YCSB's Zipfian over `count` items (item 0 hottest), scattered over the key space."""
    weights, total = [], 0.0
    for rank in range(1, count + 1):
        total += 1.0 / rank ** theta
        weights.append(total)
    scatter = list(range(count))
    rng.shuffle(scatter)
    return lambda: scatter[min(count - 1, bisect.bisect_left(weights, rng.random() * total))]


class Engine:
    def put(self, key: bytes, value: bytes): ...
    def get(self, key: bytes): ...
    def sync(self): ...
    def close(self): ...
    own_io = None


class Betree(Engine):
    def __init__(self, directory, cache_bytes, records, value_bytes):
        from crashsweep.store import StoreConfig, open_file
        size = max(256 << 20, records * (value_bytes + 40) * 6) // 4096 * 4096
        self.store = open_file(os.path.join(directory, "data.betree"), size,
                               StoreConfig(node_size_bytes=128 * 1024, fanout=8, cache_bytes=cache_bytes,
                                           journal_sectors=2048))
        self.put, self.get, self.sync = self.store.put, self.store.get, self.store.sync

    def close(self):
        self.store.close()

    def own_io(self):
        stats = self.store.stats()
        return stats["bytes_written"], stats["bytes_read"]


class Sqlite(Engine):
    def __init__(self, directory, cache_bytes, records, value_bytes):
        import sqlite3
        self.db = sqlite3.connect(os.path.join(directory, "data.sqlite"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(f"PRAGMA cache_size=-{cache_bytes // 1024}")
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
        self.db.execute("BEGIN")
        self.cursor = self.db.cursor()

    def put(self, key, value):
        self.cursor.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def get(self, key):
        row = self.cursor.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def sync(self):
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self):
        self.db.execute("COMMIT")
        self.db.close()


class Lmdb(Engine):
    def __init__(self, directory, cache_bytes, records, value_bytes):
        import lmdb
        self.env = lmdb.open(directory, map_size=max(1 << 30, records * (value_bytes + 64) * 8), sync=True,
                             metasync=True, writemap=False)
        self.txn = self.env.begin(write=True)

    def put(self, key, value):
        self.txn.put(key, value)

    def get(self, key):
        return self.txn.get(key)

    def sync(self):
        self.txn.commit()
        self.txn = self.env.begin(write=True)

    def close(self):
        self.txn.commit()
        self.env.close()


class Rocks(Engine):
    def __init__(self, directory, cache_bytes, records, value_bytes):
        from rocksdict import BlockBasedOptions, Cache, Options, Rdict
        options = Options()
        options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_block_cache(Cache(cache_bytes))
        options.set_block_based_table_factory(table)
        self.db = Rdict(os.path.join(directory, "rocks"), options)

    def put(self, key, value):
        self.db[key] = value

    def get(self, key):
        return self.db.get(key)

    def sync(self):
        self.db.flush_wal(True)

    def close(self):
        self.db.flush_wal(True)
        self.db.close()


class Level(Engine):
    def __init__(self, directory, cache_bytes, records, value_bytes):
        import plyvel
        self.db = plyvel.DB(os.path.join(directory, "level"), create_if_missing=True, lru_cache_size=cache_bytes)
        self.batch = self.db.write_batch(sync=True)
        self.pending: dict[bytes, bytes] = {}

    def put(self, key, value):
        self.batch.put(key, value)
        self.pending[key] = value

    def get(self, key):
        value = self.pending.get(key)
        return value if value is not None else self.db.get(key)

    def sync(self):
        self.batch.write()
        self.batch = self.db.write_batch(sync=True)
        self.pending = {}

    def close(self):
        self.sync()
        self.db.close()


class Berkeley(Engine):
    def __init__(self, directory, cache_bytes, records, value_bytes):
        from berkeleydb import db
        self.db = db.DB()
        self.db.set_cachesize(0, cache_bytes)
        self.db.open(os.path.join(directory, "data.bdb"), dbtype=db.DB_BTREE, flags=db.DB_CREATE)

    def put(self, key, value):
        self.db.put(key, value)

    def get(self, key):
        return self.db.get(key)

    def sync(self):
        self.db.sync()

    def close(self):
        self.db.close()


FACTORIES = {"betree": Betree, "sqlite3": Sqlite, "lmdb": Lmdb, "rocksdb": Rocks, "leveldb": Level,
             "berkeleydb": Berkeley}


def proc_io() -> tuple[int, int]:
    values = {}
    with open("/proc/self/io") as handle:
        for line in handle:
            name, _, number = line.partition(":")
            values[name] = int(number)
    return values.get("write_bytes", 0), values.get("read_bytes", 0)


def run_engine(name: str, args) -> dict:
    """Runs in a child process: every workload on one engine; returns its row."""
    directory = tempfile.mkdtemp(prefix=f"ycsb-{name}-", dir=args.dir)
    try:
        engine = FACTORIES[name](directory, args.cache_mib << 20, args.records, args.value_bytes)
    except ImportError as error:
        shutil.rmtree(directory, ignore_errors=True)
        return {"engine": name, "skipped": f"{error}"}
    rng = random.Random(args.seed)
    value = bytes(args.value_bytes)
    order = list(range(args.records))
    rng.shuffle(order)
    zipf = zipf_sampler(args.records, random.Random(args.seed + 1))
    row = {"engine": name, "workloads": {}}
    for workload in WORKLOADS:
        count = args.records if workload == "load" else args.ops
        io_before, own_before = proc_io(), engine.own_io() if engine.own_io else None
        reads = 0
        started = time.perf_counter()
        for number in range(count):
            if workload == "load":
                engine.put(key_of(order[number]), value)
            elif workload == "A":
                index = zipf()
                if rng.random() < 0.5:
                    reads += 1
                    engine.get(key_of(index))
                else:
                    engine.put(key_of(index), value)
            elif workload == "C":
                reads += 1
                engine.get(key_of(zipf()))
            else:
                reads += 1
                engine.get(key_of(rng.randrange(args.records)))
            if number % args.sync_every == args.sync_every - 1:
                engine.sync()
        engine.sync()
        seconds = time.perf_counter() - started
        io_after = proc_io()
        result = {"ops": count, "seconds": round(seconds, 2), "ops_per_s": round(count / seconds),
                  "kernel_bytes_written_per_op": round((io_after[0] - io_before[0]) / count, 1),
                  "kernel_bytes_read_per_query": round((io_after[1] - io_before[1]) / reads, 1) if reads else None}
        if engine.own_io:
            own_after = engine.own_io()
            result["store_bytes_written_per_op"] = round((own_after[0] - own_before[0]) / count, 1)
            result["store_bytes_read_per_query"] = round((own_after[1] - own_before[1]) / reads, 1) if reads else None
        row["workloads"][workload] = result
        print(f"  {name} {workload}: {result['ops_per_s']:,} ops/s", file=sys.stderr, flush=True)
    engine.close()
    row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    row["disk_mib"] = round(sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(directory)
                                for f in files) / 2**20, 1)
    shutil.rmtree(directory, ignore_errors=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--sync-every", type=int, default=1000)
    parser.add_argument("--cache-mib", type=int, default=32)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where the data files go (default: the temp directory)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "ycsb.json"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_engine(args.one, args)))
        return 0
    rows = []
    for name in args.engines.split(","):
        print(f"== {name}", file=sys.stderr, flush=True)
        child = subprocess.run([sys.executable, __file__, "--one", name] + [a for a in sys.argv[1:]],
                               capture_output=True, text=True)
        sys.stderr.write(child.stderr)
        if child.returncode != 0:
            rows.append({"engine": name, "skipped": f"failed: {child.stderr.strip().splitlines()[-1:]}"})
            continue
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    settings = {key: getattr(args, key) for key in ("records", "ops", "value_bytes", "sync_every", "cache_mib",
                                                    "seed")}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump({"settings": settings, "engines": rows}, handle, indent=1)
    print(f"| engine | {' | '.join(f'{w} ops/s' for w in WORKLOADS)} | load bytes written/op | "
          f"U bytes read/query | peak RSS MiB |")
    print("|---" * (len(WORKLOADS) + 4) + "|")
    for row in rows:
        if "skipped" in row:
            print(f"| {row['engine']} | skipped: {row['skipped']} |")
            continue
        w = row["workloads"]
        written = w["load"].get("store_bytes_written_per_op", w["load"]["kernel_bytes_written_per_op"])
        read = w["U"].get("store_bytes_read_per_query", w["U"]["kernel_bytes_read_per_query"])
        rates = " | ".join(f"{w[name]['ops_per_s']:,}" for name in WORKLOADS)
        print(f"| {row['engine']} | {rates} | {written} | {read} | {row['peak_rss_mib']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
