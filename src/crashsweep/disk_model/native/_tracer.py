"""Run an engine process under strace and turn what it did into the file-system log.

Why strace (Debian's package, installed by `.ci/run` and named by the error when
missing) and not a Python ptrace binding: strace decodes every system call of every
architecture, follows threads and children (`-f`), names descriptors (`-y`), dumps
written buffers whole (`-e write=all`), unwinds native stacks (`-k`), and stops the
engine only on the calls it asks for (`--seccomp-bpf`): the engine runs at nearly full
speed, where a Python tracer would stop it on every call and decode in Python.

Invariants:
- the traced set contains every call `_recorder.py` handles (and the refused ones);
- the engine is killed, never asked to exit, when its run ends (a crash gives it no
  chance to clean up); strace itself is left to flush and exit on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time

from crashsweep.disk_model.fs._image import FsTree
from crashsweep.disk_model._processes import group_members
from crashsweep.disk_model._fds import readable
from crashsweep.disk_model.fs._log import FsLog
from crashsweep.disk_model.errors import DiskModelError
from crashsweep.disk_model.native._recorder import NativeRecorder, NativeRefusal
from crashsweep.disk_model.native._strace_lines import StraceParser

TRACED_CALLS = (
    "open,openat,openat2,creat,close,close_range,dup,dup2,dup3,fcntl,"
    "read,readv,lseek,write,pwrite64,writev,pwritev,pwritev2,"
    "truncate,ftruncate,fallocate,copy_file_range,sendfile,"
    "rename,renameat,renameat2,link,linkat,symlink,symlinkat,unlink,unlinkat,mkdir,mkdirat,rmdir,"
    "fsync,fdatasync,sync,syncfs,sync_file_range,msync,mmap,"
    "clone,clone3,fork,vfork,execve,execveat,chdir,fchdir,io_uring_setup,io_setup")
STRACE_EXIT_WAIT_S = 30.0
ATTACH_WAIT_S = 10.0
TRACE_BYTES_MAX = 2 << 30


class TracerMissing(DiskModelError):
    """strace is not installed (one line says how to install it)."""


def strace_path() -> str:
    path = shutil.which("strace")
    if path is None:
        raise TracerMissing("the native medium records system calls with strace, which is not installed "
                            "(Debian/Ubuntu: apt-get install strace)")
    return path


def strace_command(output: str, stacks: bool, attach: bool = False) -> list[str]:
    """`attach`: strace tells on stderr when it holds the process ("Process N attached"; `Tracer.attach`)."""
    quiet = "--quiet=personality,exit" if attach else "-qq"
    command = [strace_path(), "-f", quiet, "-X", "raw", "-y", "-s", "0", "-e", f"trace={TRACED_CALLS}",
               "-e", "write=all", "-e", "signal=none", "--seccomp-bpf", "-o", output]
    if stacks:
        command.insert(1, "-k")
    return command


class Tracer:
    """One traced run: `start` the engine under strace, `finish` kills it and returns the log.

    Example: `tracer = Tracer(root, trace_file, stacks=True); process = tracer.start(command, pipes...)`.
    """

    def __init__(self, root: str, trace_file: str, stacks: bool, base: FsTree | None = None,
                 ignore_mmap: tuple[str, ...] = ()):
        self.root, self.trace_file, self.stacks = root, trace_file, stacks
        self.base, self.ignore_mmap = base, ignore_mmap
        self.process: subprocess.Popen | None = None     # strace
        self.attached: int | None = None                 # the kept process strace attached to

    def wrap(self, command: list[str]) -> list[str]:
        """The engine's command run under strace (its tracees share strace's process group). A program that is
        Python program gets no native stacks: its frames are the interpreter's, and walking them for each of the
        thousand calls of its start-up costs seconds (its lines come in-band instead: `python_sites_environment`)."""
        return strace_command(self.trace_file, self.stacks and not python_program(command[0])) + ["--", *command]

    def attach(self, pid: int, native_stacks: bool = True) -> None:
        """Trace the running process `pid` (every thread, and what it starts) from now on; returns once strace
        holds every thread. `finish` then detaches (the process lives on: a kept host).

        "Holds" is strace's own word: it prints "Process N attached" once it has seized and interrupted every
        thread, and an interrupted thread makes no further call before strace restarts it traced. (A thread's
        TracerPid is set by the seize alone: calls made between the seize and the interrupt are not traced.)"""
        self.attached = pid
        stacks = self.stacks and native_stacks      # a Python engine's sites come in-band instead (SiteMarkers)
        self.process = subprocess.Popen(strace_command(self.trace_file, stacks, attach=True) + ["-p", str(pid)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + ATTACH_WAIT_S
        said = b""
        stderr = self.process.stderr.fileno()
        while f"Process {pid} attached".encode() not in said:
            left = deadline - time.monotonic()
            ready = readable(stderr, left) if left > 0 else False
            chunk = os.read(stderr, 4096) if ready else b""
            if not chunk:
                if self.process.poll() is None:
                    self.process.kill()
                self.process.wait()
                error = said.decode(errors="replace").strip()
                raise NativeRefusal(f"strace could not attach to the engine process {pid}"
                                    f"{': ' + error[:300] if error else ''} (ptrace not permitted here?)")
            said += chunk

    def finish(self, log: FsLog, protocol_pipe: str, boundaries: dict) -> FsLog:
        """Kill the engine (power loss), let strace flush, and replay its calls into `log`."""
        process = self.process
        if process is not None:
            if self.attached is not None:
                process.send_signal(signal.SIGINT)     # strace detaches (the trace ends here: the crash) and exits
            else:
                kill_tracees(process.pid)
            deadline = time.monotonic() + STRACE_EXIT_WAIT_S
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
        if process is None or not os.path.exists(self.trace_file):
            return log                          # the engine never ran under the tracer: it did nothing
        if os.path.getsize(self.trace_file) > TRACE_BYTES_MAX:
            raise NativeRefusal(f"the system-call trace passed {TRACE_BYTES_MAX >> 20} MiB: use a shorter workload")
        parser = StraceParser()
        with open(self.trace_file, encoding="utf-8", errors="surrogateescape") as lines:
            calls = parser.parse(lines)
        # A kept host may still touch earlier states' directories (an engine's thread finishing up): those are
        # no part of this state's I/O.
        recorder = NativeRecorder(log, self.root, base=self.base, protocol_pipe=protocol_pipe,
                                  boundaries=boundaries, ignore_mmap=self.ignore_mmap, track_sites=self.stacks,
                                  foreign=os.path.dirname(os.path.dirname(self.root)))
        return recorder.replay(calls)


def python_program(program: str) -> bool:
    """Whether `program` (as a command names it) is a Python interpreter, or a script whose `#!` line runs one."""
    found = shutil.which(program) or program
    names = {os.path.basename(found), os.path.basename(os.path.realpath(found))}
    if any(re.fullmatch(r"(python|pypy)[0-9.]*", name) for name in names):
        return True
    try:
        with open(found, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and re.search(rb"[/\s](python|pypy)[0-9.]*(\s|$)", first) is not None


def kill_tracees(strace_pid: int) -> None:
    """SIGKILL every process of strace's process group but strace: the engine and what it started."""
    for pid in group_members(strace_pid):
        if pid != strace_pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
