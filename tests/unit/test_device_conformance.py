"""One conformance suite that every block device passes: simulated (both cache modes), memory, real file."""

import random

import pytest

from crashsweep.disk_model import DeviceRangeError, MemoryBlockDevice, RealFileDevice, SimulatedBlockDevice

SECTOR = 512
COUNT = 32


@pytest.fixture(params=["simulated-volatile", "simulated-no-cache", "memory", "real-file"])
def device(request, tmp_path):
    if request.param == "simulated-volatile":
        made = SimulatedBlockDevice(SECTOR, COUNT, random.Random(1), volatile_cache=True)
    elif request.param == "simulated-no-cache":
        made = SimulatedBlockDevice(SECTOR, COUNT, random.Random(1), volatile_cache=False)
    elif request.param == "memory":
        made = MemoryBlockDevice(SECTOR, COUNT)
    else:
        made = RealFileDevice(str(tmp_path / "device.img"), SECTOR, COUNT)
    yield made
    made.close()


def test_unwritten_sectors_read_as_zeros(device):
    assert device.read(0, 2) == bytes(2 * SECTOR)


def test_read_returns_latest_completed_write(device):
    device.write(3, b"a" * SECTOR)
    device.write(3, b"b" * SECTOR)
    device.write(4, b"c" * 2 * SECTOR)
    assert device.read(3, 3) == b"b" * SECTOR + b"c" * 2 * SECTOR


def test_asynchronous_requests_all_complete(device):
    requests = [device.submit_write(index, bytes([index]) * SECTOR) for index in range(8)]
    flush = device.submit_flush()
    device.wait_all(requests + [flush])
    assert [device.read(index)[0] for index in range(8)] == list(range(8))


def test_read_of_fua_write_and_flush(device):
    device.write(7, b"f" * SECTOR, fua=True)
    device.flush()
    assert device.read(7) == b"f" * SECTOR


@pytest.mark.parametrize("sector, data", [(COUNT, b"x" * SECTOR), (-1, b"x" * SECTOR), (0, b"x" * 100),
                                          (COUNT - 1, b"x" * 2 * SECTOR), (0, b"")])
def test_out_of_range_or_partial_writes_are_refused(device, sector, data):
    with pytest.raises(DeviceRangeError):
        device.write(sector, data)


def test_out_of_range_read_is_refused(device):
    with pytest.raises(DeviceRangeError):
        device.read(COUNT - 1, 2)


def test_unknown_request_is_refused(device):
    with pytest.raises(DeviceRangeError):
        device.wait(10_000)


def test_geometry_is_reported(device):
    assert (device.sector_size, device.sector_count, device.size_bytes) == (SECTOR, COUNT, SECTOR * COUNT)
