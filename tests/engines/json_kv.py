"""A JSON-file key-value store: the whole map is rewritten on every sync."""

import json
import os


class JsonKV:
    def __init__(self, path):
        self.path = path
        self.file = os.path.join(path, "db.json")
        self.data = {}
        if os.path.exists(self.file):
            with open(self.file) as handle:
                self.data = {bytes.fromhex(k): bytes.fromhex(v) for k, v in json.load(handle).items()}

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def sync(self):
        temporary = self.file + ".tmp"
        with open(temporary, "w") as handle:
            json.dump({k.hex(): v.hex() for k, v in self.data.items()}, handle)
        os.rename(temporary, self.file)
        directory = os.open(self.path, os.O_RDONLY)
        os.fsync(directory)
        os.close(directory)

    def close(self):
        pass
