"""Two values that should be equal, described by where they differ: lengths and the first differing byte.

A recovered value is often the expected one with a torn sector or a stale tail, so a prefix of each
says nothing; the first differing offset, the lengths and a few bytes around that offset do.
Values arrive as results store them: text, or "hex:…" for bytes that are not printable UTF-8.
"""

from __future__ import annotations

CONTEXT_BYTES = 8
HEX_PREFIX = "hex:"          # how results.jsonl writes bytes that are not printable UTF-8 (docs/trace-format.md)


def _bytes(text) -> bytes:
    """A value as results store it, back to bytes (reports read result data only: no import of the codec)."""
    text = str(text)
    if text.startswith(HEX_PREFIX):
        try:
            return bytes.fromhex(text[len(HEX_PREFIX):])
        except ValueError:
            pass
    return text.encode("utf-8", "replace")


def value_difference(expected, actual) -> str:
    """Example: `value_difference("abcdef", "abcXef")` ->
    'same length (6 bytes), first difference at byte 3: expected 64 (d) · got 58 (X) …'."""
    left, right = _bytes(expected), _bytes(actual)
    lengths = (f"same length ({len(left):,} bytes)" if len(left) == len(right)
               else f"expected {len(left):,} bytes, got {len(right):,}")
    offset = next((index for index, (a, b) in enumerate(zip(left, right)) if a != b), None)
    if offset is None:
        if len(left) == len(right):
            return lengths + ", equal"
        offset = min(len(left), len(right))
        return f"{lengths}; one is a prefix of the other, they part at byte {offset:,}"
    start = max(0, offset - CONTEXT_BYTES // 2)
    return (f"{lengths}, first difference at byte {offset:,}: expected {_window(left, start, offset)} · "
            f"got {_window(right, start, offset)}")


def _window(data: bytes, start: int, offset: int) -> str:
    piece = data[start:start + CONTEXT_BYTES]
    shown = " ".join(f"[{byte:02x}]" if start + index == offset else f"{byte:02x}" for index, byte in enumerate(piece))
    return f"bytes {start:,}..: {shown}"
