"""Which file calls of a recorded run a memo walk need not answer: what the calls before them already decide.

Every state that follows a path of the observation memo's trie gave the responses on that path. Many calls
then have a response that is a function of those alone: SQLite asks whether its journal exists six times in
a recovery and reads the same header bytes again after reading the page that holds them. `CallKnowledge`
follows one recorded run, call by call, and says for each call whether its response is *implied* by the
earlier calls and responses (`implied`), under the semantics `TreeFiles` answers with (fs/_tree_files.py):

- `exists(path)`: implied once that exact path's existence was seen (an `exists` response, a successful
  `open`, an `unlink`) and no call since could have changed it (a create or an unlink of the same name,
  however spelled);
- `size(handle)` and `pread(handle, count, offset)`: implied for a readable handle of a known file whose
  size is known (or, for a read, whose bytes read lie within what is known to exist) and whose bytes read
  are all known — read before, written by the run, or cut to nothing.

A write's *effect* may be skipped too (`effect_only`): `pwrite` and `ftruncate` answer from the handle alone
(an open writable handle: success), so their response is implied; what they change matters only to a later
call that is answered from the bytes (a `pread` or `size` not implied). The memo marks a write whose every
later call in the trie is so (`disk_model/_memo.py`).

Invariant (the memo relies on it for correctness): whenever `implied(call)` is true after a run's calls and
responses, every tree on which `TreeFiles` gives those same responses gives that call the response this run
got. The memo checks it as it grows — a second response at an implied call turns the memo off with a
warning — and tests/unit/test_sqlite_engine.py walks every state of sweeps with and without it.
"""

from __future__ import annotations

import os

from crashsweep.disk_model._memo import DIGESTED_READ_BYTES

OBSERVING = frozenset({"pread", "size"})      # calls answered from a file's bytes or size
EFFECT_ONLY = frozenset({"pwrite", "ftruncate"})   # calls whose response is the handle's; they change bytes


def _spelling(path) -> str:
    """The name `TreeFiles` resolves a path to (a trailing slash names the same entry)."""
    return path.rstrip("/") or "/" if isinstance(path, str) else path


class _File:
    """What a run knows of one file: its exact size (None: unknown), a size it has at least, and the byte
    ranges `[start, end)` whose content it knows (sorted, disjoint, not adjacent)."""

    __slots__ = ("size", "at_least", "known")

    def __init__(self, size: int | None = None):
        self.size = size
        self.at_least = size or 0
        self.known: list[list[int]] = []

    def knows(self, start: int, end: int) -> bool:
        if start >= end:
            return True
        for low, high in self.known:
            if low <= start and end <= high:
                return True
        return False

    def learn(self, start: int, end: int) -> None:
        if start >= end:
            return
        merged = [start, end]
        kept = []
        for low, high in self.known:
            if high < merged[0] or low > merged[1]:
                kept.append([low, high])
            else:
                merged = [min(low, merged[0]), max(high, merged[1])]
        kept.append(merged)
        kept.sort()
        self.known = kept

    def cut(self, size: int) -> None:
        """The file's size is now exactly `size` (bytes past it gone; new bytes up to it unknown unless the
        old size was known: then they are zeros)."""
        old = self.size
        self.known = [[low, min(high, size)] for low, high in self.known if low < size]
        if old is not None and size > old:
            self.learn(old, size)
        self.size = self.at_least = size


