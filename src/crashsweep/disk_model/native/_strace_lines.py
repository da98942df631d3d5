"""Parse the output of `strace -f -qq -X raw -y -s 0 -e write=all` into completed system calls.

The tracer (`_tracer.py`) asks strace for one line per call, numbers instead of flag
names (`-X raw`), each descriptor's path (`-y`: `3</store/a>`), no inline strings
(`-s 0`), and a full hex dump of every buffer written (`-e write=all`, lines
` | 00000  68 65 ...  he... |`, `* N bytes in buffer i` between the buffers of a
vectored write), optionally each call's native stack (`-k`, lines ` > lib(sym+0x1) [0x..]`).
With `-f` a call that another thread interrupts is split into `<unfinished ...>` and
`<... name resumed>`; the two halves are joined here.

Invariants:
- calls come out in the order they *completed* (their result line), which is the
  order their effects are visible to a later call;
- a dump or stack line belongs to the call printed just before it (strace prints a
  call's dump right after its result line, from one thread of its own);
- nothing here knows what a call means (`_recorder.py` does); a line that is none of the
  above is kept as `noise` for the error message, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ARGS_MAX = 16
_CALL = re.compile(r"^(\d+)\s+([a-z_0-9]+)\((.*)$")
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. ([a-z_0-9]+) resumed>(.*)$")
_RESULT = re.compile(r"\)\s+= (-?\d+|0x[0-9a-f]+|\?)(?:<(.*)>)?(?: ([A-Z0-9_]+) \(.*\))?(?: \(.*\))?\s*$")
_UNFINISHED = " <unfinished ...>"
_FD = re.compile(r"^(-?\d+)(?:<(.*)>)?(?:\(deleted\))?$")


@dataclass
class Call:
    """One completed system call: `args` are the raw argument texts, `data` the bytes it wrote (dumped)."""

    tid: int
    name: str
    args: list[str]
    result: int | None            # None: the process died inside the call ("= ?")
    error: str = ""               # "ENOENT", ... when result is -1
    result_path: str = ""         # the path strace showed for a returned descriptor (`= 3</p>`)
    data: bytearray = field(default_factory=bytearray)
    stack: list[str] = field(default_factory=list)

    def fd(self, index: int) -> tuple[int, str]:
        """(descriptor, the path strace showed for it or "") of argument `index`."""
        match = _FD.match(self.args[index].strip())
        if match is None:
            raise ValueError(f"{self.name}: argument {index} {self.args[index]!r} is no descriptor")
        return int(match.group(1)), unescape(match.group(2) or "")

    def number(self, index: int) -> int:
        text = self.args[index].strip()
        if text.startswith("[") and text.endswith("]"):        # an in/out pointer to a number: [123]
            text = text[1:-1]
        head = text.split("|")[0].strip()
        return int(head, 0)

    def path(self, index: int) -> str:
        text = self.args[index].strip()
        if not (text.startswith('"') and '"' in text[1:]):
            raise ValueError(f"{self.name}: argument {index} {text!r} is no path")
        return unescape(text[1:text.rindex('"')])


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of a call's text (quotes, brackets, braces, <...> respected)."""
    args, depth, start, quoted, index = [], 0, 0, False, 0
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char in "[{(<":
            depth += 1
        elif char in "]})>":
            depth -= 1
        elif char == "," and depth == 0:
            args.append(text[start:index].strip())
            start = index + 1
        index += 1
        if len(args) > ARGS_MAX:
            break
    tail = text[start:].strip()
    if tail:
        args.append(tail)
    return args


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "v": "\v", "f": "\f", "\\": "\\", '"': '"', "'": "'"}


def unescape(text: str) -> str:
    """A C string as strace prints it (\\n, \\xHH, \\ooo) -> the path (bytes decoded as the OS does)."""
    if "\\" not in text:
        return text
    out, index = bytearray(), 0
    while index < len(text):
        char = text[index]
        if char != "\\" or index + 1 == len(text):
            out += char.encode("utf-8", "surrogateescape")
            index += 1
            continue
        following = text[index + 1]
        if following == "x":
            out.append(int(text[index + 2:index + 4], 16))
            index += 4
        elif following.isdigit():
            digits = re.match(r"[0-7]{1,3}", text[index + 1:]).group(0)
            out.append(int(digits, 8))
            index += 1 + len(digits)
        else:
            out += _ESCAPES.get(following, following).encode()
            index += 2
    return out.decode("utf-8", "surrogateescape")


def _dump_bytes(line: str) -> bytes:
    """The bytes of one ` | 00000  68 65 ...  ascii |` dump line (16 at most, hex columns before the text)."""
    _, _, tail = line[3:].partition("  ")
    return bytes.fromhex(tail[:48])


class StraceParser:
    """Feed lines, collect `Call`s in completion order. Example: `calls = StraceParser().parse(text.splitlines())`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.noise: list[str] = []
        self._open: dict[int, tuple[str, str]] = {}     # tid -> (name, args text so far) of an unfinished call
        self._last: Call | None = None                    # the call the next dump or stack line belongs to

    def parse(self, lines) -> list[Call]:
        for line in lines:
            self.feed(line.rstrip("\n"))
        return self.calls

    def feed(self, line: str) -> None:
        if line.startswith(" | "):
            if self._last is not None:
                self._last.data += _dump_bytes(line)
            return
        if line.startswith(" > "):
            if self._last is not None:
                self._last.stack.append(line[3:].strip())
            return
        if line.startswith(" * "):          # "* N bytes in buffer i": the buffers of a vectored write follow
            return
        if "+++" in line or "---" in line.split("(")[0]:
            self._last = None
            return
        match = _RESUMED.match(line)
        if match is not None:
            tid, name = int(match.group(1)), match.group(2)
            began = self._open.pop(tid, (name, ""))
            self._finish(tid, name, began[1] + match.group(3))
            return
        match = _CALL.match(line)
        if match is None:
            if line.strip():
                self.noise.append(line[:200])
            return
        tid, name, rest = int(match.group(1)), match.group(2), match.group(3)
        if rest.endswith(_UNFINISHED):
            self._open[tid] = (name, rest[:-len(_UNFINISHED)])
            self._last = None
            return
        self._finish(tid, name, rest)

    def _finish(self, tid: int, name: str, rest: str) -> None:
        match = _RESULT.search(rest)
        if match is None:
            self.noise.append(f"{tid} {name}({rest}"[:200])
            self._last = None
            return
        text = match.group(1)
        result = None if text == "?" else int(text, 0)
        call = Call(tid, name, split_args(rest[:match.start()]), result, match.group(3) or "",
                    unescape(match.group(2) or ""))
        self.calls.append(call)
        self._last = call
