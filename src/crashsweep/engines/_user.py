"""User engines named `MODULE:CLASS` (DESIGN §4).

MODULE is a dotted import path (`mypkg.store`) or a path to a `.py` file
(`engines/my_store.py`, `/abs/path/store.py`). The class must have put, get,
delete, sync and close (and may have items).

A *block engine* takes the device as the first argument of its constructor,
named `device`: `MyStore(device, **options)`. It receives the same simulated
block device as the built-in engines. If its constructor also accepts an
`events` keyword, it gets the list of recovery-path strings the reports count.
Options (`--option KEY=VALUE`) reach the constructor as keyword arguments, as text.

Engines whose constructor takes a directory path (DESIGN §4 `Store(path)`) run on
the POSIX file-system model; without it they are refused with a clear error.

Loading is deterministic and cached per process, so worker processes (fork or
spawn) resolve the same name to the same class.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys

from crashsweep.engines.errors import EngineError

REQUIRED_METHODS = ("put", "get", "delete", "sync", "close")
_loaded: dict[str, type] = {}
_redirected: dict[str, str] = {}     # MODULE text of a .py engine -> the file to load it from on this machine


def redirect_module_file(module_text: str, path: str) -> None:
    """Load the engine file named `module_text` from `path` (a copy shipped to this machine, DESIGN §5 Scale)."""
    _redirected[module_text] = path


def engine_file(module_text: str) -> str:
    """The file a `.py` engine is loaded from on this machine: its shipped copy, else the path itself."""
    return os.path.abspath(_redirected.get(module_text, module_text))


def is_user_engine_name(name: str) -> bool:
    return ":" in name


def load_class(name: str) -> type:
    """`MODULE:CLASS` -> the class. Raises EngineError with one clear line."""
    if name in _loaded:
        return _loaded[name]
    module_text, _, class_name = name.rpartition(":")
    if not module_text or not class_name:
        raise EngineError(f"--engine {name!r}: expected MODULE:CLASS (a dotted module or a .py file, then a class)")
    module = _load_module(module_text)
    engine_class = getattr(module, class_name, None)
    if engine_class is None:
        raise EngineError(f"--engine {name!r}: {module_text} has no class {class_name!r}")
    if not inspect.isclass(engine_class):
        raise EngineError(f"--engine {name!r}: {class_name} is not a class")
    missing = [method for method in REQUIRED_METHODS if not callable(getattr(engine_class, method, None))]
    if missing:
        raise EngineError(f"--engine {name!r}: class {class_name} lacks method(s) {', '.join(missing)} "
                          f"(an engine needs {', '.join(REQUIRED_METHODS)})")
    _loaded[name] = engine_class
    return engine_class


def _load_module(module_text: str):
    if module_text.endswith(".py") or os.sep in module_text:
        path = engine_file(module_text)
        if not os.path.isfile(path):
            raise EngineError(f"--engine: no such file {module_text}")
        module_name = "crashsweep_user_" + os.path.splitext(os.path.basename(path))[0]
        if module_name in sys.modules and getattr(sys.modules[module_name], "__file__", None) == path:
            return sys.modules[module_name]
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise EngineError(f"--engine: importing {module_text} failed: {type(error).__name__}: {error}") from None
        return module
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:    # as `python -m` does: a module:CLASS of the current directory
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module_text)
    except ModuleNotFoundError as error:
        raise EngineError(f"--engine: no module named {error.name!r} (is it installed, or give a .py path)") from None
    except Exception as error:
        raise EngineError(f"--engine: importing {module_text} failed: {type(error).__name__}: {error}") from None


def engine_kind(engine_class: type) -> str:
    """"block" if the constructor's first parameter is named `device`, else "path"."""
    try:
        parameters = list(inspect.signature(engine_class).parameters.values())
    except (TypeError, ValueError):
        return "path"
    return "block" if parameters and parameters[0].name == "device" else "path"


def accepts_events(engine_class: type) -> bool:
    try:
        parameters = inspect.signature(engine_class).parameters
    except (TypeError, ValueError):
        return False
    return "events" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def open_block_engine(engine_class: type, device, options: dict, events: list):
    keywords = dict(options)
    if accepts_events(engine_class):
        keywords["events"] = events
    return engine_class(device, **keywords)
