"""Operations of the key-value specification and their JSON encoding.

Invariants:
- keys and values are `bytes`; `put` carries a value, `delete` and `get` do not;
- `encode_bytes`/`decode_bytes` round-trip every byte string; text that is
  printable UTF-8 stays readable in JSON, anything else becomes "hex:<digits>".
"""

from __future__ import annotations

from typing import NamedTuple

OP_KINDS = ("put", "delete", "get", "sync")
MUTATING_KINDS = ("put", "delete")
HEX_PREFIX = "hex:"


class Op(NamedTuple):
    """One client operation. Example: `Op("put", b"k", b"v")`, `Op("sync")`."""

    kind: str
    key: bytes | None = None
    value: bytes | None = None

    @property
    def mutating(self) -> bool:
        return self.kind in MUTATING_KINDS


def put(key: bytes, value: bytes) -> Op:
    return Op("put", key, value)


def delete(key: bytes) -> Op:
    return Op("delete", key)


def get(key: bytes) -> Op:
    return Op("get", key)


def sync() -> Op:
    return Op("sync")


class OpFormatError(ValueError):
    """An operation or byte string in JSON is malformed; the message says where."""


def encode_bytes(data: bytes) -> str:
    """Readable text when possible, else hex. Example: b"a" -> "a", b"\\x00" -> "hex:00"."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return HEX_PREFIX + data.hex()
    if text.isprintable() and not text.startswith(HEX_PREFIX):
        return text
    return HEX_PREFIX + data.hex()


def decode_bytes(text: object, where: str = "value") -> bytes:
    if not isinstance(text, str):
        raise OpFormatError(f"{where}: expected a string, got {type(text).__name__}")
    if text.startswith(HEX_PREFIX):
        try:
            return bytes.fromhex(text[len(HEX_PREFIX):])
        except ValueError:
            raise OpFormatError(f"{where}: {text[:40]!r} is not valid hex") from None
    return text.encode("utf-8")


def encode_op(op: Op) -> list:
    """JSON form: ["put", key, value], ["delete", key], ["get", key], ["sync"]."""
    if op.kind == "put":
        return ["put", encode_bytes(op.key), encode_bytes(op.value)]
    if op.kind in ("delete", "get"):
        return [op.kind, encode_bytes(op.key)]
    assert op.kind == "sync", op
    return ["sync"]


def decode_op(item: object, where: str = "op") -> Op:
    if not isinstance(item, list) or not item or not isinstance(item[0], str):
        raise OpFormatError(f"{where}: expected a list like [\"put\", key, value], got {item!r:.60}")
    kind, arguments = item[0], item[1:]
    arity = {"put": 2, "delete": 1, "get": 1, "sync": 0}
    if kind not in arity:
        raise OpFormatError(f"{where}: unknown operation {kind!r} (expected one of {', '.join(OP_KINDS)})")
    if len(arguments) != arity[kind]:
        raise OpFormatError(f"{where}: {kind} takes {arity[kind]} argument(s), got {len(arguments)}")
    decoded = [decode_bytes(argument, f"{where}[{index + 1}]") for index, argument in enumerate(arguments)]
    return Op(kind, *decoded)


def encode_ops(ops: list[Op]) -> list[list]:
    return [encode_op(op) for op in ops]


def decode_ops(items: object, where: str = "ops") -> list[Op]:
    if not isinstance(items, list):
        raise OpFormatError(f"{where}: expected a list of operations")
    return [decode_op(item, f"{where}[{index}]") for index, item in enumerate(items)]
