"""Crash images, built cheaply: a durable image that advances point by point, and a small
copy-on-write overlay per crash state. The image of a state is never materialized.

A *choice* says what happened to the pending writes and which faults struck:

    {"persist": [rid, ...],                 # pending writes that landed whole
     "torn": [[rid, [offset, ...]], ...],   # pending writes of which only these sectors landed
     "faults": [{"kind": "corrupt", "sector": s, "byte": i, "bit": b},
                {"kind": "misdirect", "request": rid, "to": s},
                {"kind": "latent", "sector": s}, {"kind": "read-error", "sector": s}]}

Invariants:
- writes are applied in request-id order; a pending write never overwrites a
  sector whose durable version is newer than it;
- `DurableImage.state_hash` equals the hash of every non-zero sector of the
  state's image (sector address and content), computed in O(overlay) per state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from crashsweep.crash_explorer._crash_points import PointWalk

HASH_MODULUS = 1 << 128
CORRUPTION_KINDS_IN_CHOICE = ("corrupt", "misdirect", "latent", "read-error")


_ZEROS: dict[int, bytes] = {}


def is_zero(data: bytes) -> bool:
    """True for an all-zero sector (compared with memcmp, not byte by byte)."""
    zero = _ZEROS.get(len(data))
    if zero is None:
        zero = _ZEROS[len(data)] = bytes(len(data))
    return data == zero


def sector_hash(sector: int, data: bytes) -> int:
    if is_zero(data):
        return 0
    digest = hashlib.blake2b(data, digest_size=16, key=sector.to_bytes(8, "little")).digest()
    return int.from_bytes(digest, "little")


_base_hashes: dict[tuple[int, int], tuple[bytes, int]] = {}
BASE_HASHES_CACHED_BYTES = 32 << 20   # sectors whose hash is kept across images (their bytes stay alive)


def _base_sector_hash(sector: int, data: bytes) -> int:
    """`sector_hash`, remembered by the bytes object: the images a state's nested crashes start from share most
    sectors with the images of other states (the same durable bytes objects). The entry holds the object, so
    its id cannot be reused while it is remembered."""
    key = (sector, id(data))
    cached = _base_hashes.get(key)
    if cached is None:
        if len(_base_hashes) * max(1, len(data)) >= BASE_HASHES_CACHED_BYTES:
            _base_hashes.clear()
        cached = _base_hashes[key] = (data, sector_hash(sector, data))
    return cached[1]


class LayeredImage(Mapping):
    """A read-only view: `top` over `bottom` (sector -> bytes). Used as a device's base image.

    Nested views are flattened into one tuple of layers, so a read costs one dict
    lookup per layer, however the view was built.
    """

    def __init__(self, top: Mapping[int, bytes], bottom: Mapping[int, bytes]):
        below = bottom.layers if isinstance(bottom, LayeredImage) else (bottom,)
        self.layers = (top,) + below

    def get(self, sector, default=None):
        for layer in self.layers:
            data = layer.get(sector)
            if data is not None:
                return data
        return default

    def __getitem__(self, sector):
        data = self.get(sector)
        if data is None:
            raise KeyError(sector)
        return data

    def __iter__(self):
        return iter(set().union(*self.layers))

    def __len__(self):
        return len(set().union(*self.layers))


class DurableImage:
    """The durable part of the disk at successive crash points of one log.

    Requires: `advance` is called with non-decreasing counts.
    """

    def __init__(self, walk: PointWalk, payloads: dict[int, bytes], sector_size: int,
                 base: Mapping[int, bytes] | None = None, hashed: bool = True):
        self.walk, self.payloads, self.sector_size = walk, payloads, sector_size
        self.base: Mapping[int, bytes] = base if base is not None else {}
        self.data: dict[int, bytes] = {}
        self.version: dict[int, int] = {}
        self.applied = 0
        self.hashed = hashed   # workers only rebuild images; they never need the image hash
        self.hash = sum(_base_sector_hash(s, d) for s, d in self.base.items()) % HASH_MODULUS if base and hashed else 0
        self._hash_cache: dict[tuple[int, int], tuple[bytes, int]] = {}
        self._slices: dict[tuple[int, int], bytes] = {}
        self.zero = bytes(sector_size)

    def get(self, sector: int) -> bytes:
        data = self.data.get(sector)
        if data is None:
            data = self.base.get(sector, self.zero)
        return data

    def advance(self, count: int) -> None:
        assert count >= self.applied, (count, self.applied)
        for request_id in self.walk.durable_sequence[self.applied:count]:
            sector, sector_count = self.walk.writes[request_id]
            for offset in range(sector_count):
                self._set(sector + offset, self.sector_data(request_id, offset), request_id)
        self.applied = count

    def normalize(self, point, choice: dict) -> dict:
        """Every choice is a state of a block device (file-system models restrict theirs)."""
        return choice

    def _set(self, sector: int, data: bytes, request_id: int) -> None:
        if self.hashed:
            self.hash = (self.hash - self._hash_of(sector, self.get(sector)) + self._hash_of(sector, data)) % HASH_MODULUS
        self.data[sector] = data
        self.version[sector] = request_id

    def sector_data(self, request_id: int, offset: int) -> bytes:
        """One sector of a write's payload; the same bytes object every time (so its hash is cached)."""
        key = (request_id, offset)
        data = self._slices.get(key)
        if data is None:
            size = self.sector_size
            data = self._slices[key] = self.payloads[request_id][offset * size:(offset + 1) * size]
        return data

    def _hash_of(self, sector: int, data: bytes) -> int:
        key = (sector, id(data))
        cached = self._hash_cache.get(key)
        if cached is None or cached[0] is not data:   # the identity check makes id() reuse harmless
            cached = self._hash_cache[key] = (data, sector_hash(sector, data))
        return cached[1]

    def overlay(self, choice: dict) -> dict[int, bytes]:
        """Sectors where the state's image differs from the durable image."""
        misdirected = {fault["request"]: fault["to"] for fault in choice.get("faults", ())
                       if fault["kind"] == "misdirect"}
        landed: list[tuple[int, list[int] | None]] = [(rid, None) for rid in choice.get("persist", ())]
        landed += [(rid, offsets) for rid, offsets in choice.get("torn", ())]
        landed.sort(key=lambda item: item[0])
        overlay: dict[int, bytes] = {}
        for request_id, offsets in landed:
            sector, sector_count = self.walk.writes[request_id]
            target = misdirected.get(request_id, sector)
            for offset in (range(sector_count) if offsets is None else offsets):
                address = target + offset
                if request_id in misdirected or self.version.get(address, -1) < request_id:
                    overlay[address] = self.sector_data(request_id, offset)
        for fault in choice.get("faults", ()):
            if fault["kind"] == "corrupt":
                address = fault["sector"]
                damaged = bytearray(overlay.get(address) or self.get(address))
                damaged[fault["byte"]] ^= 1 << fault["bit"]
                overlay[address] = bytes(damaged)
        return overlay

    def point_hash(self, point, choice: dict) -> int:
        return self.state_hash(self.overlay(choice), choice)

    def state_hash(self, overlay: dict[int, bytes], choice: dict) -> int:
        assert self.hashed, "state_hash needs an image built with hashed=True"
        value = self.hash
        for sector, data in overlay.items():
            value += self._hash_of(sector, data) - self._hash_of(sector, self.get(sector))
        read_faults = sorted((fault["kind"], fault["sector"]) for fault in choice.get("faults", ())
                             if fault["kind"] in ("latent", "read-error"))
        if read_faults:
            value += int.from_bytes(hashlib.blake2b(repr(read_faults).encode(), digest_size=16).digest(), "little")
        return value % HASH_MODULUS

    def snapshot(self, overlay: dict[int, bytes]) -> LayeredImage:
        """A frozen view of the state's image, safe to keep after `advance` moves on."""
        return LayeredImage(overlay, LayeredImage(dict(self.data), self.base))

    def state_of(self, choice: dict) -> LayeredImage:
        """`view(overlay(choice))`: the image of a state to recover now."""
        return self.view(self.overlay(choice))

    def view(self, overlay: dict[int, bytes]) -> LayeredImage:
        """A live view (valid until the next `advance`), for recovering this state now."""
        return LayeredImage(overlay, LayeredImage(self.data, self.base))


