"""An engine whose `sync()` runs a script of Python file calls: the differential tests generate the script.

`ScriptedFiles(path, script=JSON)` keeps its map in memory (reads are always right) and, at every
`sync()`, runs the script against files in its directory: opening files in every mode and buffering,
writing text and bytes of many sizes, flushing, seeking, truncating, fsyncing, renaming, closing; and
the `os` level (descriptors, pwrite, ftruncate, fdatasync, mkdir, rmdir, link, a directory's fsync),
pathlib and shutil. A
call that fails is skipped (the real system and the model must fail it alike; the interposition
conformance test checks the results, this engine is for the calls the OS sees).
"""

import json
import os
import pathlib
import shutil

MODES = ("w", "wb", "a", "ab", "r+", "r+b", "w+", "w+b", "a+b", "x", "xb")
NAMES = ("a", "b", "sub/c")


class ScriptedFiles:
    def __init__(self, path, script="[]"):
        self.path = path
        self.data = {}
        self.script = json.loads(script) if isinstance(script, str) else script
        self.round = 0

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def close(self):
        pass

    def sync(self):
        self.round += 1
        files, descriptors = [], []
        for call in self.script:
            try:
                if call[0].startswith("os_"):
                    self._run_os(descriptors, call)
                else:
                    self._run(files, call)
            except (OSError, ValueError, IndexError, TypeError, UnicodeError):
                pass
        for handle in files:
            try:
                handle.close()
            except (OSError, ValueError):
                pass
        for fd in descriptors:
            try:
                os.close(fd)
            except OSError:
                pass

    def _file(self, name):
        return os.path.join(self.path, name)

    def _run(self, files, call):
        kind = call[0]
        if kind == "open":
            _, name, mode, buffering = call
            if "/" in name:
                os.makedirs(os.path.dirname(self._file(name)), exist_ok=True)
            if buffering == 0 and "b" not in mode:
                buffering = -1                     # unbuffered text does not exist
            files.append(open(self._file(name), mode, buffering=buffering))
        elif kind == "write":
            _, index, size, fill = call
            handle = files[index]
            text = "b" not in handle.mode
            chunk = (f"{self.round}:{fill}-" * (size // 4 + 1))[:size]
            handle.write(chunk if text else chunk.encode())
        elif kind == "lines":
            _, index, sizes = call
            handle = files[index]
            lines = [("x" * size + "\n") for size in sizes]
            handle.writelines(lines if "b" not in handle.mode else [line.encode() for line in lines])
        elif kind == "flush":
            files[call[1]].flush()
        elif kind == "seek":
            _, index, offset, whence = call
            handle = files[index]
            if "b" in handle.mode or whence == 0:
                handle.seek(offset if whence == 0 else 0, whence) if "b" not in handle.mode \
                    else handle.seek(offset, whence)
        elif kind == "read":
            files[call[1]].read(call[2])
        elif kind == "truncate":
            _, index, size = call
            files[index].truncate(size)
        elif kind == "fsync":
            handle = files[call[1]]
            handle.flush()
            os.fsync(handle.fileno())
        elif kind == "close":
            files[call[1]].close()
        elif kind == "rename":
            os.replace(self._file(call[1]), self._file(call[2]))
        elif kind == "unlink":
            os.unlink(self._file(call[1]))
        elif kind == "mkdir":
            os.mkdir(self._file(call[1]))
        elif kind == "rmdir":
            os.rmdir(self._file(call[1]))
        elif kind == "link":
            os.link(self._file(call[1]), self._file(call[2]))
        elif kind == "path_write":
            _, name, size = call
            target = pathlib.Path(self._file(name))
            target.write_bytes(b"p" * size) if size % 2 else target.write_text("t" * size)
        elif kind == "copy":
            shutil.copyfile(self._file(call[1]), self._file(call[2]))
        elif kind == "dir_fsync":
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _run_os(self, descriptors, call):
        kind = call[0]
        if kind == "os_open":
            _, name, flags = call
            descriptors.append(os.open(self._file(name), {"create": os.O_RDWR | os.O_CREAT, "trunc": os.O_RDWR
                                                          | os.O_CREAT | os.O_TRUNC, "append": os.O_WRONLY
                                                          | os.O_CREAT | os.O_APPEND, "read": os.O_RDONLY}[flags],
                                       0o644))
        elif kind == "os_write":
            _, index, size = call
            os.write(descriptors[index], b"w%d" % size * (size // 3 + 1))
        elif kind == "os_pwrite":
            _, index, size, offset = call
            os.pwrite(descriptors[index], b"q" * size, offset)
        elif kind == "os_ftruncate":
            os.ftruncate(descriptors[call[1]], call[2])
        elif kind == "os_fsync":
            os.fsync(descriptors[call[1]])
        elif kind == "os_fdatasync":
            os.fdatasync(descriptors[call[1]])
        elif kind == "os_close":
            os.close(descriptors.pop(call[1]))
