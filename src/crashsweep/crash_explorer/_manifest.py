"""The output directory's manifest: which files crashsweep wrote there, so a new sweep removes only those.

`OUT/.crashsweep-written` lists, one per line, the paths (relative to OUT) of the
traces a sweep wrote. A new sweep into the same OUT (without `--resume`) removes the
traces listed, and nothing else: files a user put in `OUT/traces/`, or traces of a
directory crashsweep did not write, stay.

Invariants: only paths under `OUT/traces/` ending in `.json` are ever removed, whatever
the manifest says (it is a file in a user's directory, so it is read as untrusted data);
lines are appended, so adding a trace costs one small write.
"""

from __future__ import annotations

import os

MANIFEST_NAME = ".crashsweep-written"
LINE_CHARS_MAX = 4096


class Manifest:
    """Example: `m = Manifest("report"); m.remove_written(); m.add("traces/x.json")`."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, MANIFEST_NAME)

    def add(self, relative: str) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(relative.replace("\n", " ") + "\n")

    def written(self) -> list[str]:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                return [line.rstrip("\n") for line in handle if len(line) <= LINE_CHARS_MAX]
        except OSError:
            return []

    def remove_written(self, keep=lambda relative: False) -> int:
        """Remove the traces an earlier sweep wrote here, except those `keep(relative path)` says to keep
        (minimized traces, until the sweep knows whether their class still fails); how many were removed."""
        traces = os.path.realpath(os.path.join(self.out_dir, "traces"))
        removed = 0
        kept = []
        for relative in self.written():
            path = os.path.realpath(os.path.join(self.out_dir, relative))
            if os.path.dirname(path) != traces or not path.endswith(".json"):
                continue
            if keep(relative):
                kept.append(relative)
                continue
            try:
                os.remove(path)
                removed += 1
            except OSError:
                pass
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.writelines(relative + "\n" for relative in dict.fromkeys(kept))
        return removed
