"""The media an engine runs on (DESIGN §3), one file each: `_block.py` (the simulated block device),
`_fs_model.py` (the POSIX file-system model, in-process interposition), `_native.py` (a real directory,
system calls recorded). Each is one `Medium` (`_base.py`); the explorer asks `medium_of(context)` and
never which one it got. A fourth medium is one new file and one line in `MEDIA`."""

from crashsweep.crash_explorer.media._base import Medium
from crashsweep.crash_explorer.media._block import BlockMedium
from crashsweep.crash_explorer.media._fs_model import FsModelMedium
from crashsweep.crash_explorer.media._native import NativeMedium

MEDIA: dict[str, Medium] = {"block": BlockMedium(), "fs": FsModelMedium(), "native": NativeMedium()}


def medium_of(context) -> Medium:
    return MEDIA[context.adapter.medium]


__all__ = ["MEDIA", "BlockMedium", "FsModelMedium", "Medium", "NativeMedium", "medium_of"]
