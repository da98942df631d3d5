"""The native host: runs a Python engine in a process of its own, speaking the native line protocol.

`python -B -m crashsweep._native_host ENGINE DIRECTORY OPTIONS_JSON` serves one state:
ENGINE is a built-in native adapter (`leveldb`, `rocksdb`, `lmdb`, `sqlite-native`) or a
path engine `MODULE:CLASS` (a `.py` file or a dotted module). The protocol is in
`crashsweep/engines/_native.py` and docs/native.md.

This module imports nothing of crashsweep but stdlib-only files (`engines/_sql_kv.py`, `disk_model/_sites.py`,
`disk_model/native/_remove.py`, `reference/_continuation.py`), each by its path
(a native engine's process should hold the
engine and this loop only), so its startup is Python's plus the engine's. The engine's
own output to stdout goes to stderr: stdout carries the protocol only.

Invariant: every request gets exactly one answer line; an engine exception is the
answer `error TYPE: TEXT`, never a dead host.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import sys



def _sibling_module(name: str, path: str):
    """A stdlib-only module of crashsweep loaded by its file (importing its package would import crashsweep)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SqlKeyValue = _sibling_module("crashsweep_native_sql_kv", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "engines", "_sql_kv.py")).SqlKeyValue
_sites = _sibling_module("crashsweep_native_sites", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "disk_model", "_sites.py"))
_sites.shown_path = lambda filename: filename     # absolute: the harness shows it as the user's machine names it
_continuation = _sibling_module("crashsweep_native_continuation", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "reference", "_continuation.py"))
remove_tree = _sibling_module("crashsweep_native_remove", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "disk_model", "native", "_remove.py")).remove_tree

READY_ENVIRONMENT = "CRASHSWEEP_NATIVE_READY"
COLLECT_EVERY_DROPS = 64
DROP_GRACE_S = 0.002         # after a `drop`, how long its clean-up waits for the next state's `open` to come first
HISTORIES_KEPT = 16          # `history` tables kept (the harness counts alike: `engines/_native.py`)
SYNC_MARKER_KEY = b"\xffcrashsweep-sync\x00"
SITE_MARKER = b"\x00crashsweep-site\x00"     # a write to /dev/null: "the calls this thread makes next are at ..."


class SiteMarkers:
    """Python source sites of a Python engine's I/O, told in-band to the system-call recording.

    Native stacks of a Python engine are the interpreter's frames; the engine's own line is in its Python stack.
    While on (a traced state whose findings name lines), a profile hook sees each call of a file-changing C
    function (`os.write`, `os.fsync`, `os.rename`, a file object's `write`/`flush`/`close`, ...) and, when the
    calling thread's engine line (`_sites._pick`, the in-process model's rule) differs from the last one it
    told, writes `SITE_MARKER + file:line` to /dev/null first. The recorder (`_recorder.py`) gives that line to
    the thread's next calls. The engine's behaviour is unchanged: the hook only reads its stack."""

    FUNCTIONS = ("open", "write", "pwrite", "writev", "pwritev", "fsync", "fdatasync", "sync", "close", "closerange",
                 "rename", "replace", "unlink", "remove", "rmdir", "mkdir", "link", "symlink", "truncate",
                 "ftruncate", "posix_fallocate", "copy_file_range", "sendfile", "dup", "dup2", "sync_file_range")
    METHODS = frozenset(("write", "writelines", "flush", "close", "truncate", "__exit__"))

    def __init__(self) -> None:
        import _io
        import builtins
        import io
        import mmap
        self.functions = {getattr(os, name) for name in self.FUNCTIONS if hasattr(os, name)}
        self.functions |= {builtins.open, io.open, _io.open}
        self.io_types = (_io._IOBase, mmap.mmap)
        self.methods = self.METHODS | {"flush", "move", "resize", "write_byte"}    # mmap's
        self.last: dict[int, str] = {}
        self.fd = -1
        self.on = False
        self._ident = None

    def start(self) -> None:
        import threading
        if self.fd < 0:
            self.fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        self._ident = threading.get_ident
        self.last.clear()
        self.on = True
        sys.setprofile(self._hook)
        threading.setprofile(self._hook)

    def stop(self) -> None:
        if self.on:
            import threading
            self.on = False
            sys.setprofile(None)
            threading.setprofile(None)

    def _hook(self, frame, event, arg) -> None:
        if event != "c_call":
            return
        if arg not in self.functions and not (getattr(arg, "__name__", "") in self.methods
                                              and isinstance(getattr(arg, "__self__", None), self.io_types)):
            return
        try:          # an exception here would surface in the engine's call: a site is only a courtesy
            site = _sites._pick(_sites._stack(frame))
            thread = self._ident()
            if site and self.last.get(thread) != site:
                self.last[thread] = site
                os.write(self.fd, SITE_MARKER + site.encode("utf-8", "surrogateescape"))
        except Exception:     # noqa: BLE001
            pass


