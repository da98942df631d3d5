"""The observation memo skips calls the earlier ones decide (`disk_model/fs/_implied.py`): a walk still answers a
state exactly when an engine run on it would make the recorded calls and get the recorded responses.

The engine here is any deterministic program of file calls: at each step it picks its next call from a few by
a hash of every response so far (so runs branch on what they read, as SQLite's do). Trees differ from one
another in a byte, a size or an entry, so that most runs share long prefixes and part ways at one call."""

import hashlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from crashsweep.disk_model import CallMemo, FsTree
from crashsweep.disk_model._memo import IMPLIED, SKIPPED
from crashsweep.disk_model.fs._implied import CallKnowledge
from crashsweep.disk_model.fs._log import DIRECTORY, FILE
from crashsweep.disk_model.fs._tree_files import UNANSWERED, TreeFiles

STORE = "/crashsweep/store"
STORE_INODE = 4
NAMES = ("a", "b", "d")
PATHS = [f"{STORE}/a", f"{STORE}/b", f"{STORE}/c", f"{STORE}/d", f"{STORE}/d/x"]
FLAGS = [os.O_RDONLY, os.O_RDWR, os.O_WRONLY, os.O_RDWR | os.O_CREAT, os.O_RDWR | os.O_CREAT | os.O_TRUNC,
         os.O_WRONLY | os.O_CREAT | os.O_EXCL, os.O_RDONLY | os.O_TRUNC]

handles = st.integers(0, 2)      # the engine's k-th newest open handle (`run` resolves it)
small = st.integers(0, 8)
calls = st.one_of(
    st.tuples(st.just("exists"), st.sampled_from(PATHS)),
    st.tuples(st.just("open"), st.sampled_from(PATHS), st.sampled_from(FLAGS)),
    st.tuples(st.just("open"), st.sampled_from(PATHS[:3]), st.sampled_from(FLAGS)),
    st.tuples(st.just("pread"), handles, small, small),
    st.tuples(st.just("pread"), handles, small, small),
    st.tuples(st.just("pwrite"), handles, st.binary(min_size=0, max_size=6), small),
    st.tuples(st.just("size"), handles),
    st.tuples(st.just("ftruncate"), handles, small),
    st.tuples(st.just("close"), handles),
    st.tuples(st.just("unlink"), st.sampled_from(PATHS)),
    st.tuples(st.just("fsync"), handles),
)
# A file: (content, size): the size may cut the content or pad it with zeros.
files = st.tuples(st.binary(min_size=0, max_size=6), small)
# "b" may be a second name of "a"'s file: the reasoning takes one name per file, so such a tree's walk answers
# every call.
trees = st.fixed_dictionaries({"a": files}, optional={"b": st.one_of(files, st.just("link")), "d": st.just("dir")})


def build(spec: dict) -> FsTree:
    tree = FsTree.initial()
    for number, name in enumerate(NAMES):
        if name not in spec:
            continue
        inode = 20 + number
        if spec[name] == "dir":
            tree.entries[STORE_INODE][name] = (inode, DIRECTORY)
            tree.entries[inode] = {}
        elif spec[name] == "link":
            if "a" in spec and spec["a"] not in ("dir", "link"):
                tree.entries[STORE_INODE][name] = (20, FILE)
        else:
            content, size = spec[name]
            tree.entries[STORE_INODE][name] = (inode, FILE)
            tree.data[inode] = bytearray(content)
            tree.sizes[inode] = size
    return tree


def mutate(spec: dict, draw) -> dict:
    """A tree like `spec` but for one byte, one size or one entry."""
    changed = dict(spec)
    name = draw(st.sampled_from(NAMES))
    how = draw(st.sampled_from(["byte", "size", "entry"]))
    present = changed.get(name)
    if how == "entry" or present is None or present in ("dir", "link"):
        if present is None:
            changed[name] = draw(st.one_of(files, st.just("link")) if name == "b" else files)
        else:
            del changed[name]
    elif how == "size":
        changed[name] = (present[0], draw(small))
    elif present[0]:
        content = bytearray(present[0])
        content[draw(st.integers(0, len(content) - 1))] ^= draw(st.integers(1, 255))
        changed[name] = (bytes(content), present[1])
    return changed


def run(program: list[list[tuple]], tree: FsTree) -> list[tuple]:
    """The engine's run on `tree`: (call, response) pairs. A call `TreeFiles` does not answer gets `UNANSWERED`
    (as if the live file system had answered it: a walk never follows such a response)."""
    files, trail, digest = TreeFiles(tree), [], hashlib.blake2b(digest_size=8)
    for choices in program:
        call = choices[int.from_bytes(digest.digest(), "little") % len(choices)]
        if call[0] not in ("exists", "open", "unlink"):       # a handle: the engine's k-th newest one
            opened = sorted(files.handles)
            call = (call[0], opened[-1 - call[1] % len(opened)] if opened else call[1], *call[2:])
        response = files.answer(call)
        trail.append((call, response))
        digest.update(repr(response).encode())
    return trail


