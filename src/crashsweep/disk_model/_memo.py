"""The observation memo: engines that are a function of their calls' responses, answered without running them.

Some engines reach the world only through a few calls (SQLite through its VFS: open, read, write, truncate,
size, sync, delete, exists; the built-in block engines through the device's requests) and are otherwise a
deterministic function of what those calls return (randomness comes from the model's seed). Two crash states
on which every call returns the same thing are then the same state *for that engine*: it makes the same
calls, writes the same bytes and returns the same results. An `ObservationMemo` keeps every distinct sequence
of (call, response) as a path in a trie; each medium answers the calls from a state directly (`TreeFiles`
from a state's tree, fs/_calls.py; a fresh simulated device on a state's image, block/_memo.py), so a state
whose responses follow a known path is recovered without running the engine.

Invariants:
- the live calls a medium notes and the answers it gives without the engine are equal for equal states and
  equal call sequences (tests/unit/test_sqlite_engine.py, tests/simulation/test_block_memo.py: every state
  of sweeps, with and without the memo);
- a walk follows the trie only while each response is one the trie has seen; any new
  response is a miss, and the state is run for real (and its path added);
- a trail is recorded only between `begin` and `end` (one memo records at a time, process-wide), and
  only complete runs (ending in `stop`) enter the trie, so a time-out or an interrupted run adds nothing;
- one memo serves one engine configuration and one harness behaviour (same options, seed, keys read
  out, continuation): the caller keeps a memo per such setting. If an engine ever makes a different
  call where the trie has one (it is not a function of its responses), the memo turns itself off.
"""

from __future__ import annotations

import hashlib
import warnings

MEMORY_MAX_BYTES = 512 << 20   # all memos of a process together: past it, a growing memo starts afresh
NODE_BYTES = 400                # what a trie node costs, besides the bytes its call writes and its response read
DIGESTED_READ_BYTES = 1 << 16   # a longer read is remembered by its digest (bounds what one key holds)
TRIAL_STATES = 200         # after this many states, a memo that answered too few of them turns itself off:
ANSWERED_MIN = 0.6         # a miss costs a walk and a recorded live run, more than a live run alone
_STOP = ("stop",)
_recording: list = [None]      # the memo whose trail the live calls go to, if any (read it as `_recording[0]`)
_held = [0]                    # bytes held by every memo of this process (approximately)


def response_key(response):
    """What a response is remembered by: values as they are (a page read is its bytes: a dict hashes 4 KiB ~4x
    faster than blake2b does, and the trie keeps only the distinct reads of the few runs it recorded), reads
    longer than `DIGESTED_READ_BYTES` by a 128-bit digest."""
    if isinstance(response, bytes) and len(response) > DIGESTED_READ_BYTES:
        return hashlib.blake2b(response, digest_size=16).digest()
    return response


def _outcome_bytes(outcome) -> int:
    """Roughly what a recorded outcome holds (its maps, e.g. a read-out, count ~100 bytes an item)."""
    if not isinstance(outcome, tuple):
        return 0
    return sum(100 * len(part) for part in outcome if isinstance(part, dict))


def _given(_answerer, response):
    """The answer of a call whose response the path to it decides (`_Node.mark`)."""
    return response


ANSWERED, IMPLIED, SKIPPED = 0, 1, 2     # `_Node.mark`


class _Node:
    __slots__ = ("call", "children", "outcome", "answer", "args", "mark")

    def __init__(self) -> None:
        self.call = None          # the next call, _STOP at a stopping point, None while unknown
        self.children: dict = {}  # response key -> node (at a stopping point: the single key None)
        self.outcome = None       # at a stopping point: what the caller recorded there
        self.answer = None        # the call's `TreeFiles` method, and its arguments (a walk's hot path)
        self.args: tuple = ()
        # ANSWERED: the answerer answers the call. IMPLIED: the calls before it decide its response, and it
        # changes nothing: the walk takes the one response (`_given`). SKIPPED: a change whose response the
        # path decides and that no later call answered from the state can see: not made either.
        self.mark = ANSWERED

    def set_call(self, call: tuple, answers: dict) -> None:
        self.call, self.answer, self.args, self.mark = call, answers[call[0]], call[1:], ANSWERED

    def give(self, response, mark: int) -> None:
        self.answer, self.args, self.mark = _given, (response,), mark


