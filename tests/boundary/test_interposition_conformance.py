"""The interposition is proven, not hoped: every file-system function crashsweep serves is run against the real
OS (in a temporary directory) and against the model (under the interposition an engine gets), on call sequences
Hypothesis generates, and the two must agree on every result, every error and the final tree.

Covered: os (open with flags and dir_fd, read, write, pread, pwrite, readv, writev, lseek, ftruncate, truncate,
fstat, stat, fsync, fdatasync, close, rename, replace, unlink, mkdir, rmdir, listdir, scandir, fdopen), os.path
(exists, isfile, isdir, getsize), io/open and file objects (modes, read, write, seek, tell, truncate, flush,
readline), pathlib (write_bytes, read_bytes, exists, unlink, mkdir, iterdir, rename), tempfile (mkstemp +
fdopen, NamedTemporaryFile), shutil (copyfile, move, rmtree), functions whose defaults bound os functions at
import time, and a class that keeps `os` as a class attribute.
"""

import errno
import fcntl
import io
import os
import pathlib
import shutil
import stat
import tempfile

from hypothesis import example, HealthCheck, given, settings
from hypothesis import strategies as st

from crashsweep.disk_model import STORE_PATH, FsLog, FsTree, shared_session
from crashsweep.engines._fs_engines import interposition_scope

NAMES = ("a", "b", "d/c", "d", "e")
FLAGS = [os.O_RDONLY, os.O_WRONLY, os.O_RDWR]
EXTRA = [0, os.O_CREAT, os.O_CREAT | os.O_TRUNC, os.O_APPEND, os.O_CREAT | os.O_EXCL, os.O_CREAT | os.O_APPEND]
MODES = ("r", "rb", "w", "wb", "a", "ab", "r+b", "w+b", "a+b", "x", "xb")


def _bound_write(fd, data, _write=os.write):          # semidbm-style: os.write bound at import
    return _write(fd, data)


def _bound_open(path, flags, _open=os.open, *, _mode=0o644):
    return _open(path, flags, _mode)


class _ClassBound:
    _os = os                                          # dbm.dumb-style: os kept as a class attribute

    def size(self, path):
        return self._os.path.getsize(path)


data = st.binary(max_size=40)
name = st.sampled_from(NAMES)
handle = st.integers(0, 3)
offset = st.integers(0, 60)
calls = st.one_of(
    st.tuples(st.just("open"), name, st.sampled_from(FLAGS), st.sampled_from(EXTRA)),
    st.tuples(st.just("open_dir_fd"), name, st.sampled_from(FLAGS), st.sampled_from(EXTRA)),
    st.tuples(st.just("write"), handle, data), st.tuples(st.just("pwrite"), handle, data, offset),
    st.tuples(st.just("writev"), handle, st.lists(data, max_size=3)),
    st.tuples(st.just("read"), handle, offset), st.tuples(st.just("pread"), handle, offset, offset),
    st.tuples(st.just("readv"), handle, st.lists(st.integers(0, 9), max_size=3)),
    st.tuples(st.just("lseek"), handle, offset, st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END])),
    st.tuples(st.just("ftruncate"), handle, offset), st.tuples(st.just("truncate"), name, offset),
    st.tuples(st.just("fstat"), handle), st.tuples(st.just("stat"), name),
    st.tuples(st.just("fsync"), handle), st.tuples(st.just("fdatasync"), handle), st.tuples(st.just("close"), handle),
    st.tuples(st.just("rename"), name, name), st.tuples(st.just("replace"), name, name),
    st.tuples(st.just("unlink"), name), st.tuples(st.just("mkdir"), name), st.tuples(st.just("rmdir"), name),
    st.tuples(st.just("listdir"), st.sampled_from((".", "d"))), st.tuples(st.just("scandir"), st.sampled_from((".", "d"))),
    st.tuples(st.just("path"), name),
    st.tuples(st.just("fopen"), name, st.sampled_from(MODES)), st.tuples(st.just("fwrite"), handle, data),
    st.tuples(st.just("fread"), handle, st.integers(-1, 20)), st.tuples(st.just("fseek"), handle, offset),
    st.tuples(st.just("ftell"), handle), st.tuples(st.just("fflush"), handle), st.tuples(st.just("fclose"), handle),
    st.tuples(st.just("ftrunc"), handle), st.tuples(st.just("freadline"), handle),
    st.tuples(st.just("fdopen"), handle, st.sampled_from(("rb", "wb", "r+b", "ab"))),
    st.tuples(st.just("pathlib_write"), name, data), st.tuples(st.just("pathlib_read"), name),
    st.tuples(st.just("pathlib_unlink"), name), st.tuples(st.just("pathlib_mkdir"), name),
    st.tuples(st.just("pathlib_iterdir"), st.sampled_from((".", "d"))), st.tuples(st.just("pathlib_rename"), name, name),
    st.tuples(st.just("mkstemp_replace"), name, data), st.tuples(st.just("named_temporary"), name, data),
    st.tuples(st.just("copyfile"), name, name), st.tuples(st.just("move"), name, name),
    st.tuples(st.just("rmtree"), st.sampled_from(("d", "e"))),
    st.tuples(st.just("bound_write"), handle, data), st.tuples(st.just("bound_open"), name, st.sampled_from(EXTRA)),
    st.tuples(st.just("class_bound_size"), name),
    st.tuples(st.just("flock"), handle, st.sampled_from(("LOCK_EX", "LOCK_SH", "LOCK_UN"))),
    st.tuples(st.just("lockf"), handle, st.sampled_from(("LOCK_EX", "LOCK_UN"))),
)


