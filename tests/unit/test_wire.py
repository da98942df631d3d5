"""The wire format between worker processes and crashsweep: what is encoded comes back, and is written as the
reference (a recursive conversion of every value, the format's definition) says: every pair of every dict in
order, keys through `wire_key`, bytes as numbered blobs — whether JSON's own encoder or crashsweep's walk wrote it."""

import json

from hypothesis import example, given, settings, strategies as st

from crashsweep.crash_explorer import _wire

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner) | st.tuples(inner, inner)
                      | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none()
                                      | st.floats(allow_nan=False), inner), max_leaves=40)


def _reference(value) -> tuple:
    """The format by its definition: bytes out as numbered blobs, every dict written as its pairs in order with
    each key through `wire_key` (two keys with one name both written), as (JSON structure with objects as
    ("object", pairs), blobs)."""
    blobs = []

    def convert(item):
        if isinstance(item, (bytes, bytearray, memoryview)):
            blobs.append(bytes(item))
            return ("object", [[_wire.BLOB_KEY, len(blobs) - 1]])
        if isinstance(item, dict):
            return ("object", [[_wire.wire_key(key), convert(inner)] for key, inner in item.items()])
        if isinstance(item, (list, tuple)):
            return [convert(inner) for inner in item]
        return item

    return convert(value), blobs


def _written(encoded: bytes) -> tuple:
    """(JSON structure with objects as ("object", pairs), blobs) of an encoded message, read by hand."""
    assert encoded[:len(_wire.MAGIC)] == _wire.MAGIC
    position = len(_wire.MAGIC) + _wire.LENGTH_BYTES
    length = int.from_bytes(encoded[len(_wire.MAGIC):position], "big")
    text = encoded[position:position + length].decode()
    position += length
    blobs = []
    while position < len(encoded):
        size = int.from_bytes(encoded[position:position + _wire.LENGTH_BYTES], "big")
        position += _wire.LENGTH_BYTES
        blobs.append(encoded[position:position + size])
        position += size
    assert position == len(encoded)
    return json.loads(text, object_pairs_hook=lambda pairs: ("object", [list(pair) for pair in pairs])), blobs