class ObservationMemo:
    """Trie of call sequences. Example: `memo.walk(target)` gives a `MemoWalk` or None (nothing known).

    A medium's subclass says how its calls are answered without the engine: `answers` (call name ->
    function(answerer, *arguments) -> response key, raising ValueError or KeyError for a call it cannot
    answer) and `answering` (the walk's target -> the answerer)."""

    answers: dict = {}
    # A factory of trackers that follow one recorded run and say which calls the earlier ones decide
    # (`implied(call)`, `learn(call, response)`, and the `observing` and `effect_only` call names: see
    # fs/_implied.py); None: every call is answered.
    knowledge = None

    @staticmethod
    def answering(target):
        return target

    def __init__(self) -> None:
        self.root = _Node()
        self.nodes = 1
        self.held = NODE_BYTES            # this memo's share of `_held`
        _held[0] += self.held
        self.trail: list | None = None     # (call, response key) pairs and stops of the run being recorded
        self.marking = True                # whether the run being recorded may mark calls (`_follow`)
        self.hits = self.misses = 0
        self.off = False     # set if the engine proved not to be a function of its responses, or misses too often

    # -- recording a real run --
    def begin(self, target=None) -> None:
        """Record a run on `target` (the state, as `walk` takes it)."""
        self.trail = []
        self.marking = target is None or not self.answers_every_call(target)
        _recording[0] = self

    @staticmethod
    def answers_every_call(target) -> bool:
        """Whether a walk on `target` answers every call, whatever the marks (the knowledge's reasoning does
        not cover such a state: a run recorded on it marks nothing)."""
        return False

    def note(self, call: tuple, response) -> None:
        """The engine made `call` and got `response` (a value, or what stands for the error it raised)."""
        self.trail.append((call, response_key(response)))

    def stop(self, outcome) -> None:
        """A stopping point: the caller may look at `outcome` here and decide whether to go on."""
        if self.trail is not None:
            self.trail.append((_STOP, outcome))

    def end(self, keep: bool = True) -> None:
        """Finish the run: add its trail to the trie (unless `keep` is false)."""
        trail, self.trail = self.trail, None
        if _recording[0] is self:
            _recording[0] = None
        if not keep or not trail or self.off:
            return
        if _held[0] > MEMORY_MAX_BYTES:   # bounds memory, not results: what is forgotten is run live again
            self._forget()
        knowledge = self.knowledge() if self.knowledge is not None else None
        changes: list = []          # (node, footprint) of each change not made yet, in order (`_follow`)
        node = self.root
        for call, key in trail:
            if call is _STOP:
                if node.call is None:     # a known stop keeps its outcome (equal: same responses, same run)
                    node.call, node.outcome = _STOP, key
                    cost = _outcome_bytes(key)
                    self.held += cost
                    _held[0] += cost
                elif node.call is not _STOP:
                    self._diverged(call, node.call)
                    return
                key = None
            else:
                fresh = node.call is None
                if fresh:
                    node.set_call(call, self.answers)
                elif node.call != call:      # the engine is not a function of its responses: stop memoizing
                    self._diverged(call, node.call)
                    return
                if knowledge is not None and not self._follow(knowledge, node, call, key, fresh, changes):
                    self._diverged(call, node.call, implied=True)
                    return
            child = node.children.get(key)
            if child is None:
                # The path was to decide this response (on a state the reasoning covers: a run recorded on
                # another may differ there, and walks on such states answer every call).
                if node.mark != ANSWERED and node.children and self.marking:
                    self._diverged(call, node.call, implied=True)
                    return
                child = node.children[key] = _Node()
                self.nodes += 1
                cost = NODE_BYTES + sum(len(arg) for arg in call[1:] if isinstance(arg, bytes)) \
                    + (len(key) if isinstance(key, bytes) else 0)
                self.held += cost
                _held[0] += cost
            node = child

    def _follow(self, knowledge, node: _Node, call: tuple, key, fresh: bool, changes: list) -> bool:
        """Mark `node` (its call `call` got `key` in the run being added; `fresh`: new to the trie) by what the
        run's earlier calls decide, and learn its response. A run on a state the reasoning does not cover
        (`marking` off) marks nothing. False if the path was to decide a different response."""
        implied = knowledge.implied(call)
        mark = fresh and self.marking
        if call[0] in knowledge.effect_only:
            if implied and key is None:
                if mark:
                    node.give(key, SKIPPED)     # until a later call answered from the state may see it
                changes.append((node, knowledge.footprint(call)))
            elif node.mark == SKIPPED:
                node.set_call(call, self.answers)
        elif implied:
            if mark:
                node.give(key, IMPLIED)
        elif node.mark == IMPLIED and self.marking:    # the same path decided it before: the reasoning is at fault
            return False
        # A call a walk answers from the state (not implied, or left unmarked: a run on a state the reasoning does
        # not cover marks nothing) sees the state as the changes before it left it: make those it may see.
        if call[0] in knowledge.observing and node.mark == ANSWERED:
            seen = knowledge.footprint(call)
            kept = []
            for change, footprint in changes:
                if knowledge.overlap(footprint, seen):      # it may read what the change did: make it
                    if change.mark == SKIPPED:
                        change.set_call(change.call, self.answers)
                else:
                    kept.append((change, footprint))
            changes[:] = kept
        knowledge.learn(call, key)
        return True

    def _diverged(self, call: tuple, known: tuple, implied: bool = False) -> None:
        if implied:
            warnings.warn(f"crashsweep: call {call[:2]} got a response its earlier calls were to decide (a "
                          f"fault in the memo's reasoning); recovering every state live from now on", stacklevel=3)
        else:
            warnings.warn(f"crashsweep: the engine made call {call[:2]} where it made {known[:2]} on the same "
                          f"responses before; recovering every state live from now on", stacklevel=3)
        self.off = True
        self._forget()

    def disable(self) -> None:
        """The engine made a call that cannot be answered without it: recover every state live from now on."""
        self.off = True
        self._forget()

    def _forget(self) -> None:
        _held[0] -= self.held - NODE_BYTES
        self.root, self.nodes, self.held = _Node(), 1, NODE_BYTES

    def __del__(self) -> None:
        _held[0] -= self.held

    # -- answering without the engine --
    def walk(self, target) -> "MemoWalk | None":
        """Follow the trie on `target` (a state: what `answering` makes an answerer of) to its first stopping
        point; None (a miss) if it leaves the trie."""
        if self.off:
            return None
        walk = MemoWalk(self, self.answering(target), self.root,
                        exact=self.knowledge is not None and self.answers_every_call(target))
        return walk if walk.advance() else None

    def answer_of(self, node: _Node):
        """(the answerer's method, its arguments) of `node`'s call, whatever its mark."""
        return self.answers[node.call[0]], node.call[1:]

    def count(self, answered: bool) -> None:
        """Tally a state the memo answered (or not); turn the memo off where it does not pay."""
        if answered:
            self.hits += 1
        else:
            self.misses += 1
        if self.hits + self.misses == TRIAL_STATES and self.hits < ANSWERED_MIN * TRIAL_STATES:
            self.off = True
            self._forget()


