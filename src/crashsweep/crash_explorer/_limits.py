"""Limits on what engine code can make crashsweep store or show (CONVENTIONS: a limit on everything that grows).

An engine's exception message, its captured output and the values it returns all end
up in results.jsonl, traces and reports; each is cut to a named bound here, saying how
much was cut, so that a 16 MB exception message costs a few KB, not a report of 500 MB.
"""

from __future__ import annotations

import os

DETAIL_CHARS_MAX = 2_000                 # a result's one-line detail
OUTPUT_BYTES_MAX = 8_192                 # an engine's captured stdout + stderr per state
MEMORY_LIMIT_SHARE = 4                   # default --memory-limit: physical memory / this
MEMORY_LIMIT_MIN_BYTES = 512 << 20
assert DETAIL_CHARS_MAX < OUTPUT_BYTES_MAX


def cap_text(text: str, limit: int = DETAIL_CHARS_MAX) -> str:
    """`text` cut to `limit` characters, saying how many were cut. Example: `cap_text("x" * 5, 3)`."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}[... {len(text) - limit:,} more characters not kept]"


def default_memory_limit_bytes() -> int:
    """A quarter of this machine's physical memory (at least 512 MiB): per process that runs an engine."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return max(MEMORY_LIMIT_MIN_BYTES, total // MEMORY_LIMIT_SHARE)
