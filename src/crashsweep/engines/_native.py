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

import atexit
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable

from crashsweep.disk_model import _sites
from crashsweep.disk_model._sites import shown_path
from crashsweep.disk_model._fds import readable
from crashsweep.disk_model.native._tracer import python_program
from crashsweep.engines.errors import EngineError

ANSWER_BYTES_MAX = 256 << 20
STDERR_BYTES_MAX = 4096
EXEC_PREFIX = "exec:"
HOST_MODULE = "crashsweep._native_host"
BUILT_IN_ADAPTERS = ("leveldb", "rocksdb", "lmdb", "sqlite-native")    # the host's engines in C: native stacks
READY_ENVIRONMENT = "CRASHSWEEP_NATIVE_READY"
DROP_TIMEOUT_S = 10.0          # a kept host forgetting a state's engine (its destructor) may take this long
READ_CHUNK_BYTES = 1 << 16
PIPELINED_MAX = 64             # answers outstanding before they are read
PIPELINED_BYTES_MAX = 4096     # request bytes outstanding: less than any pipe holds
GET_MANY_KEYS_MAX = 4096       # keys per `getmany` request (one answer line each)
POOLED_PER_ENGINE_MAX = 4      # idle kept hosts per engine and options (one per crash depth in use, at most)
HISTORIES_KEPT = 16            # histories (`history` tables) a kept host knows, the oldest forgotten first
POOLED_MAX = 8                 # idle kept hosts in all: a process that sweeps many engines or options in turn (a
                               # test suite, the API in a loop) ends the least recently used, not thousands of fds


def _open_request(root: str, sites: bool, batch: bool) -> str:
    """A kept host's `open DIR [sites] [batch]` of the store directory `root`."""
    return f"open {encode_hex(os.fsencode(root))}" + (" sites" if sites else "") + (" batch" if batch else "")


class NativeEngineError(Exception):
    """What a native engine answered with `error`, or how its process failed (the engine's, not ours).
    `reported`: (type name, engine line) when the native host said which exception of the engine's code it was
    and where it was raised (a finding then reads as the in-process model's: "JSONDecodeError at kv.py:36").
    `death`: how the engine's process ended, when it did without telling why ("killed by SIGSEGV",
    "exited with code 3"): a finding names that, not this class."""

    def __init__(self, text: str, reported: tuple[str, str] | None = None, death: str | None = None):
        super().__init__(text)
        self.reported = reported
        self.death = death


def encode_hex(data: bytes) -> str:
    return data.hex() if data else "-"


def decode_hex(text: str) -> bytes:
    return b"" if text == "-" else bytes.fromhex(text)


def exec_command(name: str, directory: str) -> list[str]:
    """`exec:./my-kv {dir} --flag` -> the argument vector, `{dir}` replaced by the store's directory.

    The program runs in the state's directory, but its command means what it means in the user's shell: a
    program named by a relative path (`./my-kv`) and a later word naming a file or directory that exists
    relative to the directory crashsweep runs in (`python3 my_kv.py`) are made absolute from there."""
    template = name[len(EXEC_PREFIX):]
    try:
        words = shlex.split(template)
    except ValueError as error:
        raise EngineError(f"--engine {name!r}: {error}") from None
    if not words:
        raise EngineError(f"--engine {name!r}: no command after exec:")
    base = exec_base()
    resolved = []
    for index, word in enumerate(words):
        if "{dir}" not in word and not os.path.isabs(word) and not word.startswith("-") \
                and ((index == 0 and os.sep in word) or (index > 0 and os.path.exists(os.path.join(base, word)))):
            word = os.path.normpath(os.path.join(base, word))
        resolved.append(word.replace("{dir}", directory))
    return resolved


_exec_base: list[str] = []       # where relative paths of an `exec:` command start: the user's directory


def exec_base() -> str:
    """The directory relative paths of an `exec:` command are taken from: the one crashsweep runs in, or on a
    Dask worker the client's (`set_exec_base`)."""
    return _exec_base[0] if _exec_base else os.getcwd()


def set_exec_base(directory: str) -> None:
    _exec_base[:] = [directory]


_TRACEBACK = "Traceback (most recent call last):"
_TRACEBACK_FRAME = re.compile(r'^  File "(.+)", line (\d+), in ', re.MULTILINE)
_EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*)(:|$)")


