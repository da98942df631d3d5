import random

import pytest

from crashsweep.disk_model import (
    COMPLETE, FLUSH, SUBMIT, WRITE, DeviceIOError, EventLog, FaultPlan, FaultPlanError, RealFileDevice,
    SimulatedBlockDevice,
)


def _order(seed):
    device = SimulatedBlockDevice(512, 64, random.Random(seed))
    requests = [device.submit_write(index, bytes([index]) * 512) for index in range(10)]
    device.wait_all(requests)
    return [event.request_id for event in device.log.events if event.kind == COMPLETE]


def test_same_seed_same_event_log_and_some_seed_reorders():
    assert _order(5) == _order(5)
    assert any(_order(seed) != sorted(_order(seed)) for seed in range(10))


def test_flush_completes_only_after_earlier_writes():
    for seed in range(20):
        device = SimulatedBlockDevice(512, 64, random.Random(seed))
        writes = [device.submit_write(index, b"x" * 512) for index in range(5)]
        flush = device.submit_flush()
        device.wait(flush)
        completions = [event.request_id for event in device.log.events if event.kind == COMPLETE]
        assert completions.index(flush) > max(completions.index(w) for w in writes)


def test_events_are_tagged_with_the_client_operation_and_payloads_kept_apart():
    log = EventLog()
    device = SimulatedBlockDevice(512, 64, random.Random(0), log=log)
    log.begin_op(4)
    device.write(2, b"p" * 512)
    log.end_op(4)
    submits = [event for event in log.events if event.kind == SUBMIT and event.request_type == WRITE]
    assert submits[0].op_index == 4 and log.payloads[submits[0].request_id] == b"p" * 512


def test_base_image_is_read_but_never_written():
    base = {1: b"b" * 512}
    device = SimulatedBlockDevice(512, 64, random.Random(0), base=base)
    assert device.read(1) == b"b" * 512
    device.write(1, b"n" * 512)
    assert device.read(1) == b"n" * 512 and base[1] == b"b" * 512


def test_latent_sector_error_fails_every_read_and_read_error_fails_once():
    device = SimulatedBlockDevice(512, 64, random.Random(0))
    device.unreadable.add(3)
    device.failing_once.add(4)
    for _ in range(2):
        with pytest.raises(DeviceIOError):
            device.read(3)
    with pytest.raises(DeviceIOError):
        device.read(4)
    assert device.read(4) == bytes(512)


def test_fault_plan_parsing_and_errors():
    plan = FaultPlan.parse("torn,lost")
    assert plan.has("crash") and plan.has("torn") and not plan.has("corrupt")
    assert FaultPlan.parse("all").corruption_kinds == ["corrupt", "misdirect", "read-error", "latent"]
    assert FaultPlan.from_json(plan.to_json()) == plan
    with pytest.raises(FaultPlanError, match="unknown fault 'melt'"):
        FaultPlan.parse("crash,melt")


def test_real_file_device_persists_across_reopen(tmp_path):
    path = str(tmp_path / "disk.img")
    with RealFileDevice(path, 512, 16) as device:
        device.write(5, b"z" * 512)
        device.flush()
    with RealFileDevice(path, 512, 16) as device:
        assert device.read(5) == b"z" * 512


def test_real_file_device_refuses_a_file_of_the_wrong_size(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(b"x" * 1000)
    with pytest.raises(ValueError, match="expected 8192"):
        RealFileDevice(str(path), 512, 16)


def test_flush_event_types_are_logged():
    device = SimulatedBlockDevice(512, 16, random.Random(0))
    device.flush()
    assert [(e.kind, e.request_type) for e in device.log.events] == [(SUBMIT, FLUSH), (COMPLETE, FLUSH)]
