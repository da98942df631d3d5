"""Removing a state's directory, in the harness and in the native host alike.

Standard library only: the native host (`crashsweep/_native_host.py`) loads this file by its path, without
importing crashsweep.
"""

from __future__ import annotations

import os
import shutil


def remove_tree(path: str) -> None:
    """rmtree for a state's directory: the plain files and directories an engine made, links never followed.
    One `scandir` per directory and no `lstat` per entry (`shutil.rmtree` makes both); anything unusual
    (permissions, a race with an engine still running) falls back to `shutil.rmtree`."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(entry.path)
                else:
                    os.unlink(entry.path)
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
