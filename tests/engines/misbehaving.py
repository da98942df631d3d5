"""A correct path engine that misbehaves on command, to prove crashsweep contains whatever an engine does.

`--option mode=M --option when=record|recover|continue`: at its first open (`record`, no data on disk
yet), at every open that finds data (`recover`, i.e. recovering a crash state), or at every sync of a
store opened on data (`continue`: the continuation after a recovery) it does M:

raise, exit, kill (SIGKILL itself), segfault, sigterm-parent (then goes on normally),
fork-linger (leaves a child process sleeping), memory (allocates until it cannot),
recursion, keyboard-interrupt, huge-message (raises with 16 MB of text), print-flood
(prints and logs 1 MB), slow (takes 0.2 s, then goes on normally), none.
"""

import json
import logging
import os
import signal
import sys
import time


def _misbehave(mode):
    if mode == "raise":
        raise RuntimeError("engine exploded")
    if mode == "exit":
        sys.exit(3)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "segfault":
        import ctypes
        ctypes.string_at(0)
    if mode == "sigterm-parent":
        os.kill(os.getppid(), signal.SIGTERM)
    if mode == "fork-linger":
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
    if mode == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(64 << 20))
    if mode == "recursion":
        def deeper(n):
            return deeper(n + 1) + 1
        deeper(0)
    if mode == "keyboard-interrupt":
        raise KeyboardInterrupt
    if mode == "huge-message":
        raise RuntimeError("x" * 16_000_000)
    if mode == "slow":
        time.sleep(0.2)
    if mode == "print-flood":
        for index in range(10_000):
            print(f"engine chatter line {index} " + "." * 80)
            logging.getLogger("engine").warning("engine log line %d", index)


class Misbehaving:
    """Atomic JSON rewrite (correct), misbehaving on command."""

    def __init__(self, path, mode="none", when="recover"):
        self.file = os.path.join(path, "db.json")
        self.path = path
        self.data = {}
        exists = os.path.exists(self.file)
        if exists:
            with open(self.file) as handle:
                self.data = {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.load(handle).items()}
        self.mode = mode if when == "continue" and exists else None
        if when != "continue" and (when == "recover") == exists:
            _misbehave(mode)

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def sync(self):
        if self.mode is not None:
            _misbehave(self.mode)
        temporary = self.file + ".tmp"
        with open(temporary, "w") as handle:
            json.dump({k.hex(): v.hex() for k, v in self.data.items()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.file)
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def close(self):
        pass