def traceback_reported(text: str) -> tuple[str, str, str] | None:
    """(type, site, message) of the exception a Python program died of, from the last traceback on its
    stderr: the exception's own type, its innermost engine line (the in-process model's rule) and the first
    line of its message, as a native host reports an engine's exception. None when the text holds no
    complete traceback."""
    start = text.rfind(_TRACEBACK)
    if start < 0:
        return None
    block = text[start + len(_TRACEBACK):]
    frames = [(match.group(1), int(match.group(2))) for match in _TRACEBACK_FRAME.finditer(block)]
    for line in block.splitlines():
        if line and not line.startswith(" "):
            match = _EXCEPTION_LINE.match(line)
            if match is None or not frames:
                return None
            message = line[match.end():].strip()
            return match.group(1).rpartition(".")[2], _sites.pick_site(reversed(frames)), message
    return None


def check_runnable(name: str) -> None:
    """A one-line error now, not a failing state each time, for an `exec:` program that cannot be started."""
    program = exec_command(name, "/")[0]
    found = program if os.sep in program else shutil.which(program)
    if found is None or not os.path.isfile(found) or not os.access(found, os.X_OK):
        where = f" (relative paths are taken from {exec_base()})" if os.sep in program else " (not on PATH)"
        raise EngineError(f"--engine {name!r}: {program} is not an executable program{where}")


def host_command(engine: str, directory: str, options: dict) -> list[str]:
    """The command running a Python engine (built-in native adapter or MODULE:CLASS) in the native host."""
    return [sys.executable, "-B", "-m", HOST_MODULE, engine, directory, json.dumps(options, sort_keys=True)]


SITE_HOST_ENVIRONMENT = "CRASHSWEEP_SITE_HOST"
_SITECUSTOMIZE = '''"""crashsweep: a traced Python program of a native sweep. Its source lines are told in-band to the recording
(crashsweep._native_host.SiteMarkers); then the sitecustomize this one shadows, if any, runs as it would have."""


def _crashsweep_sites():
    import importlib.machinery
    import importlib.util
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    host = os.environ.get("%(variable)s")
    if host:
        try:
            spec = importlib.util.spec_from_file_location("crashsweep_site_host", host)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.SiteMarkers().start()
        except Exception:       # a line is a courtesy: the program runs unchanged without one
            pass
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)


_crashsweep_sites()
del _crashsweep_sites
''' % {"variable": SITE_HOST_ENVIRONMENT}


def python_sites_environment(home: str) -> dict[str, str]:
    """The environment of a traced `exec:` Python program: a `sitecustomize` (written under `home` once) that
    turns on the native host's in-band lines in it and in every Python process it starts, before its own code."""
    directory = os.path.join(home, "python-sites")
    path = os.path.join(directory, "sitecustomize.py")
    if not os.path.exists(path):
        os.makedirs(directory, exist_ok=True)
        with open(path + ".tmp", "w") as handle:
            handle.write(_SITECUSTOMIZE)
        os.replace(path + ".tmp", path)
    earlier = os.environ.get("PYTHONPATH")
    host = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_native_host.py")
    return {**os.environ, "PYTHONPATH": directory + (os.pathsep + earlier if earlier else ""),
            SITE_HOST_ENVIRONMENT: host}


