"""System calls of a traced engine -> the file-system log (`FsLog`) the model already uses.

The engine ran on a real directory (`root`); `NativeRecorder` replays its completed
calls (`_strace_lines.Call`, in completion order) against a model of that directory
(an `FsTree` whose store directory stands for `root`) and of every traced process's
descriptors, and emits the same micro-operations the in-process model emits for the
same POSIX calls: `write`/`size` for data, `link`/`unlink`/`rename` for entries, a
sync event for fsync/fdatasync of a file or directory (sync/syncfs: every inode).
Op boundaries come in-band: the engine's answers on the protocol pipe (`pipe:[N]`)
are counted, and `boundaries[k]` says which op begins or ends once answer k is written.

What cannot be recorded faithfully is refused (`NativeRefusal`, one line), never left
untested: a writable shared mmap of a store file (unless `ignore_mmap` matches it),
io_uring, Linux AIO, O_DIRECT or O_TMPFILE on a store file, symbolic links and
RENAME_EXCHANGE in the store, fallocate's collapse/insert range, a write to a regular
file outside the store directory, and data copied into the store from outside it.

Invariants:
- descriptor tables are per process and shared by threads (clone with CLONE_FILES);
  an open file description (position, O_APPEND) is shared by dup and fork, as in Linux;
- the model tree is changed only by the micro-ops logged, so it is always the state
  a crash after the last call with everything landed would leave;
- new inodes never reuse a number the base tree has seen (as `FsSession.load`).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
from dataclasses import dataclass

from crashsweep.disk_model._bypass import InterpositionBypass
from crashsweep.disk_model._sites import shown_path
from crashsweep.disk_model.fs._image import FIRST_FREE_INODE, ROOT_INODE, FsTree
from crashsweep.disk_model.fs._log import DIRECTORY, FILE, LINK, RENAME, SIZE, UNLINK, WRITE, FsLog
from crashsweep.disk_model.native._strace_lines import Call

SITE_MARKER = b"\x00crashsweep-site\x00"   # written to /dev/null by the native host: a Python engine's line
STORE_INODE = 4                 # FsTree.initial(): /crashsweep/store
AT_FDCWD = -100
O_ACCMODE, O_WRONLY, O_RDWR = 0o3, 0o1, 0o2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0o100, 0o200, 0o1000, 0o2000
O_DIRECT, O_DIRECTORY, O_CLOEXEC, O_TMPFILE_BIT = 0o40000, 0o200000, 0o2000000, 0o20000000
O_DSYNC = 0o10000               # also set by O_SYNC: every write is durable when it returns
AT_REMOVEDIR = 0x200
RENAME_EXCHANGE = 2
CLONE_FS, CLONE_FILES, CLONE_THREAD = 0x200, 0x400, 0x10000
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 0, 1, 2, 3, 4, 0x406
FALLOC_KEEP_SIZE, FALLOC_PUNCH_HOLE, FALLOC_COLLAPSE, FALLOC_ZERO, FALLOC_INSERT = 0x1, 0x2, 0x8, 0x10, 0x20
PROT_WRITE, MAP_SHARED, MAP_SHARED_VALIDATE = 0x2, 0x1, 0x3
CLOSE_RANGE_CLOEXEC = 0x4
SEEK_KINDS = {"lseek", "llseek", "_llseek"}
CLONES = {"clone", "clone3", "fork", "vfork"}
LIBRARY_FRAMES = ("libc.so", "libc-", "ld-linux", "libpthread", "libpython", "python3", "libstdc++", "libgcc_s",
                  "libm.so", "libdl.so", "librt.so")      # file-name prefixes of frames that are not the engine's


class NativeRefusal(InterpositionBypass):
    """The engine did something whose effect on a crash cannot be recorded faithfully (one line says what)."""


@dataclass
class Description:
    """An open file description: what `open` made; dup and fork share it."""

    inode: int | None          # in the model (None: outside the store, or not a file we follow)
    outside: str               # the real path when outside the store ("" inside)
    position: int = 0
    append: bool = False
    is_dir: bool = False
    synchronous: bool = False  # O_DSYNC / O_SYNC: a write through it returns once durable (as write + fdatasync)


class Process:
    def __init__(self, table: dict, cwd: str):
        self.table = table        # fd -> [Description, cloexec]; shared by threads
        self.cwd = cwd


class NativeRecorder:
    """Example: `NativeRecorder(log, "/dev/shm/x/store").replay(calls)` fills `log` with micro-ops."""

    def __init__(self, log: FsLog, root: str, base: FsTree | None = None, protocol_pipe: str = "",
                 boundaries: dict[int, list[tuple[str, int]]] | None = None, ignore_mmap: tuple[str, ...] = (),
                 track_sites: bool = False, foreign: str = ""):
        self.log = log
        self.foreign = foreign.rstrip("/") + "/" if foreign else ""   # other states' directories: not this run's
        self.root = root.rstrip("/")
        self.tree = (base or FsTree.initial()).copy()
        used = [inode for names in self.tree.entries.values() for inode, _ in names.values()]
        self.next_inode = max([FIRST_FREE_INODE - 1, ROOT_INODE, *used, *self.tree.data, *self.tree.sizes]) + 1
        self.protocol_pipe = protocol_pipe
        self.boundaries = boundaries or {}
        self.answers = 0            # complete answer lines the engine wrote on the protocol pipe
        self.ignore_mmap = ignore_mmap
        self.track_sites = track_sites
        self.processes: dict[int, Process] = {}
        self.engine_process = Process({}, self.root)        # started (or attached to) in its store directory
        self.parents: dict[int, tuple[int, int]] = {}     # child tid -> (parent tid, clone flags)
        self.call_tasks: dict[int, int] = {}               # call number -> the tid that made it (sites only)
        self.python_sites: dict[int, str] = {}             # tid -> the Python line its calls are made at (markers)
        self._emit_boundaries(-1)

    # -- the model's namespace --
    def model_path(self, real: str) -> str | None:
        """"a/b" relative to the store for a real path inside it ("" for the store itself), else None."""
        real = posixpath.normpath(real)
        if real == self.root:
            return ""
        if real.startswith(self.root + "/"):
            return real[len(self.root) + 1:]
        return None

    def lookup(self, relative: str) -> tuple[int, str] | None:
        """(inode, kind) of a store-relative path in the model, or None."""
        inode, kind = STORE_INODE, DIRECTORY
        for name in (part for part in relative.split("/") if part):
            entry = self.tree.entries.get(inode, {}).get(name) if kind == DIRECTORY else None
            if entry is None:
                return None
            inode, kind = entry
        return inode, kind

    def parent_of(self, relative: str) -> tuple[int, str]:
        directory, _, name = relative.rpartition("/")
        found = self.lookup(directory)
        if found is None or found[1] != DIRECTORY:
            raise NativeRefusal(f"the engine changed {relative!r} in the store, but its directory is unknown to "
                                "the recording (a call crashsweep does not follow made it)")
        return found[0], name

    # -- processes and descriptors --
    def process(self, tid: int) -> Process:
        process = self.processes.get(tid)
        if process is None:
            parent = self.parents.get(tid)
            if parent is not None:       # a thread or child whose calls strace printed before its clone returned
                process = self._child_of(self.process(parent[0]), parent[1])
            else:                        # the engine itself: its first thread, or any thread it had when attached
                process = self.engine_process
            self.processes[tid] = process
        return process

    @staticmethod
    def _child_of(process: Process, flags: int) -> Process:
        table = process.table if flags & CLONE_FILES else {fd: list(entry) for fd, entry in process.table.items()}
        return Process(table, process.cwd)

    def resolve(self, call: Call, process: Process, directory_arg: int | None, path: str) -> str:
        """The real absolute path of `path` (relative to a directory descriptor or the cwd)."""
        if path.startswith("/"):
            return posixpath.normpath(path)
        base = process.cwd
        if directory_arg is not None:
            fd, shown = call.fd(directory_arg)
            if fd != AT_FDCWD:
                entry = process.table.get(fd)
                base = shown or (entry[0].outside if entry is not None else "")
                if not base:
                    raise NativeRefusal(f"{call.name}: a path relative to descriptor {fd}, which strace could not "
                                        "name")
        return posixpath.normpath(posixpath.join(base, path))

    # -- replay --
    def replay(self, calls: list[Call]) -> FsLog:
        self.parents = {call.result: (call.tid, _clone_flags(call)) for call in calls
                        if call.name in CLONES and call.result is not None and call.result > 0}
        for call in calls:
            handler = getattr(self, "_" + call.name.lstrip("_"), None)
            if call.name in SEEK_KINDS:
                handler = self._lseek
            if handler is not None and call.result is not None and call.result >= 0:
                try:
                    handler(call, self.process(call.tid))
                except (ValueError, IndexError, KeyError) as error:
                    raise NativeRefusal(f"crashsweep could not decode the engine's {call.name} call as strace "
                                        f"printed it ({str(error)[:200]})") from None
            elif call.name in ("io_uring_setup", "io_setup") and call.result is not None and call.result >= 0:
                kind = "io_uring" if call.name == "io_uring_setup" else "Linux AIO (io_setup)"
                raise NativeRefusal(f"the engine uses {kind}: its I/O completes outside the system calls "
                                    "crashsweep records")
        # Answers the harness received but strace had not printed when the engine was killed (it prints a call
        # when it returns to the engine): their operations finished, and all their I/O is above.
        for answer in sorted(key for key in self.boundaries if key >= self.answers):
            self._emit_boundaries(answer)
        self._name_tasks()
        return self.log

    def _next_call(self, call: Call) -> None:
        self.log.call += 1
        if self.track_sites:
            self.call_tasks[self.log.call] = call.tid
            site = (native_site(call.stack) if call.stack else "") or self.python_sites.get(call.tid, "")
            if site:
                self.log.sites[self.log.call] = site

    def _name_tasks(self) -> None:
        """When more than one thread or process of the engine changed the store, every site says which:
        "libx.so: Compact (thread 2)" — tasks numbered in the order they first changed it, threads of the
        first process as "thread N", other processes as "process N" (a recording's numbering is its own)."""
        tids = list(dict.fromkeys(self.call_tasks.values()))
        if len(tids) < 2:
            return
        threads, processes, labels = 0, 1, {}
        for tid in tids:
            if self._thread_of(tid, tids[0]):
                threads += 1
                labels[tid] = f"thread {threads}"
            else:
                processes += 1
                labels[tid] = f"process {processes}"
        for number, tid in self.call_tasks.items():
            site = self.log.sites.get(number, "")
            self.log.sites[number] = f"{site} ({labels[tid]})" if site else labels[tid]

    def _thread_of(self, tid: int, first: int) -> bool:
        """Whether `tid` is `first` or a thread of the same process (threads it had when attached included)."""
        return self._group(tid) == self._group(first)

    def _group(self, tid: int):
        """The process a task belongs to: the task that started it with fork/clone without CLONE_THREAD, or
        "engine" for the engine's own process (its first task and every thread it had when tracing began, and
        the threads any of them started) — siblings started by a thread that never touched the store included."""
        seen = set()
        while tid in self.parents and tid not in seen:
            seen.add(tid)
            parent, flags = self.parents[tid]
            if not flags & CLONE_THREAD:
                return tid
            tid = parent
        return "engine"

    def _emit_boundaries(self, answer: int) -> None:
        for kind, op_index in self.boundaries.get(answer, ()):
            if kind == "end":
                self.log.end_op(op_index)
            else:
                self.log.begin_op(op_index)

    def _new_inode(self) -> int:
        inode = self.next_inode
        self.next_inode += 1
        return inode

    # open, openat, openat2, creat
    def _open(self, call: Call, process: Process, directory_arg=None, path_arg=0, flags=None) -> None:
        path = self.resolve(call, process, directory_arg, call.path(path_arg))
        if flags is None:
            flags = call.number(path_arg + 1) if call.name != "creat" else O_CREAT | O_WRONLY | O_TRUNC
        relative = self.model_path(path)
        description = Description(None, path if relative is None else "", append=bool(flags & O_APPEND),
                                  synchronous=bool(flags & O_DSYNC))
        if relative is not None:
            if flags & O_TMPFILE_BIT and flags & O_DIRECTORY:
                raise NativeRefusal(f"the engine opened an O_TMPFILE in the store ({path}): not recorded")
            found = self.lookup(relative)
            if found is None:
                directory, name = self.parent_of(relative)
                inode = self._new_inode()
                self._next_call(call)
                self.log.add(LINK, inode, directory=directory, name=name, entry_kind=FILE)
                self.tree.apply(self.log.ops[-1])
                found = (inode, FILE)
            inode, kind = found
            description.inode, description.is_dir = inode, kind == DIRECTORY
            if flags & O_DIRECT and kind == FILE:
                raise NativeRefusal(f"the engine opened {path} with O_DIRECT: its writes bypass the page cache "
                                    "crashsweep models")
            if flags & O_TRUNC and kind == FILE and self.tree.sizes.get(inode, 0):
                self._next_call(call)
                self._log_size(inode, 0)
        process.table[call.result] = [description, bool(flags & O_CLOEXEC)]

    def _openat(self, call: Call, process: Process) -> None:
        if call.name == "openat2":
            flags = int(call.args[2].split("flags=")[1].split(",")[0].split("}")[0], 0)
            self._open(call, process, 0, 1, flags)
        else:
            self._open(call, process, 0, 1)

    _openat2 = _openat

    def _creat(self, call: Call, process: Process) -> None:
        self._open(call, process)

    def _description(self, process: Process, call: Call, index: int = 0) -> Description | None:
        fd, shown = call.fd(index)
        entry = process.table.get(fd)
        if entry is None:
            if shown and self.model_path(shown) is not None:
                raise NativeRefusal(f"the engine used descriptor {fd} on {shown}, which it did not open under "
                                    "tracing (inherited descriptors into the store are not followed)")
            return Description(None, shown)
        return entry[0]

    def _refuse_outside(self, description: Description, what: str) -> None:
        path = description.outside
        if self.foreign and path.startswith(self.foreign):
            return
        if path.startswith("/") and not path.startswith(("/dev/", "/proc/", "/sys/")) \
                and not path.endswith("(deleted)"):
            raise NativeRefusal(f"the engine {what} {path}, outside its store directory: crashsweep can only test "
                                "what it keeps in the store")

    # write, pwrite64, writev, pwritev, pwritev2
    def _write(self, call: Call, process: Process) -> None:
        fd, shown = call.fd(0)
        if self.protocol_pipe and shown == self.protocol_pipe:
            self._answered(call)
            return
        description = self._description(process, call)
        written = call.result
        if description.inode is None:
            if shown == os.devnull and call.data.startswith(SITE_MARKER):
                self._python_site(call)
            elif written:
                self._refuse_outside(description, "wrote to")
            return
        data = bytes(call.data[:written])
        if len(data) != written:
            raise NativeRefusal(f"strace showed {len(data)} of the {written} bytes written by {call.name}: "
                                "the recording is incomplete")
        size = self.tree.sizes.get(description.inode, 0)
        positioned = call.name in ("pwrite64", "pwritev", "pwritev2") and call.number(3) != -1
        if positioned and not description.append:        # Linux: pwrite on O_APPEND appends anyway
            offset = call.number(3)
        elif description.append:
            offset = size
            if not positioned:
                description.position = size + written
        else:
            offset = description.position
            description.position += written
        if not written:
            return
        self._next_call(call)
        self.log.add(WRITE, description.inode, offset=offset, data=data)
        self.tree.apply(self.log.ops[-1])
        if offset + written > size:
            self._log_size(description.inode, offset + written)
        if description.synchronous:
            self.log.synced(description.inode, False)

    _pwrite64 = _writev = _pwritev = _pwritev2 = _write

    def _python_site(self, call: Call) -> None:
        """A Python engine's native host told the line its thread's next calls are made at (`SiteMarkers`)."""
        if self.track_sites:
            site = bytes(call.data[len(SITE_MARKER):call.result]).decode("utf-8", "surrogateescape")
            filename, _, line = site.rpartition(":")
            self.python_sites[call.tid] = f"{shown_path(filename)}:{line}" if filename else site

    def _answered(self, call: Call) -> None:
        for _ in range(bytes(call.data[:call.result]).count(b"\n")):
            self._emit_boundaries(self.answers)
            self.answers += 1

    def _log_size(self, inode: int, size: int) -> None:
        self.log.add(SIZE, inode, size=size)
        self.tree.apply(self.log.ops[-1])

    def _read(self, call: Call, process: Process) -> None:
        fd, _ = call.fd(0)
        entry = process.table.get(fd)
        if entry is not None:
            entry[0].position += call.result

    _readv = _read

    def _lseek(self, call: Call, process: Process) -> None:
        fd, _ = call.fd(0)
        entry = process.table.get(fd)
        if entry is not None:
            entry[0].position = call.result

    def _ftruncate(self, call: Call, process: Process) -> None:
        description = self._description(process, call)
        if description.inode is None:
            self._refuse_outside(description, "truncated")
            return
        self._next_call(call)
        self._log_size(description.inode, call.number(1))

    def _truncate(self, call: Call, process: Process) -> None:
        relative = self.model_path(self.resolve(call, process, None, call.path(0)))
        if relative is None:
            return self._refuse_outside(Description(None, call.path(0)), "truncated")
        found = self.lookup(relative)
        if found is not None:
            self._next_call(call)
            self._log_size(found[0], call.number(1))

    def _fallocate(self, call: Call, process: Process) -> None:
        description = self._description(process, call)
        if description.inode is None:
            return
        mode, offset, length = call.number(1), call.number(2), call.number(3)
        if mode & (FALLOC_COLLAPSE | FALLOC_INSERT):
            raise NativeRefusal("the engine used fallocate's collapse/insert range: not recorded")
        size = self.tree.sizes.get(description.inode, 0)
        if mode & (FALLOC_PUNCH_HOLE | FALLOC_ZERO):
            end = min(offset + length, size) if mode & (FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE) else offset + length
            if end > offset:
                self._next_call(call)
                self.log.add(WRITE, description.inode, offset=offset, data=bytes(end - offset))
                self.tree.apply(self.log.ops[-1])
                if end > size:
                    self._log_size(description.inode, end)
            return
        if not mode & FALLOC_KEEP_SIZE and offset + length > size:
            self._next_call(call)
            self._log_size(description.inode, offset + length)

    def _copy(self, call: Call, process: Process, source_index: int, target_index: int,
              source_offset: str | None, target_offset: str | None) -> None:
        target = self._description(process, call, target_index)
        source = self._description(process, call, source_index)
        copied = call.result
        if target.inode is None:
            if copied:
                self._refuse_outside(target, "copied data into")
            return
        if source.inode is None:
            raise NativeRefusal(f"the engine copied data into the store from {source.outside or 'outside it'}: "
                                "those bytes are not recorded")
        start = source.position if source_offset in (None, "NULL") else _pointed(source_offset)
        if source_offset in (None, "NULL"):
            source.position += copied
        data = self.tree.content(source.inode)[start:start + copied]
        offset = target.position if target_offset in (None, "NULL") else _pointed(target_offset)
        if target_offset in (None, "NULL"):
            target.position += copied
        if not data:
            return
        size = self.tree.sizes.get(target.inode, 0)
        self._next_call(call)
        self.log.add(WRITE, target.inode, offset=offset, data=data)
        self.tree.apply(self.log.ops[-1])
        if offset + len(data) > size:
            self._log_size(target.inode, offset + len(data))

    def _copy_file_range(self, call: Call, process: Process) -> None:
        self._copy(call, process, 0, 2, call.args[1], call.args[3])

    def _sendfile(self, call: Call, process: Process) -> None:
        self._copy(call, process, 1, 0, call.args[2], None)

    _sendfile64 = _sendfile

    def _entry(self, call: Call, process: Process, directory_arg, path_arg) -> tuple[str, str | None]:
        path = self.resolve(call, process, directory_arg, call.path(path_arg))
        return path, self.model_path(path)

    def _rename(self, call: Call, process: Process) -> None:
        at = call.name != "rename"
        source_path, source = self._entry(call, process, 0 if at else None, 1 if at else 0)
        target_path, target = self._entry(call, process, 2 if at else None, 3 if at else 1)
        if call.name == "renameat2" and call.number(4) & RENAME_EXCHANGE and (source or target) is not None:
            raise NativeRefusal("the engine used renameat2(RENAME_EXCHANGE) in the store: an atomic swap is not "
                                "one of the model's micro-operations yet")
        if source is None and target is None:
            return
        if source is None or target is None:
            raise NativeRefusal(f"the engine renamed {source_path} -> {target_path} across the store's boundary")
        found = self.lookup(source)
        if found is None or source == target or self.lookup(target) == found:
            return              # POSIX: two names of the same file: rename succeeds and does nothing
        directory, name = self.parent_of(source)
        directory2, name2 = self.parent_of(target)
        self._next_call(call)
        self.log.add(RENAME, found[0], directory=directory, name=name, directory2=directory2, name2=name2,
                     entry_kind=found[1])
        self.tree.apply(self.log.ops[-1])

    _renameat = _renameat2 = _rename

    def _link(self, call: Call, process: Process) -> None:
        at = call.name == "linkat"
        source_path, source = self._entry(call, process, 0 if at else None, 1 if at else 0)
        target_path, target = self._entry(call, process, 2 if at else None, 3 if at else 1)
        if target is None:
            return
        found = self.lookup(source) if source is not None else None
        if found is None:
            raise NativeRefusal(f"the engine linked {source_path} into the store as {target_path}: its data is "
                                "not recorded")
        directory, name = self.parent_of(target)
        self._next_call(call)
        self.log.add(LINK, found[0], directory=directory, name=name, entry_kind=FILE)
        self.tree.apply(self.log.ops[-1])

    _linkat = _link

    def _symlink(self, call: Call, process: Process) -> None:
        _, target = self._entry(call, process, 1 if call.name == "symlinkat" else None,
                                2 if call.name == "symlinkat" else 1)
        if target is not None:
            raise NativeRefusal(f"the engine made a symbolic link in the store ({target}): symbolic links are not "
                                "modelled")

    _symlinkat = _symlink

    def _unlink(self, call: Call, process: Process) -> None:
        at = call.name == "unlinkat"
        _, relative = self._entry(call, process, 0 if at else None, 1 if at else 0)
        if relative is None:
            return
        found = self.lookup(relative)
        if found is None or relative == "":
            return
        directory, name = self.parent_of(relative)
        self._next_call(call)
        self.log.add(UNLINK, found[0], directory=directory, name=name, entry_kind=found[1])
        self.tree.apply(self.log.ops[-1])

    _unlinkat = _rmdir = _unlink

    def _mkdir(self, call: Call, process: Process) -> None:
        at = call.name == "mkdirat"
        _, relative = self._entry(call, process, 0 if at else None, 1 if at else 0)
        if relative is None or self.lookup(relative) is not None:
            return
        directory, name = self.parent_of(relative)
        self._next_call(call)
        self.log.add(LINK, self._new_inode(), directory=directory, name=name, entry_kind=DIRECTORY)
        self.tree.apply(self.log.ops[-1])

    _mkdirat = _mkdir

    def _fsync(self, call: Call, process: Process) -> None:
        description = self._description(process, call)
        if description.inode is not None:
            self._next_call(call)
            self.log.synced(description.inode, description.is_dir)

    _fdatasync = _fsync

    def _sync(self, call: Call, process: Process) -> None:
        """sync() and syncfs(): everything in the store is durable once they return."""
        self._next_call(call)
        for directory, names in list(self.tree.entries.items()):
            self.log.synced(directory, True)
            for inode, kind in names.values():
                if kind == FILE:
                    self.log.synced(inode, False)

    _syncfs = _sync

    def _mmap(self, call: Call, process: Process) -> None:
        if len(call.args) < 5:
            return
        prot, flags = call.number(2), call.number(3)
        fd, shown = call.fd(4)
        entry = process.table.get(fd)
        if entry is None or entry[0].inode is None or not prot & PROT_WRITE \
                or flags & MAP_SHARED_VALIDATE not in (MAP_SHARED, MAP_SHARED_VALIDATE):
            return
        name = posixpath.basename(shown) if shown else ""
        if any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(shown, pattern) for pattern in self.ignore_mmap):
            return
        raise NativeRefusal(f"the engine mapped {shown or 'a store file'} writable and shared (mmap): its writes "
                            "reach the file without system calls (use --ignore-mmap GLOB for lock or shared-memory "
                            "files whose content does not matter after a crash)")

    _mmap2 = _mmap

    def _dup(self, call: Call, process: Process, new_fd: int | None = None, cloexec: bool = False) -> None:
        fd, _ = call.fd(0)
        entry = process.table.get(fd)
        target = call.result if new_fd is None else new_fd
        if entry is None:
            process.table.pop(target, None)
            return
        if target != fd:
            process.table[target] = [entry[0], cloexec]

    def _dup2(self, call: Call, process: Process) -> None:
        self._dup(call, process, call.result)

    def _dup3(self, call: Call, process: Process) -> None:
        self._dup(call, process, call.result, bool(call.number(2) & O_CLOEXEC))

    def _fcntl(self, call: Call, process: Process) -> None:
        command = call.number(1)
        fd, _ = call.fd(0)
        entry = process.table.get(fd)
        if command in (F_DUPFD, F_DUPFD_CLOEXEC):
            self._dup(call, process, call.result, command == F_DUPFD_CLOEXEC)
        elif command == F_SETFD and entry is not None:
            entry[1] = bool(call.number(2) & 1)
        elif command == F_SETFL and entry is not None:
            entry[0].append = bool(call.number(2) & O_APPEND)

    _fcntl64 = _fcntl

    def _close(self, call: Call, process: Process) -> None:
        fd, _ = call.fd(0)
        process.table.pop(fd, None)

    def _close_range(self, call: Call, process: Process) -> None:
        first, last, flags = call.number(0), call.number(1), call.number(2)
        for fd in [fd for fd in process.table if first <= fd <= last]:
            if flags & CLOSE_RANGE_CLOEXEC:
                process.table[fd][1] = True
            else:
                del process.table[fd]

    def _clone(self, call: Call, process: Process) -> None:
        if call.result not in self.processes:        # else its first calls came first and made it already
            self.processes[call.result] = self._child_of(process, _clone_flags(call))

    _clone3 = _fork = _vfork = _clone

    def _execve(self, call: Call, process: Process) -> None:
        for fd in [fd for fd, entry in process.table.items() if entry[1]]:
            del process.table[fd]

    _execveat = _execve

    def _chdir(self, call: Call, process: Process) -> None:
        process.cwd = self.resolve(call, process, None, call.path(0))

    def _fchdir(self, call: Call, process: Process) -> None:
        fd, shown = call.fd(0)
        if shown:
            process.cwd = shown


