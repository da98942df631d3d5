"""The store never lies: damaged images give the right map or CorruptionDetected, never a wrong value and
never another exception (tests/quality/store_fuzz.py describes the campaign; .ci/run runs it here)."""

import os

from crashsweep.disk_model import MemoryBlockDevice
from crashsweep.store import BetreeStore, CorruptionDetected
from crashsweep.store import _store

from tests.quality import store_fuzz

IMAGES = int(os.environ.get("CRASHSWEEP_FUZZ_IMAGES", "20000"))


def test_fuzzed_images_give_the_right_map_or_a_refusal():
    examples = []
    outcomes = store_fuzz.campaign(0, IMAGES, examples=examples)
    assert outcomes["wrong"] == 0 and outcomes["other-error"] == 0, (outcomes, examples)
    assert outcomes["refused"] > IMAGES // 10 and outcomes["right"] > IMAGES // 10, outcomes


def test_the_campaign_catches_a_store_that_trusts_a_lone_superblock(monkeypatch):
    """The campaign can fail: with the zero-superblock check removed it finds wrong values."""
    monkeypatch.setattr(_store, "_zero_superblock_allowed", lambda superblock, address: True)
    assert store_fuzz.campaign(0, 5000)["wrong"] > 0


def _store_with_checkpoints(checkpoints: int):
    device = MemoryBlockDevice(512, 160)
    store = BetreeStore(device, store_fuzz.CONFIG)
    for index in range(checkpoints):
        store.put(b"k%d" % index, b"v%d" % index)
        store.delete(b"k%d" % (index - 1))
        store.sync()
        store.checkpoint()
    return device, {b"k%d" % (checkpoints - 1): b"v%d" % (checkpoints - 1)}


def _open(device):
    copy = MemoryBlockDevice(512, 160)
    copy.sectors = dict(device.sectors)
    return dict(BetreeStore(copy, store_fuzz.CONFIG).items())


def test_zeroed_newest_superblock_is_refused_not_an_older_checkpoint():
    for checkpoints in (2, 3, 4):
        device, expected = _store_with_checkpoints(checkpoints)
        assert _open(device) == expected
        device.sectors[checkpoints % 2] = bytes(512)
        try:
            got = _open(device)
        except CorruptionDetected:
            continue
        raise AssertionError(f"opened with a zeroed newest superblock: {got}")


def test_both_superblocks_zeroed_is_refused_not_an_empty_store():
    device, _ = _store_with_checkpoints(1)
    device.sectors[0] = device.sectors[1] = bytes(512)
    try:
        got = _open(device)
    except CorruptionDetected:
        return
    raise AssertionError(f"opened a store whose superblocks are gone: {got}")


def test_the_first_checkpoint_fills_both_superblocks_and_the_copy_alone_still_opens():
    device, expected = _store_with_checkpoints(1)
    assert all(any(device.sectors[address]) for address in (0, 1))
    device.sectors[1] = bytes(512)        # as if the crash fell between the two writes of the first checkpoint
    assert _open(device) == expected
