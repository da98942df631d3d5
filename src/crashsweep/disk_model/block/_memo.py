"""The observation memo on the simulated block device (`disk_model/_memo.py`): requests answered from a state.

A built-in block engine reaches its storage only through the device's requests (`submit_read`, `submit_write`,
`submit_flush`, `wait`, `close`) and is otherwise a deterministic function of what they return. While a memo
records, the engine runs on a `NotedBlockDevice`, which notes every request and its response (a request id,
the data a read returns, or the error a request raised), and the harness's operation markers go through a
`NotedEventLog`. Without the engine, `DeviceMemo.walk` answers the same requests from a fresh
`SimulatedBlockDevice` holding the state's image and drawing on the state's own rng: the same device code,
so the same completion order, the same data and the same event log as a live run on that state — a state
that crashes again is planned from that log and that rng as from a live run's.

Invariant: a `NotedBlockDevice` and a plain `SimulatedBlockDevice` with equal images and equal rngs give
equal responses to equal request sequences (they are one implementation; tests/simulation/test_block_memo.py
checks every state of sweeps with and without the memo).
"""

from __future__ import annotations

import hashlib

from crashsweep.disk_model._memo import ObservationMemo, _recording
from crashsweep.disk_model.block._events import EventLog
from crashsweep.disk_model.block._simulated import SimulatedBlockDevice
from crashsweep.disk_model.errors import DiskModelError


def _error_key(error: DiskModelError) -> tuple:
    """What a request's error is remembered by: its type and message (they name the sector and the fault)."""
    return ("error", type(error).__name__, str(error))


def _image_key(image: dict) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for sector in sorted(image):
        digest.update(sector.to_bytes(8, "little"))
        digest.update(image[sector])
    return digest.digest()


def _answering(name: str):
    """function(device, *arguments) -> the response key of the device's request `name` (a walk's hot path)."""
    method = getattr(SimulatedBlockDevice, name)

    def answer(device, *arguments):
        try:
            return method(device, *arguments)
        except DiskModelError as error:
            return _error_key(error)
    return answer


# call name -> function(device, *arguments) -> response key (a fresh plain device answers; see `DeviceMemo`)
DEVICE_ANSWERS = {name: _answering(name) for name in ("submit_read", "submit_write", "submit_flush", "wait", "close")}
DEVICE_ANSWERS.update({
    "current_image": lambda device: _image_key(device.current_image()),
    "begin_op": lambda device, index: device.log.begin_op(index),
    "end_op": lambda device, index: device.log.end_op(index),
})


class QuietLog:
    """The log of a walk whose run crashes no further: nothing is kept (a walk at the last crash depth)."""

    def begin_op(self, op_index: int) -> None:
        pass

    def end_op(self, op_index: int) -> None:
        pass

    def submitted(self, request_id, request_type, sector, sector_count, fua, payload) -> None:
        pass

    def completed(self, request_id, request_type) -> None:
        pass


class DeviceMemo(ObservationMemo):
    """The memo of an engine's device requests. Example: `memo.walk(SimulatedBlockDevice(..., base=image))`."""

    answers = DEVICE_ANSWERS


def _recording_memo(memo: ObservationMemo | None) -> ObservationMemo | None:
    """`memo` while it records (between its `begin` and `end`), else None."""
    return memo if memo is not None and memo.trail is not None else None


class NotedBlockDevice(SimulatedBlockDevice):
    """The simulated device, noting each request and its response in the trail of the memo that recorded when
    it was made (`_recording`), and only while that memo records: a nested state's memo recording meanwhile
    gets none of this device's requests."""

    def __init__(self, *arguments, **keywords):
        super().__init__(*arguments, **keywords)
        self.memo = _recording[0]

    def _noted(self, call: tuple | None, perform):
        memo = _recording_memo(self.memo)
        if memo is None:
            return perform()
        if call is None:          # arguments a fresh device could not be given back: this run cannot be answered
            memo.disable()
            return perform()
        try:
            response = perform()
        except DiskModelError as error:
            memo.note(call, _error_key(error))
            raise
        memo.note(call, response)
        return response

    def submit_read(self, sector: int, sector_count: int) -> int:
        return self._noted(("submit_read", sector, sector_count),
                           lambda: SimulatedBlockDevice.submit_read(self, sector, sector_count))

    def submit_write(self, sector: int, data: bytes, fua: bool = False) -> int:
        kept = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else None
        return self._noted(None if kept is None else ("submit_write", sector, kept, fua),
                           lambda: SimulatedBlockDevice.submit_write(self, sector, data, fua))

    def submit_flush(self) -> int:
        return self._noted(("submit_flush",), lambda: SimulatedBlockDevice.submit_flush(self))

    def wait(self, request_id: int) -> bytes | None:
        return self._noted(("wait", request_id), lambda: SimulatedBlockDevice.wait(self, request_id))

    def close(self) -> None:
        return self._noted(("close",), lambda: SimulatedBlockDevice.close(self))

    def current_image(self) -> dict[int, bytes]:
        image = SimulatedBlockDevice.current_image(self)
        memo = _recording_memo(self.memo)
        if memo is not None:
            memo.note(("current_image",), _image_key(image))
        return image


class NotedEventLog(EventLog):
    """The event log of a run a memo records: the harness's operation markers are noted among the requests
    (a walk's device logs them in the same places, so its log is the live run's). Like `NotedBlockDevice`,
    it notes only for the memo that recorded when it was made."""

    def __init__(self) -> None:
        super().__init__()
        self.memo = _recording[0]

    def begin_op(self, op_index: int) -> None:
        EventLog.begin_op(self, op_index)
        memo = _recording_memo(self.memo)
        if memo is not None:
            memo.note(("begin_op", op_index), None)

    def end_op(self, op_index: int) -> None:
        EventLog.end_op(self, op_index)
        memo = _recording_memo(self.memo)
        if memo is not None:
            memo.note(("end_op", op_index), None)
