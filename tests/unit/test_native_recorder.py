"""The native recorder against the real kernel: a program's file calls, traced and replayed into micro-ops,
must leave the model's tree equal to the directory the program really left (differential), and what cannot
be recorded faithfully must be refused in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crashsweep.disk_model import FsLog, FsTree
from crashsweep.disk_model.native import NativeRecorder, NativeRefusal, StraceParser, materialize, native_site
from crashsweep.disk_model.native._tracer import strace_command

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (.ci/run installs it)")

STEPS = st.lists(st.one_of(
    st.tuples(st.just("write"), st.sampled_from("abc"), st.integers(0, 9000), st.integers(1, 5000)),
    st.tuples(st.just("append"), st.sampled_from("abc"), st.integers(1, 3000)),
    st.tuples(st.just("truncate"), st.sampled_from("abc"), st.integers(0, 6000)),
    st.tuples(st.just("rename"), st.sampled_from("abc"), st.sampled_from(["a", "b", "c", "d/e"])),
    st.tuples(st.just("unlink"), st.sampled_from("abc")),
    st.tuples(st.just("link"), st.sampled_from("abc"), st.sampled_from(["l1", "d/l2"])),
    st.tuples(st.just("dup-write"), st.sampled_from("abc"), st.integers(1, 100)),
    st.tuples(st.just("fork-write"), st.sampled_from("abc"), st.integers(1, 100)),
    st.tuples(st.just("punch"), st.sampled_from("abc"), st.integers(0, 4096), st.integers(1, 8192)),
    st.tuples(st.just("copy"), st.sampled_from("abc"), st.sampled_from("abc")),
    st.tuples(st.just("fsync"), st.sampled_from(["a", "b", "c", "."])),
    st.tuples(st.just("thread-write"), st.sampled_from("abc"), st.integers(1, 3000)),
), min_size=1, max_size=14)

PROGRAM = textwrap.dedent('''
    import json, os, sys
    root = sys.argv[1]
    os.mkdir(os.path.join(root, "d"))
    def path(name): return os.path.join(root, name)
    for step in json.loads(sys.argv[2]):
        kind, name = step[0], step[1]
        try:
            if kind == "write":
                fd = os.open(path(name), os.O_RDWR | os.O_CREAT, 0o644)
                os.lseek(fd, step[2], os.SEEK_SET); os.write(fd, bytes([step[3] % 251]) * step[3]); os.close(fd)
            elif kind == "append":
                with open(path(name), "ab") as handle: handle.write(b"x" * step[2])
            elif kind == "truncate":
                os.truncate(path(name), step[2])
            elif kind == "rename":
                os.rename(path(name), path(step[2]))
            elif kind == "unlink":
                os.unlink(path(name))
            elif kind == "link":
                os.link(path(name), path(step[2]))
            elif kind == "dup-write":
                fd = os.open(path(name), os.O_WRONLY | os.O_CREAT, 0o644); other = os.dup(fd)
                os.write(fd, b"1" * step[2]); os.write(other, b"2" * step[2]); os.close(fd); os.close(other)
            elif kind == "fork-write":
                fd = os.open(path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                child = os.fork()
                if child == 0:
                    os.write(fd, b"c" * step[2]); os._exit(0)
                os.waitpid(child, 0); os.write(fd, b"p" * step[2]); os.close(fd)
            elif kind == "punch":
                fd = os.open(path(name), os.O_RDWR)
                os.posix_fallocate(fd, 0, 1)
                import fcntl, ctypes
                libc = ctypes.CDLL(None, use_errno=True)
                libc.fallocate(fd, 3, ctypes.c_long(step[2]), ctypes.c_long(step[3]))
                os.close(fd)
            elif kind == "copy":
                source = os.open(path(name), os.O_RDONLY); target = os.open(path(step[2]), os.O_WRONLY | os.O_CREAT)
                os.copy_file_range(source, target, 5000, 0, 100); os.close(source); os.close(target)
            elif kind == "thread-write":      # a thread opens, writes and syncs on its own (a background flusher)
                import threading
                def flush():
                    fd = os.open(path(name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    os.write(fd, b"t" * step[2]); os.fdatasync(fd); os.close(fd)
                thread = threading.Thread(target=flush); thread.start(); thread.join()
            elif kind == "fsync":
                fd = os.open(path(name), os.O_RDONLY); os.fsync(fd); os.close(fd)
        except OSError:
            pass
''')


def _trace(tmp_path, program: str, *arguments: str) -> tuple[str, list]:
    root = tmp_path / "store"
    root.mkdir()
    trace = tmp_path / "trace"
    command = strace_command(str(trace), stacks=False) + ["--", sys.executable, "-c", program, str(root), *arguments]
    subprocess.run(command, check=True, cwd=root, timeout=60)
    parser = StraceParser()
    with open(trace, encoding="utf-8", errors="surrogateescape") as lines:
        return str(root), parser.parse(lines)


def _real_files(root: str) -> dict[str, bytes]:
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                files["/crashsweep/store/" + os.path.relpath(path, root)] = handle.read()
    return files


@settings(max_examples=int(os.environ.get("CRASHSWEEP_NATIVE_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=STEPS)
def test_replayed_micro_ops_leave_the_tree_the_kernel_left(tmp_path_factory, steps):
    import json
    tmp_path = tmp_path_factory.mktemp("native")
    root, calls = _trace(tmp_path, PROGRAM, json.dumps(steps))
    log = NativeRecorder(FsLog(), root).replay(calls)
    tree = FsTree.initial()
    for op in log.ops:
        tree.apply(op)
    assert tree.files() == _real_files(root)


def test_materialized_state_reads_back_as_the_tree(tmp_path):
    tree = FsTree.initial()
    log = FsLog()
    log.add("link", 20, directory=4, name="a", entry_kind="file")
    log.add("write", 20, offset=4096, data=b"z" * 10)
    log.add("size", 20, size=8000)
    log.add("link", 21, directory=4, name="sub", entry_kind="dir")
    log.add("link", 20, directory=21, name="hard", entry_kind="file")
    for op in log.ops:
        tree.apply(op)
    materialize(tree, str(tmp_path / "store"))
    assert _real_files(str(tmp_path / "store")) == tree.files()
    assert os.stat(tmp_path / "store" / "a").st_ino == os.stat(tmp_path / "store" / "sub" / "hard").st_ino


@pytest.mark.parametrize("program, refused", [
    ("import mmap, os, sys; fd = os.open(sys.argv[1] + '/m', os.O_RDWR | os.O_CREAT); os.ftruncate(fd, 4096); "
     "mmap.mmap(fd, 4096)[0:1] = b'x'", "mapped"),
    ("import os, sys, tempfile; f = tempfile.NamedTemporaryFile(delete=False); f.write(b'x'); f.flush()",
     "outside its store directory"),
    ("import os, sys; os.symlink('x', sys.argv[1] + '/link')", "symbolic link"),
])
def test_what_cannot_be_recorded_is_refused_in_one_line(tmp_path, program, refused):
    root, calls = _trace(tmp_path, program)
    with pytest.raises(NativeRefusal, match=refused) as raised:
        NativeRecorder(FsLog(), root).replay(calls)
    assert "\n" not in str(raised.value)


def test_an_ignored_mmap_glob_is_not_refused(tmp_path):
    program = ("import mmap, os, sys; fd = os.open(sys.argv[1] + '/lock.mdb', os.O_RDWR | os.O_CREAT); "
               "os.ftruncate(fd, 4096); mmap.mmap(fd, 4096)[0:1] = b'x'")
    root, calls = _trace(tmp_path, program)
    log = NativeRecorder(FsLog(), root, ignore_mmap=("lock.mdb",)).replay(calls)
    assert [op.name for op in log.ops if op.kind == "link"] == ["lock.mdb"]


def test_a_call_interrupted_by_another_thread_is_joined():
    lines = ['7 pwrite64(3</s/a>, ""..., 2, 10 <unfinished ...>',
             '8 fsync(4</s/b>) = 0',
             '7 <... pwrite64 resumed>) = 2',
             ' | 00000  68 69                                             hi               |']
    calls = StraceParser().parse(lines)
    assert [(call.tid, call.name, call.result) for call in calls] == [(8, "fsync", 0), (7, "pwrite64", 2)]
    assert calls[1].data == b"hi" and calls[1].number(3) == 10 and calls[1].fd(0) == (3, "/s/a")


def test_a_thread_whose_calls_come_before_its_clone_returns_shares_the_descriptor_table():
    """strace -f often prints a new thread's first calls before the clone that made it returns in its parent."""
    lines = ['7 openat(-100</r>, "/r/a", 0x42, 0644) = 3</r/a>',
             '9 write(3</r/a>, ""..., 2) = 2',
             ' | 00000  68 69                                             hi               |',
             '7 clone(child_stack=0x7f, flags=0x3d0f00|0, parent_tid=[9]) = 9',
             '9 write(3</r/a>, ""..., 1) = 1',
             ' | 00000  21                                                !                |']
    log = NativeRecorder(FsLog(), "/r").replay(StraceParser().parse(lines))
    tree = FsTree.initial()
    for op in log.ops:
        tree.apply(op)
    assert tree.files() == {"/crashsweep/store/a": b"hi!"}


