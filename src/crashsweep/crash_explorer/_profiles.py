"""What crashsweep's own process knows of an engine: its profile, learned without running its code.

A built-in engine's adapter is crashsweep's own code. A user engine (`MODULE:CLASS`) is
imported only in a contained child process (`_sandbox.run_contained`), which sends back
its description as data (medium, options, seeded bugs, first docstring line); the
profile built from it validates options and names the medium, and refuses to open the
engine. Worker processes, where engine code runs, resolve the real adapter.

Invariant: nothing here imports a user module into crashsweep's own process.
"""

from __future__ import annotations

import os
import shlex

from crashsweep.crash_explorer._sandbox import in_engine_process, run_contained
from crashsweep.engines import (
    ADAPTERS, EngineAdapter, EngineError, adapter_from_description, describe_user_engine, resolve_engine,
)
from crashsweep.engines._native import EXEC_PREFIX
from crashsweep.engines._native_adapters import native_variant
from crashsweep.engines._user import is_user_engine_name

DESCRIBE_TIMEOUT_S = 120.0
_profiles: dict[str, EngineAdapter] = {}


def engine_profile(name: str, memory_limit_bytes: int | None = None, medium: str = "") -> EngineAdapter:
    """The adapter of `name` for validation and planning. Raises EngineError with one line."""
    if medium:
        return native_variant(engine_profile(name, memory_limit_bytes), name)
    if name in ADAPTERS or in_engine_process() or (isinstance(name, str) and name.startswith(EXEC_PREFIX)):
        return resolve_engine(name)
    if not isinstance(name, str) or not is_user_engine_name(name):
        return resolve_engine(name)           # raises the registry's "unknown engine" line
    profile = _profiles.get(name)
    if profile is None:
        outcome = run_contained(_describe, name, timeout_s=DESCRIBE_TIMEOUT_S, memory_limit_bytes=memory_limit_bytes)
        if not outcome.ok:
            raise EngineError(f"--engine {name}: importing the engine {outcome.detail or outcome.status}")
        described = outcome.value
        if "error" in described:
            raise EngineError(str(described["error"]))
        profile = _profiles[name] = adapter_from_description(name, _checked(name, described))
        _descriptions[name] = described
    return profile


_descriptions: dict[str, dict] = {}


def profile_description(name: str) -> dict | None:
    """The description (plain data) a user engine's profile was made from here, to send to another machine."""
    return _descriptions.get(name)


def remember_description(name: str, described) -> None:
    """Make `name`'s profile from a description another process made (a Dask worker planning a slice of a
    sweep whose engine it has never loaded: the engine is described once, by the user's machine)."""
    if name not in _profiles and described is not None:
        _profiles[name] = adapter_from_description(name, _checked(name, described))
        _descriptions[name] = described


def _describe(name: str) -> dict:
    try:
        return describe_user_engine(name)
    except EngineError as error:
        return {"error": str(error)[:2000]}


def _checked(name: str, described) -> dict:
    """The description as sent, checked field by field (the child ran engine code: its data is untrusted)."""
    ok = (isinstance(described, dict) and described.get("kind") in ("block", "path")
          and isinstance(described.get("options"), list) and all(isinstance(o, str) for o in described["options"])
          and isinstance(described.get("open_keywords"), bool) and isinstance(described.get("bugs"), dict)
          and all(isinstance(k, str) and isinstance(v, str) for k, v in described["bugs"].items())
          and isinstance(described.get("description"), str))
    if not ok:
        raise EngineError(f"--engine {name}: the engine's description came back malformed")
    return described


def engine_flag(name: str) -> str:
    """What a printed `crashsweep replay|explain|minimize TRACE` command needs for the trace's engine to run:
    "" when `allow_engine` allows it unnamed (built-in, or a .py file under the current directory), else
    " --engine NAME" (an `exec:` program, a module, a file elsewhere): a printed command always works."""
    try:
        allow_engine(name, None)
    except EngineError:
        return f" --engine {shlex.quote(name)}"
    return ""


def allow_engine(name: str, given: str | None, directory: str | None = None) -> None:
    """May a trace's or results file's engine `name` be run? Raises EngineError (one line, exit 2) if not.

    Allowed: a built-in engine; the engine the user named on the command line (`given`); a user engine
    whose `.py` file lies under `directory` (default: the current directory). A dotted module name is
    never allowed by where it lies (finding its file would import its packages): name it with --engine.
    """
    if name in ADAPTERS or (given is not None and name == given):
        return
    module_text = name.rpartition(":")[0] if isinstance(name, str) else ""
    if isinstance(name, str) and name.startswith(EXEC_PREFIX):
        where = f"the program {name[len(EXEC_PREFIX):]!r}"         # a command runs anything: never by where it lies
    elif module_text.endswith(".py") or os.sep in module_text:
        root = os.path.realpath(directory or os.getcwd())
        path = os.path.realpath(module_text)
        if os.path.commonpath([root, path]) == root and os.path.isfile(path):
            return
        where = f"the file {module_text}, outside {root}"
    else:
        where = f"the module {module_text or name!r}"
    raise EngineError(f"the trace wants to run engine {name!r} ({where}); crashsweep runs a trace's user engine "
                      f"only when you name it: add --engine {shlex.quote(name)}")


def known_bugs(name: str) -> dict[str, str]:
    """The seeded bugs of an engine, as far as this process knows without importing anything."""
    if name in ADAPTERS:
        return dict(ADAPTERS[name].bugs)
    profile = _profiles.get(name)
    return dict(profile.bugs) if profile is not None else {}