class NativeEngine:
    """A native engine process for one state. Example: `store = NativeEngine(target, command)`; `store.get(b"k")`."""

    POOLED_ITEMS = "items ="      # the read-out's `items` to a kept host (`read_all`); plain "items" asks for every pair

    def __init__(self, target, command: list[str], events: list | None = None, hosted: bool = False):
        self.target = target
        self.requests = 0                    # requests sent (answer k answers request k)
        self.events = events
        self.pooled = None
        self.busy = False
        self.stopped = None                  # run_ops: the first wrong read, once read
        self._unread: list[tuple] = []       # (request word, answers expected, sink) of answers not read yet
        self._unread_bytes = 0
        self._inbox = bytearray()            # answer bytes read and not yet taken
        self._plan = None                    # (history, seed, depth, windows): the host may run the continuation
        self._continued = None               # (digest, answers) of the continuation the host ran, not adopted yet
        self._continuing = None              # the plan of the continuation sent
        self.python_sites = False            # the host tells the engine's Python source lines (hosted, traced)
        self._unflushed = False              # requests written to the engine's stdin buffer and not flushed
        self._preopened = False              # its kept host got `open` with the previous state's `drop`
        self._hosted = hosted                # a native host's answers (which may name the engine's raising line)
        self._released = False               # its kept host was dropped as soon as its last answer was read
        if hosted:
            self._start_hosted(command)
        else:
            self._start_program(command)
        target.engine = self
        self.protocol_pipe = f"pipe:[{os.fstat(self.process.stdout.fileno()).st_ino}]"
        self.offers_items = None             # known from open's answer, read with the first answer needed
        # `sites`: the host tells the engine's Python lines in-band (SiteMarkers); `batch`: untraced, the host
        # may send pipelined answers together
        opening = _open_request(target.root, self.python_sites, target.tracer is None) if hosted else "open"
        if self._preopened:                  # sent with the previous state's `drop` (`crash(then_open=...)`)
            self.requests += 1
            self._unread.append(("open", ("ok", "ok items"), None))
            self._unread_bytes += len(opening) + 1
        else:
            self._send(opening, expected=("ok", "ok items"))
        if hosted and target.tracer is None and not self._preopened:
            try:                             # the host opens the engine while this process plans the read-out
                self._unflushed = False
                self.process.stdin.flush()
            except (BrokenPipeError, ConnectionResetError, ValueError):
                pass                         # the engine is gone: reading its answer says how

    def _start_program(self, command: list[str]) -> None:
        """A program of its own for this state (`exec:`), under strace from its first call when traced."""
        tracer = self.target.tracer
        self._stderr = open(os.path.join(self.target.scratch, "stderr"), "wb+")
        argv = tracer.wrap(command) if tracer is not None else command
        # A Python program's native stack is the interpreter's: its lines are told in-band, as the host tells them.
        environment = python_sites_environment(os.path.dirname(self.target.home)) \
            if tracer is not None and tracer.stacks and python_program(command[0]) else None
        try:
            self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=self._stderr, cwd=self.target.root, start_new_session=True,
                                            close_fds=True, env=environment)
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
        idle = _pool.get(key)
        host = idle.pop() if idle else None
        # A kept host forgets a state while idle (`drop`): a traced state first waits until it has (`quiesce`),
        # or that state's I/O would show the earlier state's clean-up. A host that fails either is replaced.
        preopened = None
        if host is not None:
            preopened, host.preopened = host.preopened, None
        if host is not None and (not self._dropped(host, more=preopened is not None)
                                 or host.process.poll() is not None
                                 or (preopened is not None and (preopened[0] != self.target.root
                                                                or self.target.tracer is not None))
                                 or (self.target.tracer is not None and not self._quiesced(host))):
            host.kill()                      # (one that opened another state's directory first: a state never came)
            host = None
            preopened = None
            self._inbox.clear()              # (what it said after `drop` is no answer of this state's)
        if host is None:
            host = _PooledHost(command, os.path.dirname(self.target.home))
            self.process, self._stderr = host.process, host.stderr
            if self._read_line("ready", None) != b"ready":
                host.process.wait()
                death = self._death()
                host.kill()
                raise NativeEngineError(death)
        self.pooled, self.process, self._stderr = (key, host), host.process, host.stderr
        self._stderr_from = host.stderr_size() if preopened is None else preopened[1]
        self._preopened = preopened is not None
        tracer = self.target.tracer
        # A Python path engine's native stack is the interpreter's: its sites come from its Python stack instead.
        self.python_sites = tracer is not None and tracer.stacks and key[0] not in BUILT_IN_ADAPTERS
        if tracer is not None:
            try:
                tracer.attach(host.process.pid, native_stacks=not self.python_sites)
            except BaseException:
                self.pooled = None
                host.kill()
                raise

    # Requests are pipelined: a request is sent and its answer read when an answer is needed, all outstanding
    # answers in order, so the first failure read is the first that happened and a state costs a round trip per
    # answer it needs, not per request. At most PIPELINED_MAX answers and PIPELINED_BYTES_MAX request bytes are
    # outstanding before they are read (the requests fit in the pipe: neither side can block the other).
    def _send(self, request: str, expected: tuple[str, ...] | None = ("ok",), sink: Callable | None = None) -> None:
        """`expected`: the answers that are not a failure (empty: any but an error; None: any, errors too);
        `sink(answer)` takes the answer."""
        data = request.encode() + b"\n"
        if self._unread and (len(self._unread) >= PIPELINED_MAX
                             or self._unread_bytes + len(data) > PIPELINED_BYTES_MAX):
            self._settle()
        self.requests += 1
        self._unread.append((request.split(" ", 1)[0], expected, sink))
        self._unread_bytes += len(data)
        self._unflushed = True
        try:
            self.process.stdin.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass                             # the engine is gone: reading its answer says how

    def _quiesced(self, host: "_PooledHost") -> bool:
        """Before a traced state: the host has freed every earlier state's engine and removed its directory
        (it does that while idle; traced, it would be this state's I/O)."""
        self.process = host.process
        try:
            self.process.stdin.write(b"quiesce\n")
            self.process.stdin.flush()
            return self._read_line("quiesce", DROP_TIMEOUT_S) == b"ok" and not self._inbox
        except (NativeEngineError, OSError, ValueError):
            return False

    def _dropped(self, host: "_PooledHost", more: bool = False) -> bool:
        """A kept host's answer to the previous state's `drop`, read now (it answered before freeing that
        state's engine, so it is waiting in the pipe): True when it said `ok` and nothing else (`more`: an
        `open` was sent with it, whose answer may follow)."""
        if not host.drop_pending:
            return True
        self.process = host.process
        try:
            line = self._read_line("drop", DROP_TIMEOUT_S, idle=False)    # (it is on its way: no work first)
        except (NativeEngineError, OSError):
            line = None
        if line != b"ok" or (self._inbox and not more):
            self._inbox.clear()
            return False
        host.drop_pending = False
        host.removing = None
        return True

    def _settle(self, timeout_s: float | None = None, judged: bool = True, keep: int = 0) -> str:
        """Read every outstanding answer in order (all but the last `keep`); raise at the first that is an error
        or not expected. Stops once a sink ended the sequence (`stopped`: what follows is not looked at); reads
        all without judging them when the state is over (not `judged`). Returns the last answer read."""
        answer = ""
        while len(self._unread) > keep and (self.stopped is None or not judged):
            word, expected, sink = self._unread[0]
            answer = self._read_answer(word, timeout_s)
            self._unread.pop(0)
            self._unread_bytes = self._unread_bytes if self._unread else 0
            if word == "continue":           # its header, then one answer per step the host ran
                self._continued = self._continued_answers(answer, timeout_s)
                continue
            if not judged:
                continue                     # the state is over: answers are read, not looked at
            if answer.startswith("error") and expected is not None:
                raise self._error(answer[6:].strip())
            if expected and answer not in expected:
                wanted = " or ".join(repr(text) for text in expected)
                raise NativeEngineError(f"{word} answered {answer[:200]!r}, expected {wanted}")
            if word == "open":
                self.offers_items = answer == "ok items"
                if self.pooled is not None:
                    self.pooled[1].offers_items = self.offers_items
            if sink is not None:
                sink(answer)
        return answer

    def _error(self, text: str) -> NativeEngineError:
        """The error an `error` answer reports. A native host's answer may name the raising line: `@HEX TYPE: TEXT`."""
        reported = None
        if self._hosted and text.startswith("@"):
            marker, _, text = text.partition(" ")
            try:
                site = bytes.fromhex(marker[1:]).decode("utf-8", "surrogateescape")
            except ValueError:
                site = ""
            kind = text.partition(":")[0]
            if kind.isidentifier():
                filename, _, line = site.rpartition(":")
                reported = (kind, f"{shown_path(filename)}:{line}" if filename else site)
                text = text[len(kind) + 1:].strip()
        return NativeEngineError(self._in_engine_terms(text)[:2000] or "error", reported)

    def _in_engine_terms(self, text: str) -> str:
        """An engine's error names its store as `{dir}`, not this state's directory (which differs from run
        to run and worker to worker): results stay deterministic and read as the user wrote the engine."""
        return text.replace(self.target.root, "{dir}")

    def _read_answer(self, word: str, timeout_s: float | None) -> str:
        self.busy = True                     # until the answer arrives: a pooled host interrupted here is not reused
        if self._unflushed:
            self._unflushed = False
            try:
                self.process.stdin.flush()
            except (BrokenPipeError, ConnectionResetError, ValueError):
                pass                         # the engine is gone: its answer is missing, and says how
        line = self._read_line(word, timeout_s)
        if line is None:
            self.process.wait()
            raised = traceback_reported(self._stderr_text())
            if raised is None:
                raise NativeEngineError(self._death(), death=self._ending())
            kind, site, message = raised      # a Python program's exception, in its own terms, as a host tells one
            raise NativeEngineError(self._in_engine_terms(f"{message} ({self._death(tail=False)})"), (kind, site))
        self.busy = False
        return line.decode("utf-8", "replace")

    def _read_line(self, word: str, timeout_s: float | None, idle: bool = True) -> bytes | None:
        """The next answer line (without its newline), None at the end of the engine's output. Answers are read
        from the descriptor into `_inbox` (several at a time when pipelined), so a timeout's select never
        waits for an answer that was already read."""
        fd = self.process.stdout.fileno()
        scanned = 0
        while True:
            end = self._inbox.find(b"\n", scanned)
            if end >= 0:
                line = bytes(self._inbox[:end])
                del self._inbox[:end + 1]
                return line
            scanned = len(self._inbox)
            if scanned >= ANSWER_BYTES_MAX:
                raise NativeEngineError(f"answer to {word} longer than {ANSWER_BYTES_MAX >> 20} MiB")
            if idle and _idle and not readable(fd, 0):
                _run_idle()                  # the answer is not there yet: work meanwhile
            if timeout_s is not None and not readable(fd, timeout_s):
                raise NativeEngineError(f"{word} was not answered in {timeout_s} s")
            try:
                chunk = os.read(fd, READ_CHUNK_BYTES)
            except (ConnectionResetError, OSError):
                chunk = b""
            if not chunk:
                return None
            self._inbox += chunk

    def _ask(self, request: str, timeout_s: float | None = None) -> str:
        """Send a request and read its answer (and every answer outstanding before it)."""
        self._send(request, expected=())
        return self._settle(timeout_s)

    def _death(self, tail: bool = True) -> str:
        return f"the engine process {'was ' if self._ending().startswith('killed') else ''}{self._ending()}" \
            f"{self.stderr_tail() if tail else ''}"

    def _ending(self) -> str:
        """"killed by SIGSEGV" or "exited with code 3"."""
        code = self.process.poll()
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with code {code}"

    def stderr_tail(self) -> str:
        text = self._stderr_text()
        return f"; its stderr ends: {self._in_engine_terms(text)[-500:]}" if text else ""

    def _stderr_text(self) -> str:
        """The last STDERR_BYTES_MAX bytes the engine wrote to stderr in this state."""
        try:
            self._stderr.flush()
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(getattr(self, "_stderr_from", 0), size - STDERR_BYTES_MAX))
            return self._stderr.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""

    # One by one, an operation has happened when it returns (a crash after it must find its I/O in the trace);
    # `run_ops` pipelines a sequence and returns once every answer is read.
    def put(self, key: bytes, value: bytes) -> None:
        self._send(f"put {encode_hex(key)} {encode_hex(value)}")
        self._settle()

    def delete(self, key: bytes) -> None:
        self._send(f"delete {encode_hex(key)}")
        self._settle()

    def sync(self) -> None:
        self._send("sync")
        self._settle()

    def close(self) -> None:
        self._send("close")
        self._settle()

    def get(self, key: bytes) -> bytes | None:
        return self._value(self._ask(f"get {encode_hex(key)}"))

    def _value(self, answer: str) -> bytes | None:
        if answer == "none":
            return None
        word, _, value = answer.partition(" ")
        if word != "value":
            raise NativeEngineError(f"get answered {answer[:200]!r}, expected 'value HEX' or 'none'")
        return self._decoded(value, "get")

    def run_ops(self, ops, reference: dict, begin: Callable[[int], None], end: Callable[[int], None]) -> tuple:
        """Run operations as the explorer's continuation runs them one by one, pipelined: ("done",), or
        ("wrong-read", index, value) at the first get that reads other than `reference` (kept up to date);
        an engine's failure raises. Answers are read in order, so the outcome is the one-by-one outcome
        (requests after the first failure may have run too: the state ends there either way). When the kept
        host already ran these operations (`plan_continuation`), their answers are judged the same way."""
        self.stopped = None
        if self._unread and self._unread[0][0] == "continue":
            self._settle()
        if self._continued is not None:
            self._release_early()
            return self._adopt(ops, reference, begin, end)

        def check(index: int, wanted):
            def sink(answer: str) -> None:
                actual = self._value(answer)
                if actual != wanted:
                    self.stopped = ("wrong-read", index, actual)
            return sink

        for index, op in enumerate(ops):
            if self.stopped is not None:
                break
            begin(index)
            if op.kind == "put":
                self._send(f"put {encode_hex(op.key)} {encode_hex(op.value)}")
                reference[op.key] = op.value
            elif op.kind == "delete":
                self._send(f"delete {encode_hex(op.key)}")
                reference.pop(op.key, None)
            elif op.kind == "get":
                self._send(f"get {encode_hex(op.key)}", expected=(), sink=check(index, reference.get(op.key)))
            else:
                self._send("sync")
            end(index)
        self._settle()
        stopped, self.stopped = self.stopped, None
        return stopped or ("done",)

    def plan_continuation(self, plan) -> None:
        """The explorer will continue this state (`_recover.ContinuationPlan`: its history's snapshot table, seed,
        depth and windows) if it recovers to a snapshot S_m allowed by every window with reads that agree: a
        kept, untraced host may run those operations itself right after the read-out (`continue`), in the same
        request stream, so the state costs one round trip and the host works while this process checks the
        read-out. The host decides by the same rule and makes the same operations (`reference/_continuation.py`);
        when it did not run them, `run_ops` sends them as before."""
        if self.pooled is not None and self.target.tracer is None:
            self._plan = plan

    def _send_continue(self) -> None:
        plan, self._plan = self._plan, None
        known = self.pooled[1].histories
        if plan.name not in known:
            self._send(plan.request, expected=None)   # a host that refused it refuses `continue` too: no continuation
            known.append(plan.name)
            del known[:-HISTORIES_KEPT]
        self._send(f"continue {plan.name} {plan.seed} {plan.depth} "
                   + ",".join(f"{synced}:{started}" for synced, started in plan.windows), expected=None)
        self._continuing = plan

    def _continued_answers(self, header: str, timeout_s: float | None):
        """After `continue`'s header (`continued N DIGEST`, or `continued 0 -` when the host ran nothing), its N
        answers: (DIGEST, answers), or None when it ran nothing."""
        words = header.split()
        if len(words) != 3 or words[0] != "continued" or not words[1].isdigit() or words[1] == "0":
            return None
        return words[2], [self._read_answer("continue", timeout_s) for _ in range(int(words[1]))]

    def _adopt(self, ops, reference: dict, begin: Callable[[int], None], end: Callable[[int], None]) -> tuple:
        """Judge the answers of the continuation the host ran as `run_ops` judges pipelined ones."""
        digest, answers = self._continued
        self._continued = None
        if digest != self._continuing.digest(ops) or len(answers) != len(ops):
            raise RuntimeError("crashsweep internal error: the native host ran another continuation than the "
                               "explorer's (please report it)")
        self.requests += len(ops)
        for index, (op, answer) in enumerate(zip(ops, answers)):
            begin(index)
            if answer.startswith("error"):
                raise self._error(answer[6:].strip())
            if op.kind == "get":
                actual = self._value(answer)
                if actual != reference.get(op.key):
                    return ("wrong-read", index, actual)
            elif answer != "ok":
                raise NativeEngineError(f"{op.kind} answered {answer[:200]!r}, expected 'ok'")
            elif op.kind == "put":
                reference[op.key] = op.value
            elif op.kind == "delete":
                reference.pop(op.key, None)
            end(index)
        return ("done",)

    def read_all(self, keys: list[bytes]) -> tuple[list | None, list[bytes | None]]:
        """The read-out in one round trip: (every pair, or None when the engine offers no `items`; get() of
        every key). Whether it offers `items` is open's answer — known to a kept host from its first state."""
        offers = self.offers_items
        if offers is None and self.pooled is not None:
            offers = self.pooled[1].offers_items
        if offers is None:
            self._settle()
            offers = self.offers_items
        values = self._send_gets(keys)
        answers: list[str] = []
        if offers:         # judged below: an engine that no longer offers items answers it with an error
            # A kept host may answer `items =`: "the pairs are the values `getmany` just read, in its order,
            # those that exist" — the read-out's bytes cross the pipe (and are hexed and unhexed) once, not twice.
            self._send(self.POOLED_ITEMS if self.pooled is not None else "items", expected=None, sink=answers.append)
        continuing = self._plan is not None
        if continuing:
            self._send_continue()
        self._settle(keep=1 if continuing else 0)     # the continuation's answers are read by `run_ops`
        reads = self._values_of(values, len(keys))
        if not self.offers_items:
            return None, reads
        if not answers:                       # it offers items after all (a kept host's first guess was no)
            return self._items(), reads
        if answers[0].startswith("error"):
            raise NativeEngineError(self._in_engine_terms(answers[0][6:].strip())[:2000] or "error")
        if answers[0] == "items =" and self.pooled is not None:
            return [(key, value) for key, value in zip(keys, reads) if value is not None], reads
        return self._pairs(answers[0]), reads

    def _send_gets(self, keys: list[bytes]) -> list:
        """Send the requests that read `keys`; the list fills with their answers as they are read."""
        answers: list = []
        if self.pooled is None:
            for key in keys:
                self._send(f"get {encode_hex(key)}", expected=(), sink=answers.append)
            return answers
        for start in range(0, len(keys), GET_MANY_KEYS_MAX):
            batch = keys[start:start + GET_MANY_KEYS_MAX]
            self._send("getmany " + " ".join(encode_hex(key) for key in batch), expected=(),
                       sink=lambda answer, count=len(batch): answers.append((answer, count)))
        return answers

    def _values_of(self, answers: list, count: int) -> list[bytes | None]:
        if self.pooled is None:
            return [self._value(answer) for answer in answers]
        values = []
        for answer, wanted in answers:
            word, _, rest = answer.partition(" ")
            words = rest.split()
            if word != "values" or len(words) != wanted:
                raise NativeEngineError(f"getmany answered {answer[:200]!r}")
            values += [None if text == "none" else self._decoded(text, "getmany") for text in words]
        assert len(values) == count
        return values

    @property
    def items(self):
        """The `items` request when the engine offers it (open's answer says), else None."""
        if self.offers_items is None:
            self._settle()
        return self._items if self.offers_items else None

    def _items(self):
        return self._pairs(self._ask("items"))

    def _pairs(self, answer: str) -> list[tuple[bytes, bytes]]:
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

    def finish_requests(self) -> None:
        """Before the crash: the answer to every request sent (a crash comes after what was asked, never in
        the middle of it, unless the engine hangs or the state was interrupted mid-request)."""
        if self._unread and not self.busy and self.process.poll() is None:
            try:
                self._settle(DROP_TIMEOUT_S, judged=False)
            except (NativeEngineError, OSError):
                pass

    def _release_early(self) -> None:
        """The host ran an untraced state's continuation and every answer is read: nothing more is asked of the
        engine (the explorer only judges the answers, and an untraced state is crashed no further), so the host
        is dropped now — and sent the next state's `open` — rather than after the judging (`crash`)."""
        if self.pooled is None or self.target.tracer is not None or self._unread or self.busy:
            return
        self.crash(then_open=self.target.next_prepared())
        self._released = True

    def crash(self, then_open: str | None = None) -> None:
        """Power loss: kill the engine and everything it started (a traced run: its tracer collects). A pooled
        host that answered every request forgets the engine instead (nothing of the state is looked at
        again) and serves the next state; one interrupted mid-request is killed. `then_open`: the next
        state's store directory, already written (untraced, the same engine): the host is sent its `open`
        with the `drop`, in one write, and opens it while this process finishes this state; the next
        state's engine adopts it (`_start_hosted`), or, when another state comes first, the host is replaced."""
        if self._released:
            return                           # (dropped already, `_release_early`)
        if self.pooled is not None:
            key, host = self.pooled
            self.pooled = None
            idle = _pool.get(key, [])
            if self._unread and not self.busy and self.process.poll() is None:
                try:              # answers still coming after the state ended early (the first error ends it)
                    self._settle(DROP_TIMEOUT_S, judged=False)
                except (NativeEngineError, OSError):
                    pass
            if not self.busy and not self._unread and not self._inbox and len(idle) < POOLED_PER_ENGINE_MAX \
                    and self.process.poll() is None:
                # Every answer is read: the host forgets the engine and (untraced) removes the state's directory
                # while this process goes on; its `ok` is read when the host next serves (`_dropped`).
                request = "drop"
                if self.target.tracer is None:
                    request += f" {encode_hex(os.fsencode(self.target.home))}"
                    host.removing = self.target.home
                    self.target.removed = True
                    if then_open is not None:
                        stderr_from = host.stderr_size()
                        request += "\n" + _open_request(then_open, sites=False, batch=True)
                try:
                    self.process.stdin.write(request.encode() + b"\n")
                    self.process.stdin.flush()
                except (BrokenPipeError, ConnectionResetError, ValueError):
                    host.kill()
                    return
                if self.target.tracer is None and then_open is not None:
                    host.preopened = (then_open, stderr_from)
                host.drop_pending = True
                _keep(key, host)
                return
            if not self.busy and self.process.poll() is None:
                try:
                    self._send("drop", expected=())
                    if self._settle(DROP_TIMEOUT_S, judged=False) == "ok" and not self._inbox \
                            and len(idle) < POOLED_PER_ENGINE_MAX:
                        _keep(key, host)
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
        if self.pooled is not None or any(host.process is self.process for idle in _pool.values() for host in idle):
            return                               # the pool keeps its host's streams
        for stream in (self.process.stdin, self.process.stdout, self._stderr):
            try:
                stream.close()
            except OSError:
                pass


