"""Run engine code in a process of its own and get plain data back, whatever the engine does.

crashsweep never runs engine code in its own process (DESIGN §5, the engine boundary).
`run_contained(function, *args)` forks a child that:

- starts a session of its own (`setsid`), so signals meant for crashsweep's terminal
  never reach it and everything it starts can be killed as one process group;
- has an address-space limit (`memory_limit_bytes`): an engine that exhausts memory
  gets MemoryError there, reported as `resource-exhausted`;
- writes stdout and stderr (the engine's prints, logging, tracebacks) to a file, of
  which at most `OUTPUT_BYTES_MAX` bytes are kept and shown, never on the terminal;
- sends the function's return value back in the wire format (`_wire.py`: data only),
  then ends with `os._exit`: no destructor, atexit hook or buffered write of the
  engine runs after its work is done.

The parent waits at most `timeout_s`, then kills the child's whole process group;
when the child ends it kills the group again, so nothing the engine started (a forked
child, a daemon) outlives the call; how many were left behind is reported.

Invariants: `run_contained` returns (never raises for anything the child did); the
outcome's status is one of `STATUSES`; its texts are capped.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

from crashsweep.disk_model._processes import group_members
from crashsweep.disk_model._fds import readable
from crashsweep.crash_explorer import _wire
from crashsweep.crash_explorer._limits import DETAIL_CHARS_MAX, OUTPUT_BYTES_MAX, cap_text

STATUSES = ("ok", "error", "died", "hang", "resource-exhausted")
POLL_INTERVAL_S = 0.05
READ_CHUNK_BYTES = 1 << 20


@dataclass
class Contained:
    status: str                 # one of STATUSES
    value: object = None        # the function's return value when status == "ok"
    detail: str = ""            # what went wrong, one line
    output: str = ""            # the child's stdout and stderr, capped
    leftovers: int = 0          # processes the child left behind (killed)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_engine_process: list[bool] = [False]


def in_engine_process() -> bool:
    """True in a process made to run engine code (a contained child or an executor worker)."""
    return _engine_process[0]


def enter_worker_process(memory_limit_bytes: int | None, output_fd: int | None) -> None:
    """What every process that runs engine code does first (contained children and executor workers):
    its own session, default signal dispositions, the memory limit, output to `output_fd`."""
    _engine_process[0] = True
    parent = os.getppid()
    try:
        os.setsid()
    except OSError:             # already a session leader
        pass
    die_with_parent(parent)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL if number != signal.SIGINT else signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    if memory_limit_bytes is not None:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = memory_limit_bytes if hard == resource.RLIM_INFINITY else min(hard, memory_limit_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    if output_fd is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)


PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when its parent dies (crashsweep killed with SIGKILL cannot stop
    its workers itself; without this they would wait forever on pipes their siblings keep open)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:      # the parent died before the request took effect
        os._exit(1)


def run_contained(function, *args, timeout_s: float, memory_limit_bytes: int | None = None) -> Contained:
    """Example: `run_contained(len, b"abc", timeout_s=5).value == 3`."""
    read_end, write_end = os.pipe()
    output = tempfile.TemporaryFile(prefix="crashsweep-output-")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:                                     # the child: never returns
        _child(read_end, write_end, output.fileno(), memory_limit_bytes, function, args)
    os.close(write_end)
    _children.add(pid)
    try:
        data, exit_status, timed_out = _collect(pid, read_end, timeout_s)
    finally:
        os.close(read_end)
        leftovers = kill_group(pid)
        _children.discard(pid)
        child_ended(pid)
    captured = read_capped(output)
    output.close()
    outcome = _outcome(data, exit_status, timed_out, timeout_s)
    outcome.output, outcome.leftovers = captured, leftovers
    return outcome


_children: set[int] = set()      # contained children alive now (their sessions are engine code's)
_after_child: list = []          # called with a child's pid once it and its group are gone


def after_each_child(hook) -> None:
    """`hook(pid)` runs after each contained child ends: what the child kept for its lifetime (it ends with
    `os._exit`, so no atexit hook of its runs) is removed there, e.g. the native medium's work directory."""
    if hook not in _after_child:
        _after_child.append(hook)


def child_ended(pid: int) -> None:
    """A process crashsweep forked (a contained child, a worker) and its group are gone: run the hooks."""
    for hook in _after_child:
        try:
            hook(pid)
        except OSError:
            pass


def engine_sessions() -> set[int]:
    """Session ids of the processes running engine code now (each is its own session leader)."""
    return set(_children)


