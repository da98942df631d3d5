"""A crash state's tree -> a real directory the engine recovers from natively.

Only the store's subtree is written (the engine was told nothing else exists for it);
a file's visible content is `FsTree.content` (zeros where a size persisted without
its data); an inode reachable under two names becomes two hard links, as on disk.

Invariant: `materialize(tree, path)` followed by reading `path` back gives the
store subtree of `tree.files()`, byte for byte (tests/unit/test_native_recorder.py).
"""

from __future__ import annotations

import os

from crashsweep.disk_model.fs._image import FsTree
from crashsweep.disk_model.fs._log import DIRECTORY
from crashsweep.disk_model.native._recorder import STORE_INODE


def materialize(tree: FsTree, path: str) -> int:
    """Write the store directory of `tree` at `path` (which must not exist). Returns the bytes written."""
    os.mkdir(path)
    written = 0
    placed: dict[int, str] = {}
    stack = [(STORE_INODE, path)]
    while stack:
        inode, real = stack.pop()
        for name, (child, kind) in sorted(tree.entries.get(inode, {}).items()):
            target = os.path.join(real, name)
            if kind == DIRECTORY:
                os.mkdir(target)
                stack.append((child, target))
            elif child in placed:
                os.link(placed[child], target)
            else:
                content = tree.content(child)
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    view = memoryview(content)
                    while view:
                        view = view[os.write(descriptor, view):]
                finally:
                    os.close(descriptor)
                written += len(content)
                placed[child] = target
    return written
