"""Ship a user engine's source files to machines that do not have them (Dask workers).

An engine named by a `.py` path (`my_store.py:MyStore`) is shipped: the file and the
other `.py` files of its directory (its helpers), at most `SHIPPED_FILES_MAX` files and
`SHIPPED_BYTES_MAX` bytes. A worker writes them once into a directory named by their
digest, and the processes that run the engine there load the engine from that copy
(`install`), while its source sites keep the names the user's machine shows
("json_kv.py:29"), so results are the same wherever a state ran.

An engine named by a dotted module (`mypkg.store:Store`) is not shipped: the workers
must have it installed, which `module_problem` checks in a child process (finding a
submodule imports its package, which is engine code).

Invariants: a bundle is plain data (names and bytes); installing one never imports or
runs anything; its digest covers every name and byte.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile

from crashsweep.disk_model._sites import show_file_as, show_relative_to, shown_path
from crashsweep.engines._native import EXEC_PREFIX
from crashsweep.engines._user import is_user_engine_name, redirect_module_file

SHIPPED_FILES_MAX = 64
SHIPPED_BYTES_MAX = 4 << 20
MODULE_CHECK_TIMEOUT_S = 60.0


class ShippingError(ValueError):
    """The engine's files cannot be shipped (too many, too large, unreadable); the message is one line."""


def engine_bundle(engine: str) -> dict | None:
    """The files a worker elsewhere needs to run `engine` (None: a built-in or a dotted module).
    Example: `engine_bundle("tests/engines/json_kv.py:JsonKV")["files"][0]["shown"] == "tests/engines/json_kv.py"`."""
    if engine_bundle_kind(engine) != "file":
        return None
    module_text = engine.rpartition(":")[0]
    main = os.path.abspath(module_text)
    directory = os.path.dirname(main)
    names = sorted(name for name in os.listdir(directory) if name.endswith(".py"))
    if len(names) > SHIPPED_FILES_MAX:
        names = [os.path.basename(main)]        # a large directory: the engine file alone
    files, total = [], 0
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as handle:
                data = handle.read(SHIPPED_BYTES_MAX + 1)
        except OSError as error:
            raise ShippingError(f"cannot read {path} to ship it to the workers: {error.strerror}") from None
        total += len(data)
        if total > SHIPPED_BYTES_MAX:
            raise ShippingError(f"the engine's directory {directory} holds more than {SHIPPED_BYTES_MAX >> 20} MiB "
                                "of .py files: install the engine on the workers and name it by its module")
        files.append({"name": name, "shown": shown_path(path), "data": data})
    digest = hashlib.blake2b(module_text.encode(), digest_size=16)
    for entry in files:
        digest.update(entry["name"].encode() + b"\0" + entry["shown"].encode() + b"\0")
        digest.update(hashlib.blake2b(entry["data"]).digest())
    return {"module": module_text, "main": os.path.basename(main), "files": files, "digest": digest.hexdigest()}


def materialize(bundle: dict, root: str | None = None) -> dict:
    """Write a bundle's files on this machine (once per digest); returns the plain setup a process that runs
    the engine passes to `install`."""
    root = root or os.path.join(tempfile.gettempdir(), "crashsweep-engines")
    directory = os.path.join(root, bundle["digest"])
    if not os.path.isdir(directory):
        staging = tempfile.mkdtemp(prefix=".staging-", dir=_made(root))
        for entry in bundle["files"]:
            with open(os.path.join(staging, entry["name"]), "wb") as handle:
                handle.write(entry["data"])
        try:
            os.rename(staging, directory)
        except OSError:             # another worker on this machine got there first: same digest, same files
            pass
    return {"module": bundle["module"], "file": os.path.join(directory, bundle["main"]), "directory": directory,
            "shown": {os.path.join(directory, entry["name"]): entry["shown"] for entry in bundle["files"]}}


def _made(root: str) -> str:
    os.makedirs(root, exist_ok=True)
    return root


def program_setup(engine: str) -> dict | None:
    """An `exec:` program is not shipped: the workers run it from the same path, its command's relative paths
    taken from the client's directory (`_native.exec_command`)."""
    return {"exec_base": os.getcwd()} if engine_bundle_kind(engine) == "program" else None


def install(setup: dict | None) -> None:
    """In a process that will run the engine: load `setup["module"]` from the shipped copy, name its files as
    the user's machine does, and let the engine import its helpers (a program's setup: where its command's
    relative paths start)."""
    if not setup:
        return
    if "exec_base" in setup:
        from crashsweep.engines._native import set_exec_base
        set_exec_base(setup["exec_base"])
        show_relative_to(setup["exec_base"])       # its lines read as on the user's machine
        return
    redirect_module_file(setup["module"], setup["file"])
    for local, shown in setup["shown"].items():
        show_file_as(local, shown)
    if setup["directory"] not in sys.path:
        sys.path.append(setup["directory"])


def module_problem(engine: str, setup: dict | None = None) -> str | None:
    """Why this machine cannot load a dotted-module engine or run an `exec:` program (`setup`: its
    `program_setup`) — None: it can, or it is neither — found in a child process for a module.
    Example: `module_problem("mypkg.store:Store")` -> "no module named 'mypkg'"."""
    if engine_bundle_kind(engine) == "program":
        from crashsweep.engines._native import check_runnable
        from crashsweep.engines.errors import EngineError
        install(setup)
        try:
            check_runnable(engine)
        except EngineError as error:
            return str(error).partition(": ")[2]
        return None
    if engine_bundle_kind(engine) != "module":
        return None
    module_text = engine.rpartition(":")[0]
    probe = ("import importlib.util, sys\n"
             "try:\n    found = importlib.util.find_spec(sys.argv[1])\n"
             "except Exception as error:\n    print(type(error).__name__, error); sys.exit(3)\n"
             "sys.exit(0 if found else 4)\n")
    try:
        done = subprocess.run([sys.executable, "-c", probe, module_text], capture_output=True, text=True,
                              timeout=MODULE_CHECK_TIMEOUT_S, cwd=os.getcwd())
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"could not check for module {module_text!r}: {error}"
    if done.returncode == 0:
        return None
    if done.returncode == 4:
        return f"no module named {module_text!r}"
    return f"finding module {module_text!r} failed: {done.stdout.strip()[:200] or done.stderr.strip()[-200:]}"


def engine_bundle_kind(engine: str) -> str:
    """"file" (a .py path, shipped), "module" (dotted, must be installed), "program" (`exec:`, must be at the
    same path) or "builtin"."""
    if engine.startswith(EXEC_PREFIX):
        return "program"
    if not is_user_engine_name(engine):
        return "builtin"
    module_text = engine.rpartition(":")[0]
    return "file" if module_text.endswith(".py") or os.sep in module_text else "module"