def test_threads_an_attached_engine_already_had_share_its_descriptors():
    """Attached to a running process, strace shows its existing threads with no clone: they are one process."""
    lines = ['7 openat(-100</r>, "/r/a", 0x42, 0644) = 3</r/a>',
             '8 write(3</r/a>, ""..., 2) = 2',
             ' | 00000  68 69                                             hi               |']
    log = NativeRecorder(FsLog(), "/r").replay(StraceParser().parse(lines))
    assert [op.kind for op in log.ops] == ["link", "write", "size"]


def _dump(data: bytes) -> list[str]:
    """strace's `-e write=all` dump lines of `data`."""
    return [f" | {offset:05x}  " + " ".join(f"{byte:02x}" for byte in data[offset:offset + 16]).ljust(49) + " |"
            for offset in range(0, len(data), 16)]


def test_a_python_engines_in_band_site_names_its_threads_next_calls():
    """The native host writes `SITE_MARKER + file:line` to /dev/null before a Python engine's I/O: the thread's
    next calls get that line (not another thread's); a marker from an untracked recording, or any other write to
    /dev/null, changes nothing."""
    from crashsweep.disk_model.native._recorder import SITE_MARKER
    marker = SITE_MARKER + b"/nowhere/kv.py:14"
    lines = ['7 openat(-100</r>, "/r/a", 0x42, 0644) = 3</r/a>',
             f'7 write(5</dev/null>, ""..., {len(marker)}) = {len(marker)}', *_dump(marker),
             '7 write(3</r/a>, ""..., 2) = 2', *_dump(b"hi"),
             '8 write(3</r/a>, ""..., 1) = 1', *_dump(b"!"),
             '7 write(5</dev/null>, ""..., 3) = 3', *_dump(b"abc"),
             '7 fsync(3</r/a>) = 0']
    log = NativeRecorder(FsLog(), "/r", track_sites=True).replay(StraceParser().parse(lines))
    sites = [log.sites.get(op.call, "") for op in log.ops]
    assert [op.kind for op in log.ops] == ["link", "write", "size", "write", "size"]
    assert sites[1] == sites[2] == "/nowhere/kv.py:14 (thread 1)" and sites[0] == "thread 1"
    assert sites[3] == sites[4] == "thread 2"
    untracked = NativeRecorder(FsLog(), "/r").replay(StraceParser().parse(lines))
    assert untracked.sites == {} and [op.kind for op in untracked.ops] == [op.kind for op in log.ops]


