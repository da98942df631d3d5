"""Text from engines made safe for XML and HTML: any string, whatever bytes an engine put in it.

XML 1.0 forbids most control characters (NUL among them) and lone surrogates even
as character references, so a NUL in an engine's exception message made junit.xml
unreadable. `xml_safe` writes each such character as a visible escape (`\\x00`,
`\\ud800`) and keeps everything else; HTML output uses it too (a raw NUL in a page
is a parse error).

Invariant: `xml_safe(text)` contains only characters XML 1.0 allows.
"""

from __future__ import annotations

import re
import shlex

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_safe(text) -> str:
    """Example: `xml_safe("a\\x00b") == "a\\\\x00b"`."""
    text = text if isinstance(text, str) else str(text)
    return _NOT_XML.sub(_escape, text)


def finalize(value):
    """Jinja's finalize hook: every string the template prints is made XML-safe."""
    return xml_safe(value) if isinstance(value, str) else value


def state_count(number) -> str:
    """A count of crash states as the report shows it: exact below 100,000, else its power of two (~2^k), as a
    sweep's summary line gives the space it explored. A point's space can run to dozens of digits."""
    number = int(number)
    return f"{number:,}" if number < 100_000 else f"~2^{number.bit_length() - 1}"


def engine_flag(summary: dict) -> str:
    """" --engine NAME" when the printed `crashsweep replay|explain TRACE` of this sweep's traces needs the
    engine named (summary's `traces_need_engine`: an `exec:` program, a module, a file elsewhere), else ""."""
    return f" --engine {shlex.quote(summary['engine'])}" if summary.get("traces_need_engine") else ""
