"""The simulated block device: an asynchronous bus with seeded reordering and an event log.

The device completes outstanding requests in an order a seeded `random.Random`
chooses, never duplicates one and drops none (a crash is not simulated here: the
crash explorer computes crash states from the event log afterwards).

Data is layered: a read-only `base` image (sector -> bytes, shared, never
mutated: copy-on-write), then the writes completed on this device. Faults that
act on reads are kept beside the data, not mixed into it: `unreadable` sectors
(latent errors) and `failing_once` sectors (a transient read error).

Invariants:
- a flush completes only after every write submitted before it completed;
- `base` is never written;
- the same seed and the same request sequence give the same event log.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

from crashsweep.disk_model.block._events import FLUSH, READ, WRITE, EventLog
from crashsweep.disk_model.block._interface import BlockDevice, check_geometry
from crashsweep.disk_model.errors import DeviceIOError, DeviceRangeError

OUTSTANDING_REQUESTS_MAX = 4096


class SimulatedBlockDevice(BlockDevice):
    """A block device in memory that logs every event. Example:

        >>> import random
        >>> device = SimulatedBlockDevice(512, 16, random.Random(1))
        >>> device.write(3, b"x" * 512); device.flush()
        >>> device.read(3)[:1]
        b'x'
    """

    def __init__(self, sector_size: int, sector_count: int, rng: random.Random,
                 volatile_cache: bool = True, base: Mapping[int, bytes] | None = None,
                 log: EventLog | None = None):
        check_geometry(sector_size, sector_count)
        self.sector_size = sector_size
        self.sector_count = sector_count
        self.volatile_cache = volatile_cache
        self.rng = rng
        self.base: Mapping[int, bytes] = base if base is not None else {}
        self.written: dict[int, bytes] = {}
        self.log = log if log is not None else EventLog()
        self.unreadable: set[int] = set()
        self.failing_once: set[int] = set()
        self._next_id = 0
        # request id -> (type, sector, sector_count, payload)
        self._outstanding: dict[int, tuple[str, int, int, bytes | None]] = {}
        self._results: dict[int, bytes | None] = {}
        self._zero = bytes(sector_size)

    def _new_request(self, request_type: str, sector: int, sector_count: int, fua: bool,
                     payload: bytes | None) -> int:
        if len(self._outstanding) >= OUTSTANDING_REQUESTS_MAX:
            raise DeviceRangeError(f"more than {OUTSTANDING_REQUESTS_MAX} outstanding requests")
        request_id = self._next_id
        self._next_id += 1
        self._outstanding[request_id] = (request_type, sector, sector_count, payload)
        self.log.submitted(request_id, request_type, sector, sector_count, fua, payload)
        return request_id

    def submit_read(self, sector: int, sector_count: int) -> int:
        self._check_range(sector, sector_count)
        return self._new_request(READ, sector, sector_count, False, None)

    def submit_write(self, sector: int, data: bytes, fua: bool = False) -> int:
        sector_count = self._check_write(sector, data)
        return self._new_request(WRITE, sector, sector_count, fua, bytes(data))

    def submit_flush(self) -> int:
        return self._new_request(FLUSH, 0, 0, False, None)

    def wait(self, request_id: int) -> bytes | None:
        if request_id in self._results:
            return self._deliver(request_id)
        if request_id not in self._outstanding:
            raise DeviceRangeError(f"request {request_id} is unknown or already collected")
        while request_id in self._outstanding:
            self._complete(self._choose())
        return self._deliver(request_id)

    def close(self) -> None:
        while self._outstanding:
            self._complete(self._choose())

    def _choose(self) -> int:
        if len(self._outstanding) == 1:   # the common synchronous case: nothing to reorder
            return next(iter(self._outstanding))
        eligible = [rid for rid, request in self._outstanding.items() if not self._blocked(rid, request[0])]
        assert eligible, "a flush can always complete once the writes before it did"
        return eligible[self.rng.randrange(len(eligible))] if len(eligible) > 1 else eligible[0]

    def _blocked(self, request_id: int, request_type: str) -> bool:
        if request_type != FLUSH:
            return False
        return any(rid < request_id and request[0] == WRITE for rid, request in self._outstanding.items())

    def _complete(self, request_id: int) -> None:
        request_type, sector, sector_count, payload = self._outstanding.pop(request_id)
        self.log.completed(request_id, request_type)
        if request_type == WRITE:
            size = self.sector_size
            for index in range(sector_count):
                self.written[sector + index] = payload[index * size:(index + 1) * size]
            self._results[request_id] = None
        elif request_type == READ:
            self._results[request_id] = self._read_now(sector, sector_count)
        else:
            self._results[request_id] = None

    def _read_now(self, sector: int, sector_count: int) -> bytes | DeviceIOError:
        parts = []
        for current in range(sector, sector + sector_count):
            if current in self.unreadable:
                return DeviceIOError(current, "latent sector error")
            if current in self.failing_once:
                self.failing_once.discard(current)
                return DeviceIOError(current, "read error")
            data = self.written.get(current)
            if data is None:
                data = self.base.get(current, self._zero)
            parts.append(data)
        return b"".join(parts)

    def _deliver(self, request_id: int) -> bytes | None:
        result = self._results.pop(request_id)
        if isinstance(result, DeviceIOError):
            raise result
        return result

    def current_image(self) -> dict[int, bytes]:
        """Every sector as it reads now (base overlaid with completed writes)."""
        image = dict(self.base)
        image.update(self.written)
        return image