# Work this process may do while an engine works: the next state's directory (the native medium's `ahead`).
# It runs when an answer is about to be waited for and has not arrived, so the engine and this process
# work side by side; at most once (a task that fails is dropped: its owner does the work when it needs it).
_idle: list[Callable[[], None]] = []


def when_idle(task: Callable[[], None]) -> None:
    _idle.append(task)


def cancel_idle(task: Callable[[], None]) -> None:
    if task in _idle:
        _idle.remove(task)


def _run_idle() -> None:
    while _idle:
        task = _idle.pop(0)
        try:
            task()
        except OSError:
            pass


class _PooledHost:
    """A native host process kept between states (one per engine and options, per worker process)."""

    def __init__(self, command: list[str], home: str):
        self.stderr = open(os.path.join(home, f"host-{os.getpid()}-{len(_pool)}-{id(self)}.stderr"), "wb+")
        self.offers_items: bool | None = None         # its engine's answer to `open` (the same every state)
        self.histories: list[str] = []                # the `history` tables it was sent, oldest first
        self.drop_pending = False                     # its answer to `drop` is not read yet
        self.preopened: tuple | None = None           # (store directory, stderr size) of an `open` sent with the
        #                                               last `drop`, its answer not read yet
        self.removing: str | None = None              # the state directory it was told to remove with `drop`
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
        if self.removing is not None:                 # killed before it removed the directory it was given
            shutil.rmtree(self.removing, ignore_errors=True)
            self.removing = None


