"""The wire format between crashsweep and a process that ran engine code: data, never code.

A process that ran an engine is not trusted (the engine may have changed anything in
it), so what it sends back is decoded as plain data: JSON for the structure, raw bytes
for `bytes` values (a log's payloads) kept apart from the JSON and referenced by index.
No pickle: decoding a message can build only dicts, lists, strings, numbers, booleans,
None and bytes, whatever the sender wrote.

Layout: `MAGIC`, the JSON's length (8 bytes, big-endian), the JSON, then per blob its
length (8 bytes) and its bytes. A `bytes` value is `{"\\u0000b": index}` in the JSON.

Invariants: `decode(encode(v)) == v` for every value made of the types above (tuples
come back as lists; a dict's keys as `wire_key` names them, and of two keys with one name,
such as None and "null", the last pair's value, as JSON reads an object); decoding malformed or hostile input raises `WireError`, never
anything else, and never nests deeper than `NESTING_MAX`.
"""

from __future__ import annotations

import json

from crashsweep.crash_explorer.errors import ExplorerError

MAGIC = b"CSW1"
LENGTH_BYTES = 8
BLOB_KEY = "\u0000b"
NESTING_MAX = 64
MESSAGE_BYTES_MAX = 4 << 30


class WireError(ExplorerError, ValueError):
    """A message from a worker process is malformed (a worker that misbehaved, or a truncated message)."""


def wire_key(key) -> str:
    """A dict key as it travels: as JSON names it (a number's text, true, false, null), else its `str`."""
    if isinstance(key, str):
        return key
    if key is True or key is False or key is None:
        return json.dumps(key)
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return json.dumps(key)
    return str(key)


def encode(value) -> bytes:
    """Example: `decode(encode({"a": [1, b"x"]})) == {"a": [1, b"x"]}`. Dict keys travel as `wire_key` says."""
    blobs: list[bytes] = []

    def blob(item):
        if isinstance(item, (bytes, bytearray, memoryview)):
            blobs.append(bytes(item))
            return {BLOB_KEY: len(blobs) - 1}
        raise TypeError(f"{type(item).__name__} does not travel")

    def write(item, out: list) -> None:
        # What JSON's encoder writes, with every key through `wire_key`: each pair of a dict is written, also
        # two whose keys have one name (None and "null"), as JSON's encoder does.
        if isinstance(item, (bytes, bytearray, memoryview)):
            out.append(json.dumps(blob(item), separators=(",", ":")))
        elif isinstance(item, dict):
            out.append("{")
            for number, (key, inner) in enumerate(item.items()):
                out.append(("," if number else "") + json.dumps(wire_key(key)) + ":")
                write(inner, out)
            out.append("}")
        elif isinstance(item, (list, tuple)):
            out.append("[")
            for number, inner in enumerate(item):
                if number:
                    out.append(",")
                write(inner, out)
            out.append("]")
        else:
            out.append(json.dumps(item))

    try:     # JSON's own encoder walks the value (results are mostly lists of numbers); bytes go through `blob`
        text = json.dumps(value, separators=(",", ":"), default=blob).encode()
    except TypeError:       # a key JSON refuses (bytes, a tuple): every key through `wire_key`
        blobs.clear()
        pieces: list[str] = []
        write(value, pieces)
        text = "".join(pieces).encode()
    parts = [MAGIC, len(text).to_bytes(LENGTH_BYTES, "big"), text]
    for blob in blobs:
        parts += [len(blob).to_bytes(LENGTH_BYTES, "big"), blob]
    return b"".join(parts)


def decode(data: bytes):
    """The value `encode` made. Raises WireError for anything else."""
    if len(data) > MESSAGE_BYTES_MAX:
        raise WireError(f"message of {len(data):,} bytes is over the limit of {MESSAGE_BYTES_MAX:,}")
    if data[:len(MAGIC)] != MAGIC:
        raise WireError("message does not start with the wire format's magic")
    position = len(MAGIC)
    text_length = int.from_bytes(data[position:position + LENGTH_BYTES], "big")
    position += LENGTH_BYTES
    text = data[position:position + text_length]
    if len(text) != text_length:
        raise WireError("message is truncated")
    position += text_length
    blobs = []
    while position < len(data):
        length = int.from_bytes(data[position:position + LENGTH_BYTES], "big")
        position += LENGTH_BYTES
        if position + length > len(data):
            raise WireError("message is truncated in a blob")
        blobs.append(data[position:position + length])
        position += length
    try:
        structure = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise WireError(f"message is not valid JSON: {type(error).__name__}") from None
    return _restore(structure, blobs, 0)


def _restore(item, blobs: list[bytes], depth: int):
    """`item` (as `json.loads` made it: fresh lists and dicts) with its blob references replaced by the blobs,
    in place; only containers are visited (a result is mostly numbers and strings)."""
    blob = item.__class__ is dict and len(item) == 1 and BLOB_KEY in item
    if depth > NESTING_MAX or (depth == NESTING_MAX and item and not blob):
        raise WireError(f"message nests deeper than {NESTING_MAX}")     # (a container's items are one deeper)
    if item.__class__ is dict:
        if blob:
            index = item[BLOB_KEY]
            if index.__class__ is not int or not 0 <= index < len(blobs):
                raise WireError("message names a blob it does not hold")
            return blobs[index]
        for key, inner in item.items():
            if inner.__class__ is dict or inner.__class__ is list:
                item[key] = _restore(inner, blobs, depth + 1)
    elif item.__class__ is list:
        for position, inner in enumerate(item):
            if inner.__class__ is dict or inner.__class__ is list:
                item[position] = _restore(inner, blobs, depth + 1)
    return item