def _as_sent(value):
    if isinstance(value, dict):
        return {_wire.wire_key(key): _as_sent(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_sent(inner) for inner in value]
    return value


@settings(max_examples=300, deadline=None)
@given(VALUES)
@example({None: None, "null": None})      # one name twice (found by this test at CI strength)
def test_encoding_is_the_reference_encoding_and_decodes_to_the_value(value):
    encoded = _wire.encode(value)
    assert _written(encoded) == _reference(value)
    assert _wire.decode(encoded) == _as_sent(value)


def test_a_result_batch_with_bytes_keys_and_deep_blobs_encodes_as_the_reference():
    batch = ["results", [{"state": 3, "choice": {"persist": list(range(500)), "torn": [[7, [0, 2]]]},
                          "actual": {"k": "v"}, "raw": [b"\x00\x01", {"deep": [b"x" * 70_000]}]},
                         {"state": 4, "odd": {b"key": b"value", (1, 2): "tuple key"}}]]
    assert _written(_wire.encode(batch)) == _reference(batch)
    decoded = _wire.decode(_wire.encode(batch))
    assert decoded[1][0]["raw"][1]["deep"][0] == b"x" * 70_000
    assert decoded[1][1]["odd"] == {"b'key'": b"value", "(1, 2)": "tuple key"}


def test_keys_travel_as_json_names_them_on_both_paths():
    plain = {True: 1, None: 2, 3: 3, 1.5: 4}
    assert _wire.decode(_wire.encode(plain)) == {"true": 1, "null": 2, "3": 3, "1.5": 4}
    with_bytes_key = {**plain, b"k": 5}
    assert _wire.decode(_wire.encode(with_bytes_key)) == {"true": 1, "null": 2, "3": 3, "1.5": 4, "b'k'": 5}


def test_two_keys_of_one_name_travel_as_both_pairs_and_come_back_as_the_last():
    """None and "null" are one name in JSON: both pairs are written (JSON's own encoder does, and so does the
    walk that a bytes key elsewhere in the value takes), and the receiver keeps the last, as JSON reads it."""
    for value in ({None: 1, "null": 2}, {None: 1, "null": 2, b"k": 3}):
        encoded = _wire.encode(value)
        assert _written(encoded)[0][1][:2] == [["null", 1], ["null", 2]]
        assert _wire.decode(encoded)["null"] == 2


def _restore_by_definition(item, blobs, depth):
    if depth > _wire.NESTING_MAX:
        raise _wire.WireError("too deep")
    if isinstance(item, dict):
        if len(item) == 1 and _wire.BLOB_KEY in item:
            index = item[_wire.BLOB_KEY]
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(blobs):
                raise _wire.WireError("no such blob")
            return blobs[index]
        return {key: _restore_by_definition(inner, blobs, depth + 1) for key, inner in item.items()}
    if isinstance(item, list):
        return [_restore_by_definition(inner, blobs, depth + 1) for inner in item]
    return item


def _decoded_by_definition(data: bytes):
    """("value", v) or ("refused",): what decoding `data` must give, visiting every value."""
    original = _wire._restore
    try:
        _wire._restore = _restore_by_definition
        return ("value", _wire.decode(data))
    except _wire.WireError:
        return ("refused",)
    finally:
        _wire._restore = original


def _decoded(data: bytes):
    try:
        return ("value", _wire.decode(data))
    except _wire.WireError:
        return ("refused",)


def _message(text: str, blobs=()) -> bytes:
    body = text.encode()
    parts = [_wire.MAGIC, len(body).to_bytes(_wire.LENGTH_BYTES, "big"), body]
    for blob in blobs:
        parts += [len(blob).to_bytes(_wire.LENGTH_BYTES, "big"), blob]
    return b"".join(parts)


NESTED = st.integers(0, 2 * _wire.NESTING_MAX + 4)


@settings(max_examples=500, deadline=None)
@given(value=VALUES, cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)),
                                                             max_size=3))
@example(value=[], cut=400, flips=[])
def test_a_damaged_or_hostile_message_decodes_as_the_format_defines_or_is_refused(value, cut, flips):
    """Whatever a worker sends — a message cut short, bytes changed — the decoder gives what visiting every value
    gives (blob references replaced, nesting bounded) or refuses with WireError, and nothing else."""
    data = bytearray(_wire.encode(value))
    for position, byte in flips:
        if position < len(data):
            data[position] = byte
    data = bytes(data[:max(cut, len(_wire.MAGIC))]) if cut < len(data) else bytes(data)
    assert _decoded(data) == _decoded_by_definition(data)


@settings(max_examples=300, deadline=None)
@given(depth=NESTED, kind=st.sampled_from(["list", "dict", "blob", "mixed"]), blobs=st.integers(0, 2),
       index=st.sampled_from(["0", "1", "-1", "true", "1.0", "\"0\"", "null"]))
def test_nesting_and_blob_references_are_bounded_as_the_format_defines(depth, kind, blobs, index):
    """Containers nested to around the limit (holding a scalar, nothing, or a blob reference, valid or not):
    refused exactly where visiting every value refuses."""
    inner = {"list": "1", "dict": "{}", "blob": '{"\\u0000b":' + index + "}", "mixed": '[{"a":[]}]'}[kind]
    text = inner
    for level in range(depth):
        text = "[" + text + "]" if level % 2 else '{"k":' + text + "}"
    data = _message(text, [b"x" * number for number in range(blobs)])
    assert _decoded(data) == _decoded_by_definition(data)
    assert _decoded(_message("[" * 100_000 + "]" * 100_000)) == ("refused",)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_to_plain_data_or_are_refused(data):
    outcome = _decoded(_wire.MAGIC + data)
    assert outcome == _decoded_by_definition(_wire.MAGIC + data)
    assert _decoded(data) in (("refused",), _decoded_by_definition(data))
