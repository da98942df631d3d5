"""A unit host: a crashsweep process that runs work units for a process that must not start engines itself.

A Dask worker is a poor parent for engine processes: it has threads (forking it is
unsafe), multiprocessing calls it "daemonic", and an engine that signals its parent
(`kill(getppid(), SIGTERM)`) would kill the Dask worker. So a Dask worker starts one
unit host (`python -m crashsweep.crash_explorer._unit_host`, a session of its own, dying
with its parent) and hands it units; the host runs them with a local executor of one
kept engine process — the same containment as on the user's machine — and answers with
their results in the wire format. SIGTERM from engine code is ignored by the host as by
crashsweep's own process (`_signals`).

Protocol over a socket pair (`multiprocessing.connection`): the parent sends
`("unit", unit)` or `None` (stop); the host answers `["results", [...]]` or
`["bypass", text]` (the engine escaped its medium).

Invariant: the host answers every unit it receives with every state's result, unless it
dies (then its parent sees EOF and the unit runs again elsewhere).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection

from crashsweep.crash_explorer import _wire
from crashsweep.crash_explorer._executor import LocalExecutor, worker_sessions
from crashsweep.crash_explorer._sandbox import die_with_parent
from crashsweep.crash_explorer._signals import sigterm_as_interrupt
from crashsweep.crash_explorer.errors import EngineBypass

REPLY_BYTES_MAX = 1 << 30


class HostDied(RuntimeError):
    """The unit host ended before answering (an engine killed it, or the machine ran out of memory)."""


class UnitHost:
    """The parent's side. Example: `UnitHost({"state_timeout_s": 10.0, ...}).run(unit)["results"]`."""

    def __init__(self, settings: dict):
        parent_end, child_end = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crashsweep.crash_explorer._unit_host", str(child_end.fileno())],
            pass_fds=(child_end.fileno(),), start_new_session=True, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_environment())
        child_end.close()
        self.connection = Connection(parent_end.detach())
        self.connection.send(settings)

    def run(self, unit: dict) -> dict:
        """`{"results": [...]}` or `{"bypass": text}`; raises HostDied when the host ended instead."""
        try:
            self.connection.send(("unit", unit))
            message, payload = _wire.decode(self.connection.recv_bytes(REPLY_BYTES_MAX))
        except (EOFError, OSError, _wire.WireError, ValueError) as error:
            self.close()
            raise HostDied(f"the unit host ended ({type(error).__name__}; exit code {self.process.poll()})") from None
        return {message: payload}

    def close(self) -> None:
        try:
            self.connection.send(None)
        except (OSError, ValueError):
            pass
        self.connection.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _environment() -> dict:
    """The host imports crashsweep as this process does (an uninstalled checkout on sys.path included)."""
    environment = dict(os.environ)
    paths = [path for path in sys.path if path]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def main(fd: int) -> int:
    connection = Connection(fd)
    die_with_parent(os.getppid())
    settings = connection.recv()
    executor = LocalExecutor(1, settings["state_timeout_s"], settings["memory_limit_bytes"], keep_workers=True,
                             setup=settings.get("setup"))
    with sigterm_as_interrupt(worker_sessions):
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            results: list[dict] = []
            try:
                executor.run([message[1]], results.append)
                reply = ["results", results]
            except EngineBypass as bypass:
                executor.close()
                reply = ["bypass", str(bypass)]
            connection.send_bytes(_wire.encode(reply))
    executor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