def error_answer(error: BaseException) -> str:
    """`error @HEX TYPE: TEXT`, where HEX is the engine line that raised (file:line, hex of its UTF-8; empty when
    no line of the engine's is on the traceback): the harness names the failure by the engine's own exception, as
    the in-process model does ("JSONDecodeError at kv.py:36")."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ")[:4000]
    try:
        site = _sites.raising_site(error.__traceback__)
    except Exception:     # noqa: BLE001 - a site is a courtesy
        site = ""
    return f"error @{site.encode('utf-8', 'surrogateescape').hex()} {text}"


def _flag(options: dict, name: str, default: bool) -> bool:
    value = options.pop(name, default)
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


class LevelDbStore:
    """LevelDB through plyvel. `sync()` is a synced write (LevelDB: a synced write makes every earlier one
    durable); option `sync_writes` makes every put/delete synced itself."""

    def __init__(self, path: str, options: dict):
        import plyvel
        self.sync_writes = _flag(options, "sync_writes", False)
        self.db = plyvel.DB(path, create_if_missing=True)

    def put(self, key, value):
        self.db.put(key, value, sync=self.sync_writes)

    def delete(self, key):
        self.db.delete(key, sync=self.sync_writes)

    def get(self, key):
        return self.db.get(key)

    def sync(self):
        self.db.delete(SYNC_MARKER_KEY, sync=True)

    def items(self):
        return [(key, value) for key, value in self.db]

    def close(self):
        self.db.close()


class RocksDbStore:
    """RocksDB through rocksdict (raw bytes mode). `sync()` is a synced write, as for LevelDB; option
    `sync_writes` syncs every put/delete."""

    def __init__(self, path: str, options: dict):
        import rocksdict
        self.sync_writes = _flag(options, "sync_writes", False)
        settings = rocksdict.Options(raw_mode=True)
        settings.create_if_missing(True)
        self.db = rocksdict.Rdict(path, settings)
        self.synced = rocksdict.WriteOptions()
        self.synced.sync = True
        self.plain = self.synced if self.sync_writes else rocksdict.WriteOptions()

    def put(self, key, value):
        self.db.put(key, value, self.plain)

    def delete(self, key):
        self.db.delete(key, self.plain)

    def get(self, key):
        return self.db.get(key)

    def sync(self):
        self.db.delete(SYNC_MARKER_KEY, self.synced)

    def items(self):
        return [(bytes(key), bytes(value)) for key, value in self.db.items()]

    def close(self):
        self.db.close()


class LmdbStore:
    """LMDB through the lmdb package: one write transaction per put/delete. Options `sync` and `metasync`
    (LMDB's own, default on), `map_size_bytes`. `sync()` is `env.sync(True)`."""

    def __init__(self, path: str, options: dict):
        import lmdb
        self.env = lmdb.open(path, map_size=int(options.pop("map_size_bytes", 64 << 20)),
                             sync=_flag(options, "sync", True), metasync=_flag(options, "metasync", True))

    def put(self, key, value):
        with self.env.begin(write=True) as transaction:
            transaction.put(key, value)

    def delete(self, key):
        with self.env.begin(write=True) as transaction:
            transaction.delete(key)

    def get(self, key):
        with self.env.begin() as transaction:
            value = transaction.get(key)
            return None if value is None else bytes(value)

    def sync(self):
        self.env.sync(True)

    def items(self):
        with self.env.begin() as transaction:
            return [(bytes(key), bytes(value)) for key, value in transaction.cursor()]

    def close(self):
        self.env.close()


class SqliteNativeStore(SqlKeyValue):
    """The standard library's sqlite3 (SQLite's own unix VFS), the same table and SQL as `--engine sqlite`
    (`_sql_kv.py`). Options `journal_mode`, `synchronous`."""

    def __init__(self, path: str, options: dict):
        import sqlite3
        self.connection = sqlite3.connect(os.path.join(path, "db.sqlite"), isolation_level=None)
        self.cursor = self.connection.cursor()
        self.setup(str(options.pop("journal_mode", "delete")), str(options.pop("synchronous", "full")))


BUILT_IN = {"leveldb": LevelDbStore, "rocksdb": RocksDbStore, "lmdb": LmdbStore, "sqlite-native": SqliteNativeStore}


def _load_class(name: str):
    module_text, _, class_name = name.rpartition(":")
    if module_text.endswith(".py") or os.sep in module_text:
        spec = importlib.util.spec_from_file_location(f"crashsweep_native_{abs(hash(module_text))}",
                                                      os.path.abspath(module_text))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        directory = os.path.dirname(os.path.abspath(module_text))
        if directory not in sys.path:
            sys.path.insert(0, directory)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_text)
    return getattr(module, class_name)