def test_sites_name_the_thread_or_process_when_more_than_one_changed_the_store():
    """One task: sites are the stack's alone. Several: every site says which, numbered in the order they first
    changed the store (threads of the first process, then other processes); with no stack, the task alone."""
    lines = ['7 openat(-100</r>, "/r/a", 0x42, 0644) = 3</r/a>',
             '7 clone(child_stack=0x7f, flags=0x3d0f00|0, parent_tid=[9]) = 9',       # CLONE_THREAD: a thread
             '7 clone(child_stack=0x0, flags=0x1200011|0, child_tidptr=0x7f) = 12',  # fork: a process
             '9 write(3</r/a>, ""..., 2) = 2',
             ' | 00000  68 69                                             hi               |',
             '12 write(3</r/a>, ""..., 1) = 1',
             ' | 00000  21                                                !                |',
             '9 fsync(3</r/a>) = 0']
    calls = StraceParser().parse(lines)
    calls[3].stack = ["/x/libkv.so(kv::Flush()+0x1) [0x1]"]
    log = NativeRecorder(FsLog(), "/r", track_sites=True).replay(calls)
    assert sorted(set(log.sites.values())) == ["libkv.so: kv::Flush (thread 2)", "process 2", "thread 1", "thread 2"]
    single = NativeRecorder(FsLog(), "/r", track_sites=True).replay(StraceParser().parse(lines[:1]))
    assert single.sites == {}
    untracked = NativeRecorder(FsLog(), "/r").replay(StraceParser().parse(lines))
    assert untracked.sites == {}


def test_threads_started_by_a_thread_that_never_changed_the_store_are_threads_not_processes():
    """A Python engine's worker threads, started by its main thread (which changes nothing itself), are threads of
    the engine's process; a child of one of them that is a process (fork) is a process."""
    lines = ['7 clone(child_stack=0x7f, flags=0x3d0f00|0, parent_tid=[9]) = 9',
             '7 clone(child_stack=0x7f, flags=0x3d0f00|0, parent_tid=[10]) = 10',
             '9 clone(child_stack=0x0, flags=0x1200011|0, child_tidptr=0x7f) = 12',
             '9 openat(-100</r>, "/r/a", 0x42, 0644) = 3</r/a>',
             '10 openat(-100</r>, "/r/b", 0x42, 0644) = 4</r/b>',
             '12 openat(-100</r>, "/r/c", 0x42, 0644) = 5</r/c>']
    log = NativeRecorder(FsLog(), "/r", track_sites=True).replay(StraceParser().parse(lines))
    assert [log.sites[op.call] for op in log.ops] == ["thread 1", "thread 2", "process 2"]


