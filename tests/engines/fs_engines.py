"""Small file engines for the file-system model: three correct, six with a classic crash-consistency bug, two
that fail only after a recovery (in the continuation), and one that runs a script of file calls
(`ScriptedFiles`, for the differential tests of the recording).

Each follows the engine protocol of DESIGN §4 (`Store(path)`), uses only the
ordinary file API, and knows nothing of crashsweep.
"""

import json
import os
import pathlib
import shutil
import struct
import zlib


class _MapEngine:
    """Shared in-memory map; subclasses decide how `sync()` persists it."""

    def __init__(self, path):
        self.path = path
        self.data = {}

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def close(self):
        pass

    def _encode(self):
        return json.dumps({k.hex(): v.hex() for k, v in sorted(self.data.items())})

    def _decode(self, text):
        return {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.loads(text).items()}


def _fsync_directory(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicReplace(_MapEngine):
    """Correct: write a temporary file, fsync it, rename it over the old one, fsync the directory."""

    def __init__(self, path):
        super().__init__(path)
        self.file = os.path.join(path, "map.json")
        if os.path.exists(self.file):
            with open(self.file) as handle:
                self.data = self._decode(handle.read())

    def sync(self):
        temporary = self.file + ".tmp"
        with open(temporary, "w") as handle:
            handle.write(self._encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.file)
        _fsync_directory(self.path)


class RenameWithoutFsync(AtomicReplace):
    """Bug: the temporary file is renamed over the old one before its data is durable."""

    def sync(self):
        temporary = self.file + ".tmp"
        with open(temporary, "w") as handle:
            handle.write(self._encode())
        os.replace(temporary, self.file)
        _fsync_directory(self.path)


class MissingDirectoryFsync(AtomicReplace):
    """Bug: the rename is never made durable (no fsync of the directory)."""

    def sync(self):
        temporary = self.file + ".tmp"
        with open(temporary, "w") as handle:
            handle.write(self._encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.file)


class StaleAfterRecovery(AtomicReplace):
    """Bug: a key recovered from disk is still read after it is deleted (the delete forgets only new keys)."""

    def __init__(self, path):
        super().__init__(path)
        self.recovered = set(self.data)

    def delete(self, key):
        if key not in self.recovered:
            super().delete(key)


class SyncFailsAfterRecovery(AtomicReplace):
    """Bug: once it recovered two keys or more, every sync fails with an OSError."""

    def __init__(self, path):
        super().__init__(path)
        self.refuse = len(self.data) >= 2

    def sync(self):
        if self.refuse:
            raise OSError("sync refused after recovery")
        super().sync()


class LinkCommit(_MapEngine):
    """Correct: write `data.new` anew, fsync it, hard-link it as the next generation `data.N`, fsync the
    directory, unlink `data.new`; recovery reads the highest generation. A crash between the link and the
    unlink leaves one file under two names."""

    def __init__(self, path):
        super().__init__(path)
        generations = [int(name[5:]) for name in os.listdir(path) if name.startswith("data.") and name[5:].isdigit()]
        self.generation = max(generations, default=0)
        if generations:
            with open(os.path.join(path, f"data.{self.generation}")) as handle:
                self.data = self._decode(handle.read())

    def sync(self):
        fresh = os.path.join(self.path, "data.new")
        if os.path.exists(fresh):
            os.unlink(fresh)        # may still be a committed generation's other name: never write through it
        with open(fresh, "w") as handle:
            handle.write(self._encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.link(fresh, os.path.join(self.path, f"data.{self.generation + 1}"))
        _fsync_directory(self.path)
        os.unlink(fresh)
        self.generation += 1


class FlushOnlyLog:
    """Bug: appends a JSON line per put and delete, and its sync flushes without fsync (nothing is durable)."""

    def __init__(self, path):
        self.file = os.path.join(path, "log.jsonl")
        self.data = {}
        if os.path.exists(self.file):
            with open(self.file) as handle:
                for line in handle:
                    if not line.endswith("\n"):
                        break
                    key, value = json.loads(line)
                    if value is None:
                        self.data.pop(key, None)
                    else:
                        self.data[key] = value
        self.handle = open(self.file, "a")

    def put(self, key, value):
        self.data[key.hex()] = value.hex()
        self.handle.write(json.dumps([key.hex(), value.hex()]) + "\n")

    def get(self, key):
        value = self.data.get(key.hex())
        return None if value is None else bytes.fromhex(value)

    def delete(self, key):
        self.data.pop(key.hex(), None)
        self.handle.write(json.dumps([key.hex(), None]) + "\n")

    def sync(self):
        self.handle.flush()

    def close(self):
        self.handle.close()


class ChecksummedLog:
    """Correct: an append-only log of checksummed records; recovery keeps the valid prefix and cuts the rest."""

    HEADER = struct.Struct("<II")   # length, crc32 of the payload

    def __init__(self, path):
        self.file = os.path.join(path, "log")
        created = not os.path.exists(self.file)
        self.fd = os.open(self.file, os.O_RDWR | os.O_CREAT)
        if created:
            os.fsync(self.fd)
            _fsync_directory(path)
        self.data = {}
        self.end = self._replay()
        if self.end != os.fstat(self.fd).st_size:
            os.ftruncate(self.fd, self.end)
            os.fsync(self.fd)

    def _replay(self):
        content = os.pread(self.fd, os.fstat(self.fd).st_size, 0)
        position = 0
        while position + self.HEADER.size <= len(content):
            length, crc = self.HEADER.unpack_from(content, position)
            payload = content[position + self.HEADER.size:position + self.HEADER.size + length]
            if length == 0 or len(payload) < length or zlib.crc32(payload) != crc:
                break
            self._apply(payload)
            position += self.HEADER.size + length
        return position

    def _apply(self, payload):
        kind, key, value = payload[:1], *payload[1:].split(b"\0", 1)
        if kind == b"p":
            self.data[bytes.fromhex(key.decode())] = bytes.fromhex(value.decode())
        else:
            self.data.pop(bytes.fromhex(key.decode()), None)

    def _append(self, payload):
        record = self.HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        os.pwrite(self.fd, record, self.end)
        self.end += len(record)
        self._apply(payload)

    def put(self, key, value):
        self._append(b"p" + key.hex().encode() + b"\0" + value.hex().encode())

    def delete(self, key):
        self._append(b"d" + key.hex().encode() + b"\0")

    def get(self, key):
        return self.data.get(key)

    def sync(self):
        os.fsync(self.fd)

    def close(self):
        os.close(self.fd)


class TornAppendNoChecksum:
    """Bug: a text log of `key value` lines, trusted without a checksum (a torn or zero-filled tail is read as data)."""

    def __init__(self, path):
        self.file = os.path.join(path, "log.txt")
        self.data = {}
        if os.path.exists(self.file):
            with open(self.file, "rb") as handle:
                for line in handle.read().split(b"\n"):
                    if line:
                        key, _, value = line.partition(b" ")
                        if value == b"-":
                            self.data.pop(bytes.fromhex(key.decode("latin-1")), None)
                        else:
                            self.data[bytes.fromhex(key.decode("latin-1"))] = bytes.fromhex(value.decode("latin-1"))
        else:
            open(self.file, "wb").close()
            _fsync_directory(path)
        self.handle = open(self.file, "ab")

    def put(self, key, value):
        self.handle.write(key.hex().encode() + b" " + value.hex().encode() + b"\n")
        self.data[key] = value

    def delete(self, key):
        self.handle.write(key.hex().encode() + b" -\n")
        self.data.pop(key, None)

    def get(self, key):
        return self.data.get(key)

    def sync(self):
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self):
        self.handle.close()


class WrongOrderTwoFiles(_MapEngine):
    """Bug: values go to `values`, their offsets to `index`; sync makes the index durable before the values."""

    def __init__(self, path):
        super().__init__(path)
        self.values = os.path.join(path, "values")
        self.index = os.path.join(path, "index.json")
        if os.path.exists(self.index):
            with open(self.index) as handle, open(self.values, "rb") as values:
                content = values.read()
                for key, (offset, length) in json.loads(handle.read()).items():
                    self.data[bytes.fromhex(key)] = content[offset:offset + length]
        else:
            for name in (self.values, self.index):
                with open(name, "w") as handle:
                    handle.write("" if name == self.values else "{}")
                    handle.flush()
                    os.fsync(handle.fileno())
            _fsync_directory(path)

    def sync(self):
        with open(self.values, "ab") as values:
            offsets = {}
            position = values.tell()
            for key, value in sorted(self.data.items()):
                values.write(value)
                offsets[key.hex()] = (position, len(value))
                position += len(value)
            with open(self.index, "r+") as index:
                index.write(json.dumps(offsets))
                index.truncate()
                index.flush()
                os.fsync(index.fileno())
            values.flush()
            os.fsync(values.fileno())


class InPlaceUpdate:
    """Bug: one 16 KiB slot per key, updated in place; a crash can keep a later put and lose an earlier one."""

    SLOT = 16384
    HEADER = struct.Struct("<HH")     # key length, value length (DELETED: no value)
    DELETED = 0xFFFF

    def __init__(self, path):
        self.file = os.path.join(path, "slots")
        created = not os.path.exists(self.file)
        self.fd = os.open(self.file, os.O_RDWR | os.O_CREAT)
        if created:
            os.fsync(self.fd)
            _fsync_directory(path)
        self.slots = {}
        self.data = {}
        content = os.pread(self.fd, os.fstat(self.fd).st_size, 0)
        for number in range(len(content) // self.SLOT):
            slot = content[number * self.SLOT:(number + 1) * self.SLOT]
            key_length, value_length = self.HEADER.unpack_from(slot)
            key = slot[4:4 + key_length]
            if key_length:
                self.slots[key] = number
                if value_length != self.DELETED:
                    self.data[key] = slot[4 + key_length:4 + key_length + value_length]

    def _write(self, key, value):
        assert 4 + len(key) + len(value or b"") <= self.SLOT, "this engine keeps values up to a slot"
        number = self.slots.setdefault(key, len(self.slots))
        body = self.HEADER.pack(len(key), self.DELETED if value is None else len(value)) + key + (value or b"")
        os.pwrite(self.fd, body.ljust(self.SLOT, b"\0"), number * self.SLOT)

    def put(self, key, value):
        self._write(key, value)
        self.data[key] = value

    def delete(self, key):
        if key in self.data:
            self._write(key, None)
            del self.data[key]

    def get(self, key):
        return self.data.get(key)

    def sync(self):
        os.fsync(self.fd)

    def close(self):
        os.close(self.fd)


class ScriptedFiles(_MapEngine):
    """Keeps its map in memory (reads are always right) and, at every `sync()`, runs `script` (JSON, which the
    differential tests generate) against files in its directory: opening files in every mode and buffering,
    writing text and bytes of many sizes, flushing, seeking, truncating, fsyncing, renaming, closing; and the
    `os` level (descriptors, pwrite, ftruncate, fdatasync, mkdir, rmdir, link, a directory's fsync), pathlib
    and shutil. A call that fails is skipped (the real system and the model must fail it alike; the
    interposition conformance test checks results, this engine the calls the OS sees)."""

    def __init__(self, path, script="[]"):
        super().__init__(path)
        self.script = json.loads(script) if isinstance(script, str) else script
        self.round = 0

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
