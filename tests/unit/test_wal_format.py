import crc32c
import pytest

from crashsweep.disk_model import MemoryBlockDevice
from crashsweep.engines.examples import CorruptionDetected, WalConfig, WalStore
from crashsweep.engines.examples import wal_format as fmt


def test_crc32c_published_vectors():
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    assert crc32c.crc32c(bytes(32)) == 0x8A9136AA


def test_superblock_round_trip_and_address_in_checksum():
    data = fmt.encode_superblock(512, 1, 7, 1, 3)
    assert fmt.decode_superblock(data, 1) == (7, 1, 3)
    with pytest.raises(fmt.FormatError):
        fmt.decode_superblock(data, 0)


def test_checkpoint_and_log_block_round_trip():
    items = {b"a": b"1", b"b": b"x" * 700}
    data = fmt.encode_checkpoint(512, 10, items)
    assert fmt.decode_checkpoint(data, 10) == items
    block = fmt.encode_log_block(512, 40, 2, 5, fmt.encode_records([(fmt.RECORD_PUT, b"k", b"v" * 600)]))
    decoded = [fmt.decode_log_sector(block[i * 512:(i + 1) * 512], 40 + i) for i in range(len(block) // 512)]
    payload = b"".join(d[4] for d in decoded)
    assert fmt.decode_records(payload) == [(fmt.RECORD_PUT, b"k", b"v" * 600)]


def test_store_on_a_device_survives_reopen_and_checkpoints():
    device = MemoryBlockDevice(512, 256)
    config = WalConfig(checkpoint_sectors=64, log_sectors=32, checkpoint_every_syncs=2)
    store = WalStore(device, config)
    for index in range(20):
        store.put(b"k%d" % index, b"v" * index)
        if index % 3 == 2:
            store.sync()
    store.delete(b"k1")
    store.sync()
    reopened = WalStore(device, config)
    assert dict(reopened.items()) == dict(store.items())


def test_damaged_superblock_is_refused_not_ignored():
    device = MemoryBlockDevice(512, 256)
    config = WalConfig(checkpoint_sectors=32, log_sectors=32)
    WalStore(device, config).sync()
    damaged = bytearray(device.read(1))
    damaged[20] ^= 1
    device.write(1, bytes(damaged))
    with pytest.raises(CorruptionDetected, match="sector 1"):
        WalStore(device, config)


def test_config_rejects_unknown_bug_and_small_device():
    with pytest.raises(ValueError, match="unknown bug"):
        WalConfig(bug="nope")
    with pytest.raises(ValueError, match="needs"):
        WalStore(MemoryBlockDevice(512, 16), WalConfig())