def test_a_native_site_is_the_engines_innermost_named_frame():
    stack = ["/usr/lib/x86_64-linux-gnu/libc.so.6(__write+0x10) [0xf8350]",
             "/x/libleveldb.so.1(leveldb::(anonymous namespace)::PosixWritableFile::Append(leveldb::Slice const&)"
             "+0x2a) [0x1]",
             "/x/libleveldb.so.1(leveldb::log::Writer::EmitPhysicalRecord(leveldb::log::RecordType, char const*, "
             "unsigned long)+0x5a) [0x2]",
             "/usr/lib/libpython3.11.so.1.0(_PyEval_EvalFrameDefault+0x2e53) [0xfd9c3]"]
    assert native_site(stack) == "libleveldb.so.1: leveldb::log::Writer::EmitPhysicalRecord"
    assert native_site(stack[:2]) == "libleveldb.so.1: leveldb::(anonymous namespace)::PosixWritableFile::Append"
    assert native_site(stack[3:]) == ""
    truncated = ["/x/librocksdb.so(rocksdb::(anonymous namespace)::PosixFileSystem::OpenWritableFile(std::__cxx11::"
                 "basic_string<char, std::char_traits<char>"]
    assert native_site(truncated) == "librocksdb.so: rocksdb::(anonymous namespace)::PosixFileSystem::OpenWritableFile"


def test_a_write_through_an_o_dsync_descriptor_is_durable_when_it_returns():
    """LMDB writes its meta pages through an O_DSYNC descriptor: no fsync follows, none is needed."""
    lines = ['7 openat(-100</r>, "/r/data", 0x1042, 0644) = 3</r/data>',          # O_RDWR|O_CREAT|O_DSYNC
             '7 pwrite64(3</r/data>, ""..., 2, 0) = 2',
             ' | 00000  68 69                                             hi               |']
    log = NativeRecorder(FsLog(), "/r").replay(StraceParser().parse(lines))
    assert log.events[-1][0] == "sync" and log.events[-1][1] == log.ops[-1].inode


def test_an_answer_strace_did_not_print_before_the_kill_still_ends_its_operation():
    """The harness has the answer; strace, killed with the engine, never printed the write that sent it."""
    lines = ['7 openat(-100</r>, "/r/a", 0x42, 0644) = 3</r/a>',
             '7 write(1<pipe:[9]>, ""..., 3) = 3',
             ' | 00000  6f 6b 0a                                          ok.              |',
             '7 write(3</r/a>, ""..., 2) = 2',
             ' | 00000  68 69                                             hi               |']
    boundaries = {0: [("begin", 0)], 1: [("end", 0)]}
    log = NativeRecorder(FsLog(), "/r", protocol_pipe="pipe:[9]", boundaries=boundaries).replay(
        StraceParser().parse(lines))
    assert [event[0] for event in log.events] == ["op", "op-begin", "op", "op", "op-end"]


@pytest.mark.parametrize("line, refused", [
    ('7 io_uring_setup(8, 0x7ffd) = 3<anon_inode:[io_uring]>', "io_uring"),
    ('7 io_setup(128, [0x7f]) = 0', "Linux AIO"),
    ('7 openat(-100</r>, "/r/a", 0x4042, 0644) = 3</r/a>', "O_DIRECT"),
    ('7 renameat2(-100</r>, "/r/a", -100</r>, "/r/b", 0x2) = 0', "RENAME_EXCHANGE"),
    ('7 rename("/r/a", "/elsewhere/a") = 0', "across the store's boundary"),
])
def test_calls_that_cannot_be_recorded_faithfully_are_refused(line, refused):
    lines = ['7 openat(-100</r>, "/r/a", 0x42, 0644) = 4</r/a>', line]
    with pytest.raises(NativeRefusal, match=refused):
        NativeRecorder(FsLog(), "/r").replay(StraceParser().parse(lines))


def test_a_python_interpreter_program_is_recorded_without_stacks(tmp_path):
    """Its frames are the interpreter's; walking them for each call of its start-up costs seconds."""
    from crashsweep.disk_model.native._tracer import Tracer
    tracer = Tracer(str(tmp_path), str(tmp_path / "trace"), stacks=True)
    assert "-k" not in tracer.wrap([sys.executable, "engine.py"])
    assert "-k" not in tracer.wrap(["python3", "engine.py"])
    assert "-k" in tracer.wrap(["/bin/sh", "-c", "true"])