def _child(read_end: int, write_end: int, output_fd: int, memory_limit_bytes, function, args) -> None:
    code = 0
    try:
        os.close(read_end)
        enter_worker_process(memory_limit_bytes, output_fd)
        try:
            message = {"ok": function(*args)}
        except MemoryError:
            message = {"exhausted": "the engine ran out of memory (MemoryError)"}
        except BaseException as error:     # noqa: BLE001 - whatever the engine raised, it is reported
            traceback.print_exc()
            message = {"error": cap_text(f"{type(error).__name__}: {error}", DETAIL_CHARS_MAX)}
        try:
            payload = _wire.encode(message)
        except MemoryError:
            payload = _wire.encode({"exhausted": "the result did not fit in memory"})
        except Exception as error:         # noqa: BLE001 - a value that is not data
            payload = _wire.encode({"error": f"the result could not be sent: {type(error).__name__}"})
        view = memoryview(payload)
        while view:
            view = view[os.write(write_end, view):]
    except BaseException:                  # noqa: BLE001 - nothing may escape into the parent's code
        code = 70
    finally:
        os._exit(code)


def _collect(pid: int, read_end: int, timeout_s: float) -> tuple[bytes, int | None, bool]:
    """Read the child's message until it exits (or the time is up); (data, wait status or None, timed out)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    open_pipe = True
    while True:
        if open_pipe:
            ready = readable(read_end, POLL_INTERVAL_S)
            if ready:
                chunk = os.read(read_end, READ_CHUNK_BYTES)
                if chunk:
                    chunks.append(chunk)
                else:
                    open_pipe = False
        else:
            time.sleep(POLL_INTERVAL_S / 5)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            if open_pipe:                    # drain what it wrote (a grandchild may hold the pipe open)
                while readable(read_end, 0):
                    chunk = os.read(read_end, READ_CHUNK_BYTES)
                    if not chunk:
                        break
                    chunks.append(chunk)
            return b"".join(chunks), status, False
        if time.monotonic() > deadline:
            kill_group(pid)
            os.waitpid(pid, 0)
            return b"".join(chunks), None, True


def kill_group(pgid: int) -> int:
    """Kill every process left in group `pgid`; how many there were (0 when the group is empty)."""
    members = group_members(pgid)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return len([member for member in members if member != pgid])


def kill_children(kept: set[int] = frozenset()) -> int:
    """Kill and reap this process's own child processes (an engine's forks) but `kept` (crashsweep's own:
    pooled native hosts); how many there were. Cheap: run after every state. With nothing kept, one `waitid`
    (which answers for every thread's children) says when there is no child at all, the common case (~1 µs);
    otherwise /proc/self/task/*/children names them (~10 µs)."""
    if not kept and not _has_children():
        return 0
    pids = set()
    try:     # (`os` itself, not `open`: a worker runs this inside the file-system model's interposition)
        for task in os.listdir("/proc/self/task"):
            fd = os.open(f"/proc/self/task/{task}/children", os.O_RDONLY)
            try:
                pids.update(int(pid) for pid in _read_all(fd).split())
            finally:
                os.close(fd)
    except OSError:
        return 0
    pids -= kept
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return len(pids)


def _has_children() -> bool:
    """Whether this process has a child, running or exited and not yet reaped (none is reaped here)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except OSError:      # (waitid unavailable or refused: look at /proc)
        return True
    return True


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def kill_group_except_self(kept: set[int] = frozenset()) -> int:
    """Kill every other process of this process's group (an engine's forks that outlived their parent)."""
    me = os.getpid()
    members = [pid for pid in group_members(os.getpgid(0)) if pid != me and pid not in kept]
    for pid in members:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    kill_children(kept)
    return len(members)


def read_capped(handle, limit: int = OUTPUT_BYTES_MAX) -> str:
    """The first `limit` bytes of an output file as text (and how much was cut)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    data = handle.read(limit)
    text = data.decode("utf-8", "replace")
    if size > limit:
        text += f"\n[... {size - limit:,} more bytes of output not kept]"
    return text


def _outcome(data: bytes, status: int | None, timed_out: bool, timeout_s: float) -> Contained:
    if timed_out:
        return Contained("hang", detail=f"did not finish in {timeout_s:g} s and was killed")
    message = None
    if data:
        try:
            message = _wire.decode(data)
        except _wire.WireError as error:
            return Contained("died", detail=f"sent a malformed result ({error})")
    if isinstance(message, dict) and len(message) == 1:
        if "ok" in message:
            return Contained("ok", value=message["ok"])
        if "exhausted" in message:
            return Contained("resource-exhausted", detail=str(message["exhausted"]))
        if "error" in message:
            return Contained("error", detail=str(message["error"]))
    return Contained("died", detail=describe_exit(status))


def describe_exit(status: int | None) -> str:
    """A wait status in words: 'killed by signal 9 (SIGKILL)', 'exited with code 3'."""
    if status is None:
        return "ended without a result"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {number} ({name})"
    return f"exited with code {os.WEXITSTATUS(status)} without a result"
