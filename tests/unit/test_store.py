"""The built-in B^ε-tree store: behaves like a dict, survives reopening, refuses damage, runs on a file."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crashsweep.disk_model import MemoryBlockDevice, RealFileDevice
from crashsweep.store import (
    BetreeStore, CorruptionDetected, EntryTooLargeError, StoreConfig, StoreConfigError, StoreError, open_file,
)

TINY = StoreConfig(node_size_bytes=4096, fanout=4, cache_bytes=16384, journal_sectors=8)


def tiny_store(sectors: int = 600, config: StoreConfig = TINY):
    device = MemoryBlockDevice(4096, sectors)
    return device, BetreeStore(device, config)


def test_a_long_random_workload_matches_a_dict_with_splits_flushes_merges_and_checkpoints():
    device, store = tiny_store()
    reference, rng = {}, random.Random(7)
    for step in range(4000):
        key = b"key-%04d" % rng.randrange(600)
        roll = rng.random()
        if roll < 0.55:
            value = rng.randbytes(rng.randrange(0, 400))
            store.put(key, value)
            reference[key] = value
        elif roll < 0.8:
            store.delete(key)
            reference.pop(key, None)
        else:
            assert store.get(key) == reference.get(key)
        if step % 40 == 0:
            store.sync()
        if step % 400 == 0:
            assert store.tree.check_invariants() >= 1
    assert store.tree.check_invariants() > 10                  # the tree really grew
    assert dict(store.items()) == reference
    assert store.scan(b"key-0100", b"key-0200") == sorted((k, v) for k, v in reference.items()
                                                         if b"key-0100" <= k < b"key-0200")
    assert store.stats()["checkpoints"] >= 3
    store.sync()
    reopened = BetreeStore(device, TINY)
    assert dict(reopened.items()) == reference


def test_deleting_everything_shrinks_the_tree_back():
    _, store = tiny_store()
    for index in range(400):
        store.put(b"k%04d" % index, b"v" * 100)
    grown = store.tree.check_invariants()
    for index in range(400):
        store.delete(b"k%04d" % index)
    store.compact()
    store.checkpoint()
    assert store.items() == [] and store.tree.check_invariants() < grown / 4


settings_fast = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_fast
@given(st.lists(st.tuples(st.sampled_from(["put", "delete", "get", "sync", "checkpoint", "reopen"]),
                          st.integers(0, 60), st.binary(max_size=500)), max_size=120))
def test_the_store_is_a_dict_under_any_history_and_reopening(steps):
    device, store = tiny_store(300)
    reference = {}
    for action, number, value in steps:
        key = b"k%02d" % number
        if action == "put":
            store.put(key, value)
            reference[key] = value
        elif action == "delete":
            store.delete(key)
            reference.pop(key, None)
        elif action == "get":
            assert store.get(key) == reference.get(key)
        elif action == "sync":
            store.sync()
        elif action == "checkpoint":
            store.checkpoint()
        else:
            store.sync()
            store = BetreeStore(device, TINY)
    assert dict(store.items()) == reference
    store.tree.check_invariants()


def test_recovery_writes_nothing():
    device, store = tiny_store()
    for index in range(300):
        store.put(b"k%03d" % index, b"x" * 50)
        if index % 7 == 0:
            store.sync()
    store.sync()
    before = dict(device.sectors) if hasattr(device, "sectors") else bytes(device.read(0, device.sector_count))
    reopened = BetreeStore(device, TINY)
    reopened.items()
    after = dict(device.sectors) if hasattr(device, "sectors") else bytes(device.read(0, device.sector_count))
    assert before == after
    assert any(event.startswith("replayed") for event in reopened.events)


def test_damaged_node_is_refused_naming_its_sector():
    device, store = tiny_store()
    for index in range(200):
        store.put(b"k%03d" % index, b"y" * 60)
    store.checkpoint()
    block, length, _ = store.pages.table[store.tree.root_id]
    sector = store.pages.sector_of(block)
    data = bytearray(device.read(sector))
    data[40] ^= 0x10
    device.write(sector, bytes(data))
    device.flush()
    with pytest.raises(CorruptionDetected, match=f"at sector {sector}"):
        BetreeStore(device, TINY).items()


def test_damaged_superblock_is_refused_not_skipped():
    device, store = tiny_store()
    store.put(b"a", b"1")
    store.checkpoint()
    data = bytearray(device.read(1))
    data[10] ^= 1
    device.write(1, bytes(data))
    with pytest.raises(CorruptionDetected, match="sector 1"):
        BetreeStore(device, TINY)


def test_real_file_store_persists_across_processes_worth_of_reopens(tmp_path):
    path = str(tmp_path / "data.betree")
    with open_file(path, 4 << 20, StoreConfig(node_size_bytes=8192, fanout=4, cache_bytes=65536,
                                              journal_sectors=16)) as store:
        for index in range(2000):
            store.put(b"user%05d" % index, b"%d" % (index * index))
        store.delete(b"user00007")
    with open_file(path) as store:                      # geometry comes from the superblock
        assert store.get(b"user01999") == b"%d" % (1999 * 1999)
        assert store.get(b"user00007") is None
        assert len(store.items()) == 1999
        assert store.config.node_size_bytes == 8192


def test_bad_configuration_and_entries_are_clear_errors(tmp_path):
    with pytest.raises(StoreConfigError, match="multiple of the sector size"):
        BetreeStore(MemoryBlockDevice(4096, 100), StoreConfig(node_size_bytes=5000))
    with pytest.raises(StoreConfigError, match="fanout"):
        StoreConfig(fanout=1).validate(4096)
    with pytest.raises(StoreConfigError, match="no seeded bug"):
        StoreConfig(bug="nope").validate(4096)
    with pytest.raises(StoreConfigError, match="too small"):
        BetreeStore(MemoryBlockDevice(4096, 12), TINY)
    with pytest.raises(StoreConfigError, match="does not exist"):
        open_file(str(tmp_path / "missing.betree"))
    _, store = tiny_store()
    with pytest.raises(EntryTooLargeError, match="exceed"):
        store.put(b"k", b"v" * 5000)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.get(b"k")


def test_the_store_runs_on_the_real_file_device_directly(tmp_path):
    device = RealFileDevice(str(tmp_path / "raw.img"), 4096, 200)
    store = BetreeStore(device, TINY)
    store.put(b"k", b"v")
    store.sync()
    assert BetreeStore(device, TINY).get(b"k") == b"v"
    device.close()


def test_the_cache_stays_within_its_bound_and_its_byte_count_stays_exact():
    """The cache's byte count is kept, not summed per read: it must equal the real sum at every check."""
    device, store = tiny_store(sectors=2000)
    reference, rng = {}, random.Random(3)
    for step in range(3000):
        key = b"key-%04d" % rng.randrange(800)
        if step < 1200 or rng.random() < 0.2:
            reference[key] = rng.randbytes(rng.randrange(50, 300))
            store.put(key, reference[key])
        else:
            assert store.get(key) == reference.get(key)
        if step % 50 == 0:
            store.sync()
        pages = store.pages
        if pages._total_exact:
            assert pages._total == sum(node.size for node in pages.cache.values())
        assert list(pages.leaf_order) == [node_id for node_id, node in pages.cache.items() if node.is_leaf]
        clean = sum(node.size for node_id, node in pages.cache.items() if node_id not in pages.dirty)
        assert clean == 0 or pages._cached_bytes() <= TINY.cache_bytes + 4096 * 4     # within a few nodes' slack