def _clone_flags(call: Call) -> int:
    """The clone flags of clone/clone3 (fork and vfork: none, a copy of the descriptor table)."""
    if call.name == "clone3":
        text = call.args[0]
        return int(text.split("flags=")[1].split(",")[0].split("}")[0].split("|")[0], 0) if "flags=" in text else 0
    if call.name == "clone":
        flags_text = next((arg for arg in call.args if arg.startswith("flags=")), "flags=0")
        return int(flags_text[6:].split("|")[0], 0)
    return 0


def native_site(stack: list[str]) -> str:
    """The innermost frame of a native stack that is the engine's own (not libc, the loader or Python), preferring
    named code over an anonymous namespace's (LevelDB's file layer):
    "/x/libleveldb.so.1(leveldb::log::Writer::AddRecord(leveldb::Slice const&)+0x5a) [0x..]" ->
    "libleveldb.so.1: leveldb::log::Writer::AddRecord"."""
    sites = []
    for frame in stack:
        module, separator, _ = frame.partition("(")
        name = os.path.basename(module.strip())
        if name.startswith(LIBRARY_FRAMES) or name.startswith("_posixsubprocess"):
            continue
        inner = frame[frame.index("(") + 1:] if separator else ""
        inner = inner.rpartition(" [")[0] if " [" in inner else inner       # " [0xADDRESS]"
        inner = inner[:-1] if inner.endswith(")") else inner
        head, plus, offset = inner.rpartition("+")
        symbol = head if plus and offset.startswith("0x") else inner
        anonymous = "(anonymous namespace)"
        symbol = symbol.replace(anonymous, "\0").split("(")[0].replace("\0", anonymous)   # no argument list
        sites.append(f"{name}: {symbol}" if symbol else name)
    named = [site for site in sites if "anonymous namespace" not in site]
    return (named or sites or [""])[0]


def _pointed(text: str) -> int:
    """The value an in/out pointer argument held when the call began: strace prints `[0]`, or `[0] => [5]`
    once the call has updated it (sendfile's and copy_file_range's offsets)."""
    return int(text.split("=>")[0].strip().strip("[]"), 0)