BUILT_IN_MODULES = {"leveldb": "plyvel", "rocksdb": "rocksdict", "lmdb": "lmdb", "sqlite-native": "sqlite3"}


def load_engine(name: str):
    """Import the engine's code (before any state is traced: imports are no part of its I/O)."""
    if name in BUILT_IN:
        importlib.import_module(BUILT_IN_MODULES[name])
        return BUILT_IN[name]
    return _load_class(name)


def open_engine(engine, name: str, directory: str, options: dict):
    if name in BUILT_IN:
        return engine(directory, dict(options))
    return engine(directory, **options)


def _hex(data) -> str:
    return bytes(data).hex() or "-"


def _unhex(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


def _lines(fd: int, answers, idle: list, grace: list | None = None):
    """The request lines on `fd`. Answers are flushed only when every request read so far is answered: the
    answers to a pipelined batch leave in one write (an untraced state: nothing marks op boundaries in them).
    While no request is waiting, the `idle` tasks run (a dropped state's clean-up), oldest first — after
    first waiting up to `grace[0]` seconds for one (then 0 again): right after a `drop` the next state's
    `open` is on its way, and a clean-up begun first would hold it up (the clean-up then runs while the
    harness checks that state's answers, when this process would wait anyway)."""
    import select
    buffer = b""
    grace = grace if grace is not None else [0.0]
    while True:
        end = buffer.find(b"\n")
        if end < 0:
            answers.flush()
            if idle and grace[0]:
                select.select([fd], [], [], grace[0])
            grace[0] = 0.0
            while idle and not select.select([fd], [], [], 0)[0]:
                idle.pop(0)()
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                if buffer:
                    yield buffer
                return
            buffer += chunk
            continue
        line, buffer = buffer[:end], buffer[end + 1:]
        yield line


def _forget(store, path: str | None, drops: int):
    """A dropped state's clean-up: free its engine (no close: a crash), collect now and then, remove its
    directory when the harness handed it over."""
    def clean_up() -> None:
        nonlocal store
        store = None
        if drops % COLLECT_EVERY_DROPS == 0:
            gc.collect()                      # engines kept alive by cycles
        if path is not None:
            remove_tree(path)
    return clean_up


def serve(name: str, directory: str, options: dict, requests, answers) -> None:
    """Serve requests until `close` or the end of input. `requests`: a file object, or a descriptor whose
    lines are read by `_lines` (the kept host's stdin)."""
    store = None
    drops = 0
    batched = False                           # `open DIR ... batch`: answers may leave together (untraced)
    markers = SiteMarkers()
    _sites._CATEGORY[serve.__code__.co_filename] = _sites.DRIVER     # the host drives the engine: sites stop here
    try:
        engine = load_engine(name)
    except BaseException as error:        # noqa: BLE001 - told at `open`
        engine, failure = None, f"{type(error).__name__}: {error}".replace("\n", " ")[:4000]
    gc.freeze()                              # the engine's modules live on: the drops' collections skip them
    if os.environ.get(READY_ENVIRONMENT):
        answers.write(b"ready\n")          # the harness attaches its tracer now, then sends `open`
        answers.flush()
    idle: list = []                         # dropped states' clean-ups, run while no request waits
    grace = [0.0]                           # how long `_lines` waits for a request before running them
    histories: dict = {}                    # `history` tables by name
    seen: dict = {}                         # this state's read-out: "reads", "items", "failed"
    for line in (_lines(requests, answers, idle, grace) if isinstance(requests, int) else requests):
        words = line.decode().split()
        if not words:
            continue
        if words[0] == "drop":                  # a kept host: forget this state's engine (no close)
            answers.write(b"ok\n")             # answered first: the harness goes on while the engine is freed
            answers.flush()
            markers.stop()
            batched = False
            drops += 1
            # `drop DIR`: the state's directory is this host's to remove. The engine is freed and the directory
            # removed while no request waits (the next state's `open` comes first); at most one state waits.
            path = _unhex(words[1]).decode("utf-8", "surrogateescape") if len(words) > 1 else None
            while idle:
                idle.pop(0)()
            idle.append(_forget(store, path, drops))
            grace[0] = DROP_GRACE_S
            store = None
            if not isinstance(requests, int):
                idle.pop(0)()
            continue
        if words[0] == "history":               # `history NAME HASH:m,m ...`: the snapshots `continue` finds
            histories[words[1]] = {int(value, 16): [int(m) for m in found.split(",")]
                                   for value, _, found in (word.partition(":") for word in words[2:])}
            while len(histories) > HISTORIES_KEPT:
                histories.pop(next(iter(histories)))
            answers.write(b"ok\n")
            continue
        if words[0] == "continue":
            answers.flush()                     # the read-out's answers leave now: the harness checks them meanwhile
            for answer in _continue(words, store, seen, histories):
                answers.write(answer.encode() + b"\n")
            continue
        if words[0] == "quiesce":               # a traced state comes next: nothing of an earlier one may run in it
            while idle:
                idle.pop(0)()
            answers.write(b"ok\n")
            answers.flush()
            continue
        try:
            if engine is None:
                raise RuntimeError(failure)
            if words[0] == "open":
                # `open DIR [sites] [batch]`: sites: a traced state whose findings name the engine's lines (not a
                # built-in adapter: its native stack names them); batch: untraced, answers may leave together
                if "sites" in words[2:] and name not in BUILT_IN:
                    markers.start()
                else:
                    markers.stop()
                batched = "batch" in words[2:]
                seen = {"failed": False}
            answer = _answer(words, store, engine, name, directory, options, seen)
            if words[0] == "open":
                store, answer = answer
        except BaseException as error:      # noqa: BLE001 - the engine's failure is an answer
            answer = error_answer(error)
            seen["failed"] = True
        answers.write(answer.encode() + b"\n")
        if not batched:
            answers.flush()                     # traced: each answer marks an op boundary in the trace
        if words[0] == "close" and answer == "ok":
            answers.flush()
            return


def _continue(words: list[str], store, seen: dict, histories: dict) -> list[str]:
    """`continue NAME SEED DEPTH SYNCED:STARTED,...`: run the explorer's continuation now, if the explorer will
    ask for it — this state's read-out equals a snapshot S_m of history NAME allowed by every window, and its
    reads agree — and answer `continued N DIGEST` and the N operations' answers; else `continued 0 -`.
    The rule and the operations are the explorer's own (`_recover.py`, `reference/_continuation.py`)."""
    table = histories.get(words[1]) if len(words) == 5 else None
    if table is None or store is None or seen.get("failed") or "reads" not in seen:
        return ["continued 0 -"]
    reads = seen["reads"]
    items = seen.get("items")
    recovered = dict(items) if items is not None else {key: value for key, value in reads.items() if value is not None}
    matches = table.get(_continuation.map_hash(recovered.items()), [])
    windows = [tuple(int(bound) for bound in window.split(":")) for window in words[4].split(",")]
    if not matches or any(recovered.get(key) != value for key, value in reads.items()) \
            or not all(any(synced <= m <= started for m in matches) for synced, started in windows):
        return ["continued 0 -"]
    # The recovered map is S_m: the steps are a function of (history, seed, depth, m), kept per host.
    kept_key = (words[1], words[2], words[3], matches[0])
    kept = _steps_kept.get(kept_key)
    if kept is None:
        steps = _continuation.continuation_steps(
            _continuation.continuation_rng(int(words[2]), int(words[3]), matches[0]), recovered)
        if len(_steps_kept) >= STEPS_KEPT:
            _steps_kept.clear()
        kept = _steps_kept[kept_key] = (steps, f"continued {len(steps)} {_continuation.steps_digest(steps)}")
    steps = kept[0]
    lines = [kept[1]]
    for kind, key, value in steps:
        try:
            if kind == "put":
                store.put(key, value)
            elif kind == "delete":
                store.delete(key)
            elif kind == "get":
                found = store.get(key)
                lines.append("none" if found is None else f"value {_hex(found)}")
                continue
            else:
                store.sync()
            lines.append("ok")
        except BaseException as error:      # noqa: BLE001 - the engine's failure is an answer
            lines.append(error_answer(error))
    return lines


STEPS_KEPT = 4096
_steps_kept: dict = {}       # (history name, seed, depth, m) -> (the continuation's steps, its `continued` line)


def _answer(words: list[str], store, engine, name: str, directory: str, options: dict, seen: dict):
    command = words[0]
    if command == "open":
        if len(words) > 1:                   # a pooled host serves many states: each names its directory
            directory = _unhex(words[1]).decode("utf-8", "surrogateescape")
        store = open_engine(engine, name, directory, options)
        return store, ("ok items" if callable(getattr(store, "items", None)) else "ok")
    if store is None:
        raise RuntimeError(f"{command} before open")
    if command == "put":
        store.put(_unhex(words[1]), _unhex(words[2]))
    elif command == "delete":
        store.delete(_unhex(words[1]))
    elif command == "get":
        value = store.get(_unhex(words[1]))
        return "none" if value is None else f"value {_hex(value)}"
    elif command == "sync":
        store.sync()
    elif command == "getmany":              # the host's own batch of gets (the read-out): one answer line
        keys = [_unhex(word) for word in words[1:]]
        values = [store.get(key) for key in keys]
        reads = seen.setdefault("reads", {})
        reads.update((key, None if value is None else bytes(value)) for key, value in zip(keys, values))
        return "values " + " ".join("none" if value is None else _hex(value) for value in values)
    elif command == "items":
        pairs = [(bytes(key), bytes(value)) for key, value in store.items()]
        seen["items"] = pairs
        # `items =`: the harness reads the pairs off this state's `getmany` answers when they are exactly the
        # values read, in the order asked, those that exist (the usual read-out: every key the history wrote).
        if words[1:] == ["="] and "reads" in seen \
                and pairs == [(key, value) for key, value in seen["reads"].items() if value is not None]:
            return "items ="
        return "items " + " ".join(f"{key.hex() or '-'}:{value.hex() or '-'}" for key, value in pairs)
    elif command == "close":
        store.close()
    else:
        raise ValueError(f"unknown request {command!r}")
    return "ok"


def _die_with_parent() -> None:
    """Linux: be killed when the process that started this host ends (a pooled host outlives states, never
    its worker)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main() -> None:
    name, directory, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    _die_with_parent()
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                         # the engine's prints go to stderr: stdout is the protocol's
    serve(name, directory, options, sys.stdin.fileno(), answers)


if __name__ == "__main__":
    main()
