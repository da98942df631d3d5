"""Engines on the native medium: a process of their own, driven over a line protocol on stdin/stdout.

Every native engine is a program that speaks this protocol (docs/native.md): built-in
adapters (`leveldb`, `rocksdb`, `lmdb`, `sqlite-native`) and Python path engines under
`--medium native` run in `crashsweep._native_host`; `exec:COMMAND` runs any program.
One request line, one answer line; bytes are lowercase hex, the empty string is `-`:

    open                -> ok | ok items       ("items": the engine answers `items`)
    put KEY VALUE       -> ok
    get KEY             -> value VALUE | none
    delete KEY          -> ok
    sync                -> ok                  (once everything before it is durable)
    items               -> items KEY:VALUE ...  (every pair, one line)
    close               -> ok
    any request         -> error TEXT          (the engine refused; TEXT says why)

`NativeEngine` is the store object the explorer drives (put/get/delete/sync/close,
items when offered). The program runs in the state's directory; when the state is
traced its answers on stdout mark the operation boundaries in the trace.

Invariants: the engine process never outlives its state (`crash` kills it, with
everything it started); its stderr is kept (capped) for the finding; an answer that
is not in the protocol is the engine's error, never a harness crash.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import signal
import subprocess
import sys

from crashsweep.engines.errors import EngineError

ANSWER_BYTES_MAX = 256 << 20
STDERR_BYTES_MAX = 4096
EXEC_PREFIX = "exec:"
HOST_MODULE = "crashsweep._native_host"
READY_ENVIRONMENT = "CRASHSWEEP_NATIVE_READY"
DROP_TIMEOUT_S = 10.0
GET_MANY_KEYS_MAX = 4096       # keys per `getmany` request (one answer line each)          # a kept host forgetting a state's engine (its destructor) may take this long


class NativeEngineError(Exception):
    """What a native engine answered with `error`, or how its process failed (the engine's, not ours)."""


def encode_hex(data: bytes) -> str:
    return data.hex() if data else "-"


def decode_hex(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


def exec_command(name: str, directory: str) -> list[str]:
    """`exec:./my-kv {dir} --flag` -> the argument vector, `{dir}` replaced by the store's directory."""
    template = name[len(EXEC_PREFIX):]
    try:
        words = shlex.split(template)
    except ValueError as error:
        raise EngineError(f"--engine {name!r}: {error}") from None
    if not words:
        raise EngineError(f"--engine {name!r}: no command after exec:")
    return [word.replace("{dir}", directory) for word in words]


def host_command(engine: str, directory: str, options: dict) -> list[str]:
    """The command running a Python engine (built-in native adapter or MODULE:CLASS) in the native host."""
    return [sys.executable, "-B", "-m", HOST_MODULE, engine, directory, json.dumps(options, sort_keys=True)]


class NativeEngine:
    """A native engine process for one state. Example: `store = NativeEngine(target, command)`; `store.get(b"k")`."""

    def __init__(self, target, command: list[str], events: list | None = None, hosted: bool = False):
        self.target = target
        self.requests = 0                    # requests sent (answer k answers request k)
        self.events = events
        self.pooled = None
        self.busy = False
        if hosted:
            self._start_hosted(command)
        else:
            self._start_program(command)
        target.engine = self
        self.protocol_pipe = f"pipe:[{os.fstat(self.process.stdout.fileno()).st_ino}]"
        opening = f"open {encode_hex(os.fsencode(target.root))}" if hosted else "open"
        answer = self._ask(opening)
        if answer not in ("ok", "ok items"):
            raise NativeEngineError(f"open answered {answer[:200]!r}, expected 'ok' or 'ok items'")
        if answer != "ok items":
            self.items = None                 # the explorer then reads out with get

    def _start_program(self, command: list[str]) -> None:
        """A program of its own for this state (`exec:`), under strace from its first call when traced."""
        tracer = self.target.tracer
        self._stderr = open(os.path.join(self.target.scratch, "stderr"), "wb+")
        argv = tracer.wrap(command) if tracer is not None else command
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=self._stderr, cwd=self.target.root, start_new_session=True,
                                            close_fds=True)
        except OSError as error:
            self._stderr.close()
            raise NativeEngineError(f"could not start {command[0]}: {error.strerror}") from None
        if tracer is not None:
            tracer.process = self.process

    def _start_hosted(self, command: list[str]) -> None:
        """A kept native host serves the state (one per engine and options, per worker process): it imported
        its engine once, at its start; a traced state attaches strace to it now, and detaches when sealed
        (an interpreter's start-up is thousands of calls that are no part of the engine's I/O)."""
        key = (command[4], command[6])          # host_command: [python, -B, -m, host, ENGINE, DIR, OPTIONS]
        host = _pool.pop(key, None)
        if host is None or host.process.poll() is not None:
            if host is not None:
                host.kill()
            host = _PooledHost(command, os.path.dirname(self.target.home))
            if host.process.stdout.readline(ANSWER_BYTES_MAX) != b"ready\n":
                self.process, self._stderr = host.process, host.stderr
                host.process.wait()
                death = self._death()
                host.kill()
                raise NativeEngineError(death)
        self.pooled, self.process, self._stderr = (key, host), host.process, host.stderr
        self._stderr_from = host.stderr_size()
        if self.target.tracer is not None:
            try:
                self.target.tracer.attach(host.process.pid)
            except BaseException:
                self.pooled = None
                host.kill()
                raise

    def _ask(self, request: str, timeout_s: float | None = None) -> str:
        if self.process.poll() is not None:
            raise NativeEngineError(self._death())
        self.requests += 1
        self.busy = True                     # until the answer arrives: a pooled host interrupted here is not reused
        try:
            self.process.stdin.write(request.encode() + b"\n")
            self.process.stdin.flush()
            if timeout_s is not None and not select.select([self.process.stdout], [], [], timeout_s)[0]:
                raise NativeEngineError(f"{request.split()[0]} was not answered in {timeout_s} s")
            line = self.process.stdout.readline(ANSWER_BYTES_MAX)
        except (BrokenPipeError, ConnectionResetError):
            line = b""
        if not line.endswith(b"\n"):
            if len(line) >= ANSWER_BYTES_MAX:
                raise NativeEngineError(f"answer to {request.split()[0]} longer than {ANSWER_BYTES_MAX >> 20} MiB")
            self.process.wait()
            raise NativeEngineError(self._death())
        self.busy = False
        answer = line.decode("utf-8", "replace").rstrip("\n")
        if answer.startswith("error"):
            raise NativeEngineError(answer[6:].strip()[:2000] or "error")
        return answer

    def _death(self) -> str:
        code = self.process.poll()
        how = f"was killed by {signal.Signals(-code).name}" if code is not None and code < 0 else \
            f"exited with code {code}"
        return f"the engine process {how}{self.stderr_tail()}"

    def stderr_tail(self) -> str:
        try:
            self._stderr.flush()
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(getattr(self, "_stderr_from", 0), size - STDERR_BYTES_MAX))
            text = self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; its stderr ends: {text[-500:]}" if text else ""

    def _expect_ok(self, request: str) -> None:
        answer = self._ask(request)
        if answer != "ok":
            raise NativeEngineError(f"{request.split()[0]} answered {answer[:200]!r}, expected 'ok'")

    def put(self, key: bytes, value: bytes) -> None:
        self._expect_ok(f"put {encode_hex(key)} {encode_hex(value)}")

    def delete(self, key: bytes) -> None:
        self._expect_ok(f"delete {encode_hex(key)}")

    def sync(self) -> None:
        self._expect_ok("sync")

    def close(self) -> None:
        self._expect_ok("close")

    def get(self, key: bytes) -> bytes | None:
        answer = self._ask(f"get {encode_hex(key)}")
        if answer == "none":
            return None
        word, _, value = answer.partition(" ")
        if word != "value":
            raise NativeEngineError(f"get answered {answer[:200]!r}, expected 'value HEX' or 'none'")
        return self._decoded(value, "get")

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """get() of every key; a kept host answers them in one request (`getmany`, the host's own)."""
        if self.pooled is None:
            return [self.get(key) for key in keys]
        values = []
        for start in range(0, len(keys), GET_MANY_KEYS_MAX):
            batch = keys[start:start + GET_MANY_KEYS_MAX]
            answer = self._ask("getmany " + " ".join(encode_hex(key) for key in batch))
            word, _, rest = answer.partition(" ")
            words = rest.split()
            if word != "values" or len(words) != len(batch):
                raise NativeEngineError(f"getmany answered {answer[:200]!r}")
            values += [None if text == "none" else self._decoded(text, "getmany") for text in words]
        return values

    def items(self):
        answer = self._ask("items")
        word, _, pairs = answer.partition(" ")
        if word != "items":
            raise NativeEngineError(f"items answered {answer[:200]!r}, expected 'items KEY:VALUE ...'")
        result = []
        for pair in pairs.split():
            key, separator, value = pair.partition(":")
            if not separator:
                raise NativeEngineError(f"items answered a pair without ':' ({pair[:100]!r})")
            result.append((self._decoded(key, "items"), self._decoded(value, "items")))
        return result

    @staticmethod
    def _decoded(text: str, request: str) -> bytes:
        try:
            return decode_hex(text)
        except ValueError:
            raise NativeEngineError(f"{request} answered {text[:100]!r}, which is not hex") from None

    def crash(self) -> None:
        """Power loss: kill the engine and everything it started (a traced run: its tracer collects). A pooled
        host that answered every request forgets the engine instead (nothing of the state is looked at
        again) and serves the next state; one interrupted mid-request is killed."""
        if self.pooled is not None:
            key, host = self.pooled
            self.pooled = None
            if not self.busy and self.process.poll() is None:
                try:
                    if self._ask("drop", DROP_TIMEOUT_S) == "ok":
                        _pool[key] = host
                        return
                except (NativeEngineError, OSError):
                    pass
            host.kill()
            return
        if self.target.tracer is not None and self.process.poll() is None:
            return                                   # the tracer kills its tracees and waits for strace
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()

    def release(self) -> None:
        if self.pooled is not None or any(host.process is self.process for host in _pool.values()):
            return                               # the pool keeps its host's streams
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            try:
                stream.close()
            except OSError:
                pass


class _PooledHost:
    """A native host process kept between states (one per engine and options, per worker process)."""

    def __init__(self, command: list[str], home: str):
        self.stderr = open(os.path.join(home, f"host-{os.getpid()}-{len(_pool)}-{id(self)}.stderr"), "wb+")
        environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", READY_ENVIRONMENT: "1"}
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        cwd=home, start_new_session=True, env=environment, close_fds=True)

    def stderr_size(self) -> int:
        try:
            return os.fstat(self.stderr.fileno()).st_size
        except OSError:
            return 0

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass


_pool: dict[tuple, _PooledHost] = {}


def pooled_hosts() -> set[int]:
    """The pids of kept hosts: crashsweep's own processes, not an engine's leftovers."""
    return {host.process.pid for host in _pool.values()}


def close_pool() -> None:
    """Kill every kept host (a worker's end)."""
    while _pool:
        _pool.popitem()[1].kill()
