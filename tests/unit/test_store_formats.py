"""On-disk formats of the built-in store: sizes, round trips, and damage always detected."""

import crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crashsweep.store import _journal_format as journal
from crashsweep.store import _node_format as node
from crashsweep.store._checksum import checksum
from crashsweep.store._superblock_format import Superblock, decode_superblock, encode_superblock
from crashsweep.store._table_format import decode_table_block, encode_table
from crashsweep.store.errors import FormatError

keys = st.binary(min_size=1, max_size=40)
values = st.binary(max_size=300)


def test_crc32c_matches_the_published_check_value():
    assert crc32c.crc32c(b"123456789") == 0xE3069283          # RFC 3720 / iSCSI check value


def test_the_address_changes_every_checksum():
    assert checksum(b"node", 1024) != checksum(b"node", 1025)


@given(st.dictionaries(keys, values, max_size=30))
def test_leaf_round_trips_through_a_block(items):
    keys_sorted = sorted(items)
    payload = node.encode_leaf(keys_sorted, [items[k] for k in keys_sorted])
    data, crc = node.encode_block(node.KIND_LEAF, payload, 77, 512)
    assert len(data) % 512 == 0
    kind, decoded, decoded_crc = node.decode_block(data, 77)
    assert (kind, decoded_crc) == (node.KIND_LEAF, crc)
    assert node.decode_leaf(decoded) == (keys_sorted, [items[k] for k in keys_sorted])


@given(st.lists(st.integers(0, 2**63), min_size=1, max_size=9),
       st.dictionaries(keys, st.tuples(st.sampled_from([node.MESSAGE_PUT, node.MESSAGE_DELETE]), values),
                       max_size=20), st.data())
def test_internal_node_round_trips(children, buffer, data):
    pivots = sorted(data.draw(st.sets(keys, min_size=len(children) - 1, max_size=len(children) - 1)))
    payload = node.encode_internal(children, pivots, buffer)
    assert node.decode_internal(payload) == (children, pivots, buffer)


def test_a_block_read_at_another_address_or_with_a_flipped_bit_is_refused():
    data, _ = node.encode_block(node.KIND_LEAF, node.encode_leaf([b"a"], [b"1"]), 40, 512)
    with pytest.raises(FormatError, match="checksum"):
        node.decode_block(data, 41)                            # a misdirected write
    damaged = bytearray(data)
    damaged[20] ^= 1
    with pytest.raises(FormatError):
        node.decode_block(bytes(damaged), 40)
    with pytest.raises(FormatError, match="zeros"):
        node.decode_block(bytes(512), 40)


def test_truncated_payloads_are_format_errors_not_crashes():
    payload = node.encode_leaf([b"abc"], [b"value"])
    for cut in range(len(payload)):
        with pytest.raises(FormatError):
            node.decode_leaf(payload[:cut])


def test_table_round_trips_across_several_blocks():
    entries = {node_id: (node_id * 3, 4096, node_id ^ 0xABCDEF) for node_id in range(500)}
    payloads = encode_table(entries, 4096)
    assert len(payloads) == 3
    merged = {}
    for payload in payloads:
        merged.update(decode_table_block(payload))
    assert merged == entries
    with pytest.raises(FormatError):
        decode_table_block(payloads[0][:-1])


def test_superblock_round_trips_and_names_its_sector():
    superblock = Superblock(7, 12, 3, 5, 40, 4096, 16384, 8, 100, 31, ((4, 8192, 99), (9, 4096, 1)))
    sector = encode_superblock(superblock, 1)
    assert len(sector) == 4096 and decode_superblock(sector, 1) == superblock
    with pytest.raises(FormatError, match="checksum"):
        decode_superblock(sector, 0)                           # written to the other slot by mistake


@given(st.lists(st.tuples(st.sampled_from([node.MESSAGE_PUT, node.MESSAGE_DELETE]), keys, values), max_size=40))
def test_journal_block_round_trips_sector_by_sector(records):
    records = [(kind, key, value if kind == node.MESSAGE_PUT else b"") for kind, key, value in records]
    payload = journal.encode_records(records)
    data = journal.encode_journal_block(payload, 9, 100, 512)
    count = len(data) // 512
    assert count == journal.sectors_for(len(payload), 512)
    parts = []
    for index in range(count):
        sequence, position, total, block_crc, used = journal.decode_journal_sector(
            data[index * 512:(index + 1) * 512], 100 + index)
        assert (sequence, position, total, block_crc) == (9, index, count, journal.block_checksum(payload))
        parts.append(used)
    assert journal.decode_records(b"".join(parts)) == records


@given(st.dictionaries(keys, values, max_size=40), st.lists(keys, max_size=10))
def test_a_point_read_of_an_encoded_leaf_finds_what_decoding_finds(items, probes):
    ordered = sorted(items)
    payload = node.encode_leaf(ordered, [items[k] for k in ordered])
    assert node.check_leaf(payload) == len(items)
    for key in list(items) + probes:
        assert node.leaf_lookup(payload, key) == items.get(key)