class MemoWalk:
    """A walk in progress: `outcome` is what was recorded at the stopping point reached."""

    def __init__(self, memo: ObservationMemo, files, node: _Node, exact: bool = False):
        self.memo, self.files, self.node = memo, files, node
        self.outcome = None
        self.exact = exact    # a state the knowledge's reasoning does not cover (`answers_every_call`): every call answered

    def advance(self) -> bool:
        """Answer calls until the next stopping point. False if a response (or the whole path) is unknown."""
        if self.exact:
            return self._advance_exact()
        node, files = self.node, self.files
        try:
            while True:
                answer = node.answer
                if answer is None:
                    if node.call is _STOP:
                        self.node, self.outcome = node, node.outcome
                        return True
                    return False
                response = answer(files, *node.args)
                if response.__class__ is bytes and len(response) > DIGESTED_READ_BYTES:
                    response = hashlib.blake2b(response, digest_size=16).digest()
                node = node.children.get(response)
                if node is None:
                    return False
        except (ValueError, KeyError):                      # a call the answerer does not answer
            return False

    def _advance_exact(self) -> bool:
        node, files, answer_of = self.node, self.files, self.memo.answer_of
        try:
            while True:
                if node.answer is None:
                    if node.call is _STOP:
                        self.node, self.outcome = node, node.outcome
                        return True
                    return False
                answer, args = answer_of(node)
                node = node.children.get(response_key(answer(files, *args)))
                if node is None:
                    return False
        except (ValueError, KeyError):
            return False

    def go_on(self) -> bool:
        """Continue past the current stopping point to the next one."""
        self.node = self.node.children.get(None)
        return self.node is not None and self.advance()


