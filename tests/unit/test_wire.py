"""The wire format between worker processes and crashsweep: what is encoded comes back, byte for byte as the
reference encoding (a recursive conversion of every value, the format's definition) makes it."""

import json

from hypothesis import given, settings, strategies as st

from crashsweep.crash_explorer import _wire

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner) | st.tuples(inner, inner)
                      | st.dictionaries(st.text() | st.integers() | st.booleans() | st.none()
                                      | st.floats(allow_nan=False), inner), max_leaves=40)


def _reference(value) -> bytes:
    """The format by its definition: bytes out as numbered blobs, every dict key through `wire_key`."""
    blobs = []

    def convert(item):
        if isinstance(item, (bytes, bytearray, memoryview)):
            blobs.append(bytes(item))
            return {_wire.BLOB_KEY: len(blobs) - 1}
        if isinstance(item, dict):
            return {_wire.wire_key(key): convert(inner) for key, inner in item.items()}
        if isinstance(item, (list, tuple)):
            return [convert(inner) for inner in item]
        return item

    text = json.dumps(convert(value), separators=(",", ":")).encode()
    parts = [_wire.MAGIC, len(text).to_bytes(_wire.LENGTH_BYTES, "big"), text]
    for blob in blobs:
        parts += [len(blob).to_bytes(_wire.LENGTH_BYTES, "big"), blob]
    return b"".join(parts)


def _as_sent(value):
    if isinstance(value, dict):
        return {_wire.wire_key(key): _as_sent(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_sent(inner) for inner in value]
    return value


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_encoding_is_the_reference_encoding_and_decodes_to_the_value(value):
    encoded = _wire.encode(value)
    assert encoded == _reference(value)
    assert _wire.decode(encoded) == _as_sent(value)


def test_a_result_batch_with_bytes_keys_and_deep_blobs_encodes_as_the_reference():
    batch = ["results", [{"state": 3, "choice": {"persist": list(range(500)), "torn": [[7, [0, 2]]]},
                          "actual": {"k": "v"}, "raw": [b"\x00\x01", {"deep": [b"x" * 70_000]}]},
                         {"state": 4, "odd": {b"key": b"value", (1, 2): "tuple key"}}]]
    assert _wire.encode(batch) == _reference(batch)
    decoded = _wire.decode(_wire.encode(batch))
    assert decoded[1][0]["raw"][1]["deep"][0] == b"x" * 70_000
    assert decoded[1][1]["odd"] == {"b'key'": b"value", "(1, 2)": "tuple key"}


def test_keys_travel_as_json_names_them_on_both_paths():
    plain = {True: 1, None: 2, 3: 3, 1.5: 4}
    assert _wire.decode(_wire.encode(plain)) == {"true": 1, "null": 2, "3": 3, "1.5": 4}
    with_bytes_key = {**plain, b"k": 5}
    assert _wire.decode(_wire.encode(with_bytes_key)) == {"true": 1, "null": 2, "3": 3, "1.5": 4, "b'k'": 5}