class CallKnowledge:
    """Follows one recorded run: `implied(call)` before its response is learned with `learn(call, response)`.

    Example: after `learn(("exists", "/a"), True)`, `implied(("exists", "/a"))` is True."""

    observing = OBSERVING
    effect_only = EFFECT_ONLY

    def __init__(self) -> None:
        self.exists: dict[str, bool] = {}        # exact path -> whether it exists
        self.file_at: dict[str, _File] = {}      # name (`_spelling`) -> the file it names, if known
        self.handles: list[tuple | None] = []    # handle -> (file or None, readable, writable), as `TreeFiles`

    def _changed(self, path) -> None:
        """An entry changed at `path`: every spelling of that name is unknown now."""
        name = _spelling(path)
        for other in [other for other in self.exists if _spelling(other) == name]:
            del self.exists[other]
        self.file_at.pop(name, None)

    def _handle(self, handle):
        if isinstance(handle, int) and 0 <= handle < len(self.handles):
            return self.handles[handle]
        return None

    def implied(self, call: tuple) -> bool:
        """Whether every state that gave this run's responses so far gives `call` this run's response."""
        kind = call[0]
        if kind == "exists":
            return call[1] in self.exists
        if kind in EFFECT_ONLY:
            opened = self._handle(call[1])
            return opened is not None and opened[2] and isinstance(call[-1], int) and call[-1] >= 0
        if kind not in OBSERVING:
            return False
        opened = self._handle(call[1])
        if opened is None or opened[0] is None or not opened[1]:
            return False
        known = opened[0]
        if kind == "size":
            return known.size is not None
        count, offset = call[2], call[3]
        if not (isinstance(count, int) and isinstance(offset, int)) or offset < 0 or count < 0 \
                or count > DIGESTED_READ_BYTES:
            return False
        end = offset + count
        if known.size is not None:
            return known.knows(offset, min(end, known.size))
        return end <= known.at_least and known.knows(offset, end)

    def footprint(self, call: tuple):
        """What a change (`pwrite`, `ftruncate`) may alter, or what an observation (`pread`, `size`) may see,
        before `learn`: (file or None: any, first byte, end byte, whether the file's size). A write past the
        bytes known to exist may also turn a gap before it into zeros; a cut alters everything past it."""
        opened = self._handle(call[1])
        known = opened[0] if opened is not None else None
        kind = call[0]
        if known is None:
            return (None, 0, float("inf"), True)
        if kind == "size":
            return (known, 0, 0, True)
        if kind == "pread":
            return (known, call[3], call[3] + call[2], False)
        if kind == "pwrite":
            data, offset = call[2], call[3]
            end = offset + len(data)
            grows = bool(data) and (known.size is None or end > known.size)
            return (known, min(offset, known.at_least) if grows else offset, end if data else offset, grows)
        return (known, min(call[2], known.at_least), float("inf"), True)      # ftruncate

    @staticmethod
    def overlap(change, seen) -> bool:
        """Whether observation footprint `seen` may see what change footprint `change` did."""
        if change[0] is not None and seen[0] is not None and change[0] is not seen[0]:
            return False                     # another file (a walk's tree has one name per file)
        return (change[3] and seen[3]) or (change[1] < seen[2] and seen[1] < change[2])

    def learn(self, call: tuple, response) -> None:
        """The run made `call` and got `response` (its memo key)."""
        kind = call[0]
        failed = isinstance(response, tuple)           # ("error", errno)
        if kind == "exists":
            if isinstance(response, bool):
                self.exists[call[1]] = response
        elif kind == "open":
            self._opened(call[1], call[2], failed)
        elif kind == "unlink":
            self._changed(call[1])
            if not failed or response == ("error", 2):      # gone, or was not there (ENOENT)
                self.exists[call[1]] = False
        elif kind == "close":
            if self._handle(call[1]) is not None:
                self.handles[call[1]] = None
        elif kind in OBSERVING or kind in EFFECT_ONLY:
            opened = self._handle(call[1])
            if opened is None or failed or response == ("unanswered",):
                return
            known = opened[0]
            if known is None:
                return
            if kind == "size":
                if isinstance(response, int):
                    known.size = known.at_least = response
            elif kind == "pread":
                self._read(known, call[2], call[3], response)
            elif kind == "pwrite":
                data, offset = call[2], call[3]
                end = offset + len(data)
                if data and known.size is not None and offset > known.size:
                    known.learn(known.size, offset)      # the gap reads as zeros
                known.learn(offset, end)
                if data:
                    known.at_least = max(known.at_least, end)
                    if known.size is not None:
                        known.size = max(known.size, end)
            else:
                known.cut(call[2])

    @staticmethod
    def _read(known: _File, count, offset, response) -> None:
        if not isinstance(response, bytes) or not isinstance(count, int) or count > DIGESTED_READ_BYTES:
            return           # a long read is remembered by its digest: nothing learned
        if response:                # (an empty read says the file ends at or before `offset`, not after it)
            known.learn(offset, offset + len(response))
            known.at_least = max(known.at_least, offset + len(response))
        if 0 < len(response) < count or (offset == 0 and not response and count > 0):
            known.size = offset + len(response)           # a short read ends at the file's end

    def _opened(self, path, flags, failed: bool) -> None:
        if failed:
            return                          # no handle (`TreeFiles` counts only successful opens)
        name = _spelling(path)
        existed = self.exists.get(path)
        creates = bool(flags & os.O_CREAT)
        known = self.file_at.get(name)      # the file this name is known to reach, however it was spelled
        if known is None:
            if creates and existed is not True:
                self._changed(path)         # made now, or opened if it was there: the name is settled from here
                known = _File(0) if existed is False else _File()
            else:
                known = _File()
        access = flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
        writable = access in (os.O_WRONLY, os.O_RDWR)
        # A directory opens read-only without O_CREAT: only a handle opened so (or reaching a known file) may
        # be a directory's.
        is_file = writable or creates or name in self.file_at
        if flags & os.O_TRUNC and is_file:
            known.cut(0)
        self.exists[path] = True
        if is_file:
            self.file_at[name] = known
        self.handles.append((known if is_file else None, access != os.O_WRONLY, writable))