def memo_of(trails: list[list[tuple]], trees: list[FsTree] | None = None) -> CallMemo:
    """A memo of runs (`trails`), each recorded on its tree, as the explorer records them."""
    memo = CallMemo()
    for number, trail in enumerate(trails):
        memo.begin(trees[number] if trees else None)
        for call, response in trail:
            memo.note(call, response)
        memo.stop(("read", {"run": number}, {}, (), {}))
        memo.end()
    return memo


opening = st.lists(st.tuples(st.just("open"), st.sampled_from(PATHS[:3]), st.sampled_from(FLAGS)), min_size=1,
                   max_size=2)
programs = st.builds(lambda first, rest: [first] + rest, opening,
                     st.lists(st.lists(calls, min_size=1, max_size=3), min_size=1, max_size=24))


@settings(max_examples=int(os.environ.get("CRASHSWEEP_MEMO_EXAMPLES", "2000")), deadline=None)
@given(program=programs, base=trees, data=st.data())
def test_a_walk_answers_exactly_the_states_that_give_a_recorded_run(program, base, data):
    recorded = [base] + [mutate(base, data.draw) for _ in range(data.draw(st.integers(0, 3)))]
    trails = [run(program, build(spec)) for spec in recorded]
    memo = memo_of(trails, [build(spec) for spec in recorded])
    assert not memo.off, "the memo's reasoning failed on a recorded run"
    for spec in [base, mutate(base, data.draw), mutate(mutate(base, data.draw), data.draw)]:
        tree = build(spec)
        expected = run(program, tree)
        walk = memo.walk(tree)
        if expected in trails and all(response != UNANSWERED for _, response in expected):
            assert walk is not None, (spec, expected)
            assert walk.outcome[1]["run"] == trails.index(expected)
        else:
            assert walk is None, (spec, expected)


def test_calls_the_earlier_ones_decide_are_not_answered_again():
    """SQLite's pattern: a journal asked for again, a header read again within a page read, a size asked
    again; writes no later answered call reads are not made."""
    tree = build({"a": (bytes(range(10)), 10)})
    program = [[("exists", f"{STORE}/a")], [("open", f"{STORE}/a", os.O_RDWR)], [("pread", 0, 8, 0)],
               [("exists", f"{STORE}/a")], [("pread", 0, 4, 2)], [("size", 0)], [("size", 0)],
               [("pwrite", 0, b"xyz", 20)], [("pread", 0, 3, 20)], [("pwrite", 0, b"q", 0)], [("fsync", 0)],
               [("exists", f"{STORE}/b")]]
    memo = memo_of([run(program, tree)])
    marks, node = [], memo.root
    while node.call != ("stop",):
        marks.append(node.mark)
        node = next(iter(node.children.values()))
    answered, implied, skipped = 0, IMPLIED, SKIPPED
    assert marks == [answered, answered, answered, implied, implied, answered, implied,
                     skipped, implied, skipped, answered, answered]
    assert memo.walk(tree) is not None
    other = build({"a": (bytes(range(10)), 9)})          # the size differs: the first `size` says so
    assert memo.walk(other) is None


def test_a_write_a_later_read_may_see_is_made():
    """A write is skipped only while no later call answered from the state follows it in the trie: a run
    recorded later that reads after it makes it count again (for every walk from then on)."""
    first = build({"a": (b"0123456789", 10), "b": (b"", 0)})
    program = [[("open", f"{STORE}/a", os.O_RDWR)], [("pwrite", 0, b"zz", 8)], [("exists", f"{STORE}/b")],
               [("close", 0)], [("open", f"{STORE}/a", os.O_RDONLY)], [("pread", 1, 4, 6)]]
    without_b = build({"a": (b"0123456789", 10)})
    memo = memo_of([run(program[:4], first)])
    node = memo.root.children[None]
    assert node.mark == SKIPPED
    memo = memo_of([run(program[:4], first), run(program, without_b)])
    assert memo.root.children[None].mark != SKIPPED
    changed = build({"a": (b"0123456788", 10)})    # byte 9 differs, but the write covers it: same responses
    assert memo.walk(changed) is not None and memo.walk(changed).outcome[1]["run"] == 1
    assert memo.walk(build({"a": (b"0123450789", 10)})) is None    # byte 6 differs: the read sees it


def test_a_response_the_path_was_to_decide_turns_the_memo_off():
    """If the reasoning were ever wrong, the memo notices when the contradicting run is added, says so, and
    answers nothing from then on (every state runs live)."""
    import pytest
    memo = CallMemo()
    for response in (True, False):
        memo.begin()
        memo.note(("exists", "/x"), True)
        memo.note(("exists", "/x"), response)
        memo.stop(("read", {}, {}, (), {}))
        if response:
            memo.end()
        else:
            with pytest.warns(UserWarning, match="earlier calls were to decide"):
                memo.end()
    assert memo.off and memo.walk(FsTree.initial()) is None


