"""A small user block engine for tests: the whole map, written to alternating slots on sync.

With `bug="in-place"` it overwrites the synced copy and writes the header with no
flush between (found by any crash sweep).
"""

import json
import zlib

SLOT_SECTORS = 100


class TinyBlockStore:
    """Whole-map copies in two slots behind a one-sector header."""

    BUGS = {"in-place": "overwrites the synced copy in place, header unordered"}

    def __init__(self, device, bug=None, events=None):
        self.device, self.bug = device, bug
        self.events = events if events is not None else []
        self.data, self.sequence, self.slot = {}, 0, 0
        header = device.read(0).rstrip(b"\0")
        if header:
            self.sequence, self.slot, length, crc = json.loads(header)
            body = device.read(1 + self.slot * SLOT_SECTORS, SLOT_SECTORS)[:length]
            if zlib.crc32(body) != crc:
                raise IOError("checksum mismatch")
            self.data = {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.loads(body)}
            self.events.append("loaded a copy")

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def sync(self):
        body = json.dumps([[k.hex(), v.hex()] for k, v in sorted(self.data.items())]).encode()
        size = self.device.sector_size
        slot = self.slot if self.bug == "in-place" else 1 - self.slot
        self.device.write(1 + slot * SLOT_SECTORS, body.ljust(-(-len(body) // size) * size or size, b"\0"))
        if self.bug != "in-place":
            self.device.flush()
        header = json.dumps([self.sequence + 1, slot, len(body), zlib.crc32(body)]).encode()
        self.device.write(0, header.ljust(size, b"\0"))
        self.device.flush()
        self.sequence, self.slot = self.sequence + 1, slot

    def close(self):
        pass


class PathStore:
    def __init__(self, path):
        self.path = path

    def put(self, key, value): ...
    def get(self, key): ...
    def delete(self, key): ...
    def sync(self): ...
    def close(self): ...


class NoSync:
    def __init__(self, device):
        pass

    def put(self, key, value): ...
    def get(self, key): ...
    def delete(self, key): ...
    def close(self): ...
