"""Engines that go around their simulated medium (each must stop the sweep with exit 2, naming the call and
its line), engines that only look like they do (anonymous mmap), and correct engines that use the less common
file APIs (tempfile + fdopen, functions with os functions bound as default arguments, flock)."""

import fcntl
import json
import mmap
import os
import subprocess
import tempfile


class _JsonStore:
    def __init__(self, path):
        self.path, self.file, self.data = path, os.path.join(path, "db.json"), {}
        if os.path.exists(self.file):
            with open(self.file) as handle:
                self.data = {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.load(handle).items()}

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def _encoded(self):
        return json.dumps({k.hex(): v.hex() for k, v in self.data.items()}).encode()

    def _fsync_directory(self):
        descriptor = os.open(self.path, os.O_RDONLY)
        os.fsync(descriptor)
        os.close(descriptor)

    def sync(self):
        fd, temporary = tempfile.mkstemp(dir=self.path)      # mkstemp + fdopen + rename: correct
        with os.fdopen(fd, "wb") as handle:
            handle.write(self._encoded())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.file)
        self._fsync_directory()

    def close(self):
        pass


class StartsAProgram(_JsonStore):
    def sync(self):
        subprocess.run(["true"], check=True)          # BYPASS: subprocess
        super().sync()


class RunsOsSystem(_JsonStore):
    def sync(self):
        os.system("true")                             # BYPASS: os.system
        super().sync()


class UsesSqlite3(_JsonStore):
    def sync(self):
        import sqlite3
        sqlite3.connect(os.path.join(self.path, "x.db"))   # BYPASS that raises (the path exists only in the model)


class MapsItsFile(_JsonStore):
    def sync(self):
        super().sync()
        with open(self.file, "r+b") as handle:
            mmap.mmap(handle.fileno(), 0)             # BYPASS: mmap of a model descriptor


class MakesASymlink(_JsonStore):
    def sync(self):
        super().sync()
        try:
            os.symlink("map.json", os.path.join(self.path, "current"))
        except OSError:
            pass                          # a failure it ignores does not hide the call


class RecoversThroughAProgram(_JsonStore):
    def __init__(self, path):
        super().__init__(path)
        if self.data:
            subprocess.run(["true"], check=True)      # BYPASS, only while recovering (in a worker)


class AnonymousMemory(_JsonStore):
    def sync(self):
        scratch = mmap.mmap(-1, 4096)                 # no file: memory only, no bypass
        scratch[:2] = b"ok"
        scratch.close()
        super().sync()


class DefaultArguments(_JsonStore):
    def sync(self, _open=os.open, _write=os.write, _fsync=os.fsync, _close=os.close):   # bound at import
        temporary = self.file + ".tmp"
        fd = _open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        _write(fd, self._encoded())
        _fsync(fd)
        _close(fd)
        os.replace(temporary, self.file)
        self._fsync_directory()


class LocksItsFile(_JsonStore):
    def __init__(self, path):
        super().__init__(path)
        self.lock = os.open(os.path.join(path, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


class WritesARealFile:
    """A block engine that keeps a side file on the real file system (BYPASS)."""

    def __init__(self, device):
        self.device, self.data = device, {}

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def sync(self):
        with open(os.path.join(tempfile.gettempdir(), "crashsweep-test-side-file"), "w") as handle:
            handle.write("side")

    def close(self):
        pass