def test_knowledge_follows_names_not_spellings():
    knowledge = CallKnowledge()
    knowledge.learn(("exists", f"{STORE}/a"), True)
    assert knowledge.implied(("exists", f"{STORE}/a")) and not knowledge.implied(("exists", f"{STORE}/a/"))
    knowledge.learn(("open", f"{STORE}/a/", os.O_RDWR | os.O_CREAT), None)
    knowledge.learn(("unlink", f"{STORE}/a/"), None)
    assert not knowledge.implied(("exists", f"{STORE}/a"))     # removed by another spelling of its name


def test_a_file_with_two_names_is_walked_with_every_call_answered():
    """The reasoning takes one name per file. A run recorded on a tree where "b" is a second name of "a"
    marks nothing (a write through "b" changes what "a" reads), and a walk on such a tree answers every call."""
    linked = build({"a": (b"0123456789", 10), "b": "link"})
    apart = build({"a": (b"0123456789", 10), "b": (b"0123456789", 10)})
    program = [[("open", f"{STORE}/a", os.O_RDWR)], [("pread", 0, 10, 0)], [("open", f"{STORE}/b", os.O_RDWR)],
               [("pwrite", 0, b"zz", 2)], [("pread", 1, 10, 0)]]      # (handles: 0 the newest, 1 the one before)
    assert run(program, linked)[-1][1] == b"01zz456789" and run(program, apart)[-1][1] == b"0123456789"
    memo = memo_of([run(program, linked)], [linked])
    assert memo.walk(apart) is None and memo.walk(linked) is not None
    memo = memo_of([run(program, apart)], [apart])
    assert memo.walk(linked) is None and memo.walk(apart) is not None


def test_an_empty_read_says_nothing_of_the_bytes_before_it():
    """(Found by the property test.) A read of nothing at offset 1 does not show the file reaches byte 1: a
    write at 1 into an empty file makes byte 0 a zero, which a later read of byte 0 sees — the write is made."""
    tree = build({"a": (b"", 0)})
    program = [[("open", f"{STORE}/a", os.O_RDWR)], [("pread", 0, 0, 1)], [("pwrite", 0, b"\x00", 1)],
               [("pread", 0, 1, 0)]]
    trail = run(program, tree)
    assert trail[-1][1] == b"\x00"
    memo = memo_of([trail], [tree])
    assert memo.walk(tree) is not None and memo.walk(tree).outcome[1]["run"] == 0


def test_a_run_on_a_tree_with_two_names_for_a_file_may_differ_where_the_path_decides():
    """(Found by the property test.) Truncating "b", a second name of "a", changes "a"'s size, which the path
    decides for trees with one name per file. Recorded beside a run on such a tree, it is no contradiction: the
    memo stays on, and each tree is answered by its own run."""
    apart = build({"a": (b"", 1)})
    linked = build({"a": (b"", 1), "b": "link"})
    program = [[("open", f"{STORE}/a", os.O_RDWR)], [("pread", 0, 2, 0)],
               [("open", f"{STORE}/b", os.O_RDWR | os.O_CREAT | os.O_TRUNC)], [("open", f"{STORE}/a", os.O_RDONLY)],
               [("size", 0)]]
    trails = [run(program, apart), run(program, linked)]
    assert trails[0][-1][1] == 1 and trails[1][-1][1] == 0
    memo = memo_of(trails, [apart, linked])
    assert not memo.off
    assert memo.walk(apart).outcome[1]["run"] == 0 and memo.walk(linked).outcome[1]["run"] == 1


def test_a_call_a_run_left_unmarked_sees_the_writes_before_it():
    """(Found by the property test at CI strength.) A write skipped on one path (the read after it was implied)
    is followed by a run on a tree with two names for a file, which marks nothing: its read of the written byte,
    on a branch of its own, is answered from the state by a walk — so the write before it is made, and a tree
    with one name per file that gives that run's responses is answered."""
    program = [[("open", f"{STORE}/a", os.O_RDWR)], [("pwrite", 0, b"\x00", 0)], [("exists", f"{STORE}/b")],
               [("pread", 0, 1, 0)]]
    recorded = [build({"a": (b"\x00", 0)}), build({"a": (b"\x00", 0), "b": "link"})]
    trails = [run(program, tree) for tree in recorded]
    memo = memo_of(trails, recorded)
    apart = build({"a": (b"\x00", 0), "b": (b"", 0)})
    assert run(program, apart) == trails[1]
    assert memo.walk(apart) is not None and memo.walk(apart).outcome[1]["run"] == 1
    assert memo.walk(recorded[0]).outcome[1]["run"] == 0
