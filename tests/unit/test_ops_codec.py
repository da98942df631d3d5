import pytest
from hypothesis import given, strategies as st

from crashsweep.reference import Op, OpFormatError, decode_bytes, decode_ops, encode_bytes, encode_ops


@given(st.binary(max_size=64))
def test_bytes_round_trip(data):
    assert decode_bytes(encode_bytes(data)) == data


def test_text_stays_readable_and_binary_becomes_hex():
    assert encode_bytes(b"alice") == "alice"
    assert encode_bytes(b"\x00\xff") == "hex:00ff"
    assert encode_bytes(b"hex:literal").startswith("hex:")


@given(st.lists(st.one_of(
    st.builds(lambda k, v: Op("put", k, v), st.binary(max_size=8), st.binary(max_size=8)),
    st.builds(lambda k: Op("delete", k), st.binary(max_size=8)),
    st.builds(lambda k: Op("get", k), st.binary(max_size=8)),
    st.just(Op("sync")))))
def test_ops_round_trip(ops):
    assert decode_ops(encode_ops(ops)) == ops


@pytest.mark.parametrize("bad, message", [
    ([["put", "a"]], "put takes 2"), ([["frobnicate"]], "unknown operation"), ("notalist", "expected a list"),
    ([["put", "a", 5]], "expected a string"), ([["get", "hex:zz"]], "not valid hex"), ([[]], "expected a list"),
])
def test_malformed_ops_are_rejected_with_the_place(bad, message):
    with pytest.raises(OpFormatError, match=message):
        decode_ops(bad)