def choice_problem(walk: PointWalk, point_index: int, choice: dict, sector_count: int) -> str | None:
    """Why a choice cannot be a state of this point (a write not pending there, a sector off the device), or None."""
    if not 0 <= point_index < len(walk.points):
        return f"crash point {point_index} does not exist (there are {len(walk.points)})"
    point = walk.points[point_index]
    for request_id in list(choice.get("persist", ())) + [rid for rid, _ in choice.get("torn", ())]:
        if request_id not in point.pending:
            return f"write {request_id} is not pending at crash point {point_index}"
    for request_id, offsets in choice.get("torn", ()):
        count = walk.writes[request_id][1]
        if not offsets or any(not 0 <= offset < count for offset in offsets):
            return f"torn write {request_id} names sectors outside its {count} sector(s)"
    for fault in choice.get("faults", ()):
        sector = fault.get("sector", fault.get("to"))
        if not isinstance(sector, int) or not 0 <= sector < sector_count:
            return f"fault {fault} names a sector outside the device"
        if fault["kind"] == "misdirect" and fault.get("request") not in choice.get("persist", ()):
            return f"misdirected write {fault.get('request')} is not among the landed writes"
    return None


def has_corruption(choice: dict) -> bool:
    return any(fault["kind"] in CORRUPTION_KINDS_IN_CHOICE for fault in choice.get("faults", ()))
