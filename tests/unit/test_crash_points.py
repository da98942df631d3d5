import random

from crashsweep.crash_explorer import DurableImage, crash_points
from crashsweep.crash_explorer._image import sector_hash
from crashsweep.disk_model import EventLog, SimulatedBlockDevice
from crashsweep.reference import History, put, sync


def _run(volatile_cache, fua=False):
    log = EventLog()
    device = SimulatedBlockDevice(512, 32, random.Random(0), volatile_cache=volatile_cache, log=log)
    history = History([put(b"a", b"1"), sync()])
    log.begin_op(0)
    log.end_op(0)
    log.begin_op(1)
    device.write(4, b"x" * 1024, fua=fua)
    device.flush()
    log.end_op(1)
    return crash_points(log, history, volatile_cache)


def test_volatile_cache_keeps_completed_write_pending_until_flush():
    walk = _run(volatile_cache=True)
    pending_sets = [point.pending for point in walk.points]
    assert pending_sets == [(), (0,), ()]   # before, submitted+completed (still volatile), after flush
    assert walk.points[-1].durable_count == 1


def test_no_cache_mode_makes_a_completed_write_durable():
    walk = _run(volatile_cache=False)
    assert [point.pending for point in walk.points] == [(), (0,), ()]
    assert walk.durable_sequence == [0]


def test_fua_write_is_durable_on_completion_even_with_volatile_cache():
    walk = _run(volatile_cache=True, fua=True)
    assert walk.durable_sequence == [0]


def test_crash_windows_follow_op_boundaries_and_merge_for_one_disk_state():
    walk = _run(volatile_cache=True)
    assert walk.points[0].windows == ((0, 0), (0, 1))   # before any I/O: before and during the put
    assert walk.points[-1].windows == ((0, 1), (1, 1))  # after the flush: during sync, then after it returned


def test_state_hash_equals_hash_of_the_materialized_image():
    log = EventLog()
    device = SimulatedBlockDevice(512, 32, random.Random(3), log=log)
    history = History([])
    for round_ in range(3):
        requests = [device.submit_write(s, bytes([round_ + 1]) * 512 * 2) for s in (1, 6, 10)]
        device.wait_all(requests)
        device.flush()
    walk = crash_points(log, history, True)
    image = DurableImage(walk, log.payloads, 512)
    for point in walk.points:
        image.advance(point.durable_count)
        choice = {"persist": list(point.pending[:1]), "torn": [[rid, [1]] for rid in point.pending[1:2]]}
        overlay = image.overlay(choice)
        view = image.view(overlay)
        expected = sum(sector_hash(s, view.get(s)) for s in range(32) if view.get(s) is not None) % (1 << 128)
        assert image.state_hash(overlay, choice) == expected


def test_pending_write_older_than_durable_version_does_not_land():
    log = EventLog()
    device = SimulatedBlockDevice(512, 32, random.Random(0), volatile_cache=True, log=log)
    old = device.submit_write(2, b"o" * 512)
    device.wait(old)
    device.write(2, b"n" * 512, fua=True)
    walk = crash_points(log, History([]), True)
    point = walk.points[-1]
    image = DurableImage(walk, log.payloads, 512)
    image.advance(point.durable_count)
    assert point.pending == (old,)
    assert image.overlay({"persist": [old]}) == {}


def test_a_durable_image_over_a_base_hashes_the_base_s_content_with_sector_hashes_remembered():
    """Images that nested crashes start from share bytes objects with earlier ones, whose sector hashes are
    remembered by object: a base's hash is its content's, whichever objects hold that content."""
    walk = _run(volatile_cache=True)
    for round_ in range(50):
        base = {sector: bytes([(sector + round_) % 7]) * 512 for sector in range(1, 6)}
        expected = sum(sector_hash(s, d) for s, d in base.items()) % (1 << 128)
        assert DurableImage(walk, {}, 512, base=base).hash == expected
        assert DurableImage(walk, {}, 512, base=dict(base)).hash == expected     # the same objects again