# Idle kept hosts by engine and options. A state whose recovery is crashed again holds its host while its
# nested states use another: every host that served is kept (up to POOLED_PER_ENGINE_MAX) or killed, never
# forgotten alive (a forgotten host was an engine's "leftover process" to the worker).
_pool: dict[tuple, list[_PooledHost]] = {}


def _keep(key: tuple, host: _PooledHost) -> None:
    """Keep `host` idle for `key`'s next state; beyond POOLED_MAX idle hosts, end the least recently used."""
    idle = _pool.pop(key, [])
    idle.append(host)
    _pool[key] = idle                       # the most recently used key last
    for empty in [other for other, hosts in _pool.items() if not hosts]:
        del _pool[empty]
    while sum(len(hosts) for hosts in _pool.values()) > POOLED_MAX:
        oldest = next(iter(_pool))
        _pool[oldest].pop(0).kill()
        if not _pool[oldest]:
            del _pool[oldest]


def pooled_hosts() -> set[int]:
    """The pids of kept hosts: crashsweep's own processes, not an engine's leftovers."""
    return {host.process.pid for idle in _pool.values() for host in idle}


def close_pool() -> None:
    """Kill every kept host (a worker's end)."""
    while _pool:
        for host in _pool.popitem()[1]:
            host.kill()


atexit.register(close_pool)     # a process that ran states itself (a test, the API in-process) ends its hosts too
