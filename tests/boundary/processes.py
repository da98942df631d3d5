"""Which processes are alive: what the boundary tests use to prove nothing an engine started survives."""

import os


def processes_with(needle: str, source: str = "cmdline") -> list[int]:
    """Pids whose /proc/PID/`source` (cmdline or environ) contains `needle`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/{source}", "rb") as handle:
                if needle.encode() in handle.read():
                    found.append(int(name))
        except OSError:
            continue
    return found