class _Program:
    """Runs calls relative to `root`; every result is normalized (no descriptor numbers, no temp names)."""

    def __init__(self, root: str):
        self.root = root
        self.fds: list = []
        self.files: list = []

    def path(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    def run(self, call) -> object:
        try:
            return getattr(self, "_" + call[0])(*call[1:])
        except OSError as error:
            return ("error", errno.errorcode.get(error.errno, error.errno) if error.errno else type(error).__name__)
        except (ValueError, io.UnsupportedOperation, TypeError) as error:
            return ("error", type(error).__name__)

    def _fd(self, index):
        if not self.fds:
            raise ValueError("no descriptor")
        return self.fds[index % len(self.fds)]

    def _file(self, index):
        if not self.files:
            raise ValueError("no file object")
        return self.files[index % len(self.files)]

    def _open(self, relative, flags, extra):
        self.fds.append(os.open(self.path(relative), flags | extra, 0o644))
        return "ok"

    def _open_dir_fd(self, relative, flags, extra):
        directory = os.open(self.root, os.O_RDONLY)
        try:
            self.fds.append(os.open(relative, flags | extra, 0o644, dir_fd=directory))
        finally:
            os.close(directory)
        return "ok"

    def _write(self, index, payload):
        return os.write(self._fd(index), payload)

    def _pwrite(self, index, payload, position):
        return os.pwrite(self._fd(index), payload, position)

    def _writev(self, index, buffers):
        return os.writev(self._fd(index), buffers) if buffers else "skipped"

    def _read(self, index, count):
        return os.read(self._fd(index), count)

    def _pread(self, index, count, position):
        return os.pread(self._fd(index), count, position)

    def _readv(self, index, sizes):
        buffers = [bytearray(size) for size in sizes]
        return (os.readv(self._fd(index), buffers), [bytes(buffer) for buffer in buffers]) if buffers else "skipped"

    def _lseek(self, index, position, whence):
        return os.lseek(self._fd(index), position, whence)

    def _ftruncate(self, index, length):
        os.ftruncate(self._fd(index), length)
        return "ok"

    def _truncate(self, relative, length):
        os.truncate(self.path(relative), length)
        return "ok"

    def _fstat(self, index):
        result = os.fstat(self._fd(index))
        return "dir" if stat.S_ISDIR(result.st_mode) else result.st_size     # directory sizes differ by file system

    def _stat(self, relative):
        result = os.stat(self.path(relative))
        return (result.st_size if not os.path.isdir(self.path(relative)) else "dir")

    def _fsync(self, index):
        os.fsync(self._fd(index))
        return "ok"

    def _fdatasync(self, index):
        os.fdatasync(self._fd(index))
        return "ok"

    def _close(self, index):
        fd = self._fd(index)
        self.fds.remove(fd)
        os.close(fd)
        return "ok"

    def _rename(self, source, target):
        os.rename(self.path(source), self.path(target))
        return "ok"

    def _replace(self, source, target):
        os.replace(self.path(source), self.path(target))
        return "ok"

    def _unlink(self, relative):
        os.unlink(self.path(relative))
        return "ok"

    def _mkdir(self, relative):
        os.mkdir(self.path(relative))
        return "ok"

    def _rmdir(self, relative):
        os.rmdir(self.path(relative))
        return "ok"

    def _listdir(self, relative):
        return sorted(os.listdir(self.path(relative)))

    def _scandir(self, relative):
        with os.scandir(self.path(relative)) as entries:
            return sorted((entry.name, entry.is_dir(), entry.is_file()) for entry in entries)

    def _path(self, relative):
        full = self.path(relative)
        size = os.path.getsize(full) if os.path.isfile(full) else None
        return (os.path.exists(full), os.path.isfile(full), os.path.isdir(full), size)

    def _fopen(self, relative, mode):
        self.files.append(open(self.path(relative), mode))
        return "ok"

    def _fwrite(self, index, payload):
        handle = self._file(index)
        return handle.write(payload if "b" in handle.mode else payload.decode("latin-1"))

    def _fread(self, index, count):
        return self._file(index).read(count)

    def _fseek(self, index, position):
        return self._file(index).seek(position)

    def _ftell(self, index):
        return self._file(index).tell()

    def _fflush(self, index):
        self._file(index).flush()
        return "ok"

    def _fclose(self, index):
        handle = self._file(index)
        self.files.remove(handle)
        handle.close()
        return "ok"

    def _ftrunc(self, index):
        return self._file(index).truncate()

    def _freadline(self, index):
        return self._file(index).readline()

    def _fdopen(self, index, mode):
        fd = self._fd(index)
        self.fds.remove(fd)
        self.files.append(os.fdopen(fd, mode))
        return "ok"

    def _pathlib_write(self, relative, payload):
        return pathlib.Path(self.path(relative)).write_bytes(payload)

    def _pathlib_read(self, relative):
        return pathlib.Path(self.path(relative)).read_bytes()

    def _pathlib_unlink(self, relative):
        pathlib.Path(self.path(relative)).unlink()
        return "ok"

    def _pathlib_mkdir(self, relative):
        pathlib.Path(self.path(relative)).mkdir()
        return "ok"

    def _pathlib_iterdir(self, relative):
        return sorted(child.name for child in pathlib.Path(self.path(relative)).iterdir())

    def _pathlib_rename(self, source, target):
        pathlib.Path(self.path(source)).rename(self.path(target))
        return "ok"

    def _mkstemp_replace(self, relative, payload):
        fd, temporary = tempfile.mkstemp(dir=self.root)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return self._replace_temporary(temporary, relative)

    def _named_temporary(self, relative, payload):
        with tempfile.NamedTemporaryFile(dir=self.root, delete=False) as handle:
            handle.write(payload)
        return self._replace_temporary(handle.name, relative)

    def _replace_temporary(self, temporary, relative):
        """Temporary names are random: a temporary file never stays in the tree that is compared."""
        try:
            os.replace(temporary, self.path(relative))
        except OSError:
            os.unlink(temporary)
            raise
        return "ok"

    def _copyfile(self, source, target):
        shutil.copyfile(self.path(source), self.path(target))
        return "ok"

    def _move(self, source, target):
        shutil.move(self.path(source), self.path(target))
        return "ok"

    def _rmtree(self, relative):
        shutil.rmtree(self.path(relative))
        return "ok"

    def _bound_write(self, index, payload):
        return _bound_write(self._fd(index), payload)

    def _bound_open(self, relative, extra):
        self.fds.append(_bound_open(self.path(relative), os.O_RDWR | extra))
        return "ok"

    def _flock(self, index, operation):
        fd = self._fd(index)
        return fcntl.flock(fd, getattr(fcntl, operation) | fcntl.LOCK_NB)     # one process: never contended

    def _lockf(self, index, operation):
        fd = self._fd(index)
        if not os.fstat(fd).st_mode & 0o170000 == 0o100000:
            return "skipped"             # lockf on a directory: EBADF/EISDIR vary by file system
        return fcntl.lockf(fd, getattr(fcntl, operation) | fcntl.LOCK_NB) if operation != "LOCK_UN" else \
            fcntl.lockf(fd, fcntl.LOCK_UN)

    def _class_bound_size(self, relative):
        size = _ClassBound().size(self.path(relative))
        return "dir" if os.path.isdir(self.path(relative)) else size   # directory sizes differ by file system

    def finish(self) -> dict:
        for handle in self.files:
            try:
                handle.close()
            except (OSError, ValueError):
                pass
        for fd in self.fds:
            os.close(fd)
        tree = {}
        for directory, directories, files in os.walk(self.root):
            relative = os.path.relpath(directory, self.root)
            tree[relative] = sorted(directories)
            for file in files:
                with open(os.path.join(directory, file), "rb") as handle:
                    tree[os.path.join(relative, file)] = handle.read()
        return tree


def _run_real(program_calls):
    with tempfile.TemporaryDirectory() as root:
        program = _Program(root)
        results = [program.run(call) for call in program_calls]
        return results, program.finish()


def _run_model(program_calls):
    shared_session(FsTree.initial(), FsLog())
    with interposition_scope([__name__])(None):
        program = _Program(STORE_PATH)
        results = [program.run(call) for call in program_calls]
        return results, program.finish()


@settings(max_examples=int(os.environ.get("CRASHSWEEP_CONFORMANCE_EXAMPLES", "300")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(calls, max_size=14))
@example([("pathlib_mkdir", "d"), ("bound_open", "d/c", 64), ("pathlib_rename", "d/c", "d")])    # found by this test
@example([("fopen", "a", "a+b"), ("truncate", "a", 1), ("fwrite", 0, b"\x00"), ("ftrunc", 0)])       # found by this test
@example([("pathlib_mkdir", "a"), ("open", "a", 0, 0), ("readv", 0, [0])])    # found by this test: a read of no bytes
def test_the_model_answers_every_call_as_the_real_os_does(program_calls):
    real_results, real_tree = _run_real(program_calls)
    model_results, model_tree = _run_model(program_calls)
    for index, (real, model) in enumerate(zip(real_results, model_results)):
        assert real == model, f"call {index} {program_calls[index]!r}: real {real!r}, model {model!r}"
    assert real_tree == model_tree
