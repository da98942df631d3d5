"""Settings beyond the command line: named profiles and `[tool.crashsweep]` in pyproject.toml.

Like pytest's ini options and Hypothesis's settings profiles, a project keeps its
sweep settings beside its code, and a profile names a whole level of thoroughness:

    [tool.crashsweep]
    engine = "json_kv.py:JsonKV"
    budget-seconds = 120
    option = ["sync_mode=full"]
    profile = "quick"                     # the default profile for this project

    [tool.crashsweep.profiles.nightly]    # a profile of the project's own
    bound = 3
    crash-depth = 2

Precedence, lowest first: crashsweep's defaults, the profile (`--profile` or the
file's `profile`), the file's other settings, the command line's flags. Settings
are turned into flags placed before the user's, so each is checked exactly as the
flag is (same types, same one-line errors, prefixed with where it came from).

Invariant: reading settings never imports or runs anything from the project; an
unknown key or a bad value is a one-line error (exit 2).
"""

from __future__ import annotations

import os
import tomllib

PROFILES: dict[str, dict] = {
    "quick": {"strategy": "bounded", "bound": 1, "crash-depth": 1, "minimize-seconds": 20},
    "default": {},
    "exhaustive": {"strategy": "bounded", "bound": 3, "crash-depth": 2, "minimize-seconds": 600},
}
PROFILE_HELP = ("quick: bounded k=1, for local edits (finds every seeded bug in about a second); default: bounded "
                "k=2; exhaustive: bounded k=3, two nested crashes, for nightly CI")
CONFIG_FILE = "pyproject.toml"
CONFIG_BYTES_MAX = 4 << 20
SECTION_COMMANDS = ("sweep", "log")       # the commands that take sweep settings


class SettingsError(ValueError):
    """A bad pyproject.toml section or profile; the message is one line."""


def find_config(start: str | None = None) -> str | None:
    """The nearest pyproject.toml with a [tool.crashsweep] section, from `start` (the current directory) up."""
    directory = os.path.abspath(start or os.getcwd())
    while True:
        path = os.path.join(directory, CONFIG_FILE)
        if os.path.isfile(path):
            return path
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def read_section(path: str) -> dict:
    """The [tool.crashsweep] table of a pyproject.toml ({} when it has none)."""
    try:
        if os.path.getsize(path) > CONFIG_BYTES_MAX:
            raise SettingsError(f"{path} is over {CONFIG_BYTES_MAX >> 20} MiB")
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path} is not valid TOML ({error})") from None
    except OSError as error:
        raise SettingsError(f"cannot read {path}: {error.strerror}") from None
    section = data.get("tool", {}).get("crashsweep", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: [tool.crashsweep] must be a table")
    return section


def _flags(settings: dict, known: dict[str, object], where: str) -> list[str]:
    """Settings as command-line flags. `known`: flag name (without --) -> its argparse action."""
    argv = []
    for key, value in settings.items():
        name = str(key).replace("_", "-")
        action = known.get(name)
        if action is None:
            raise SettingsError(f"{where}: unknown setting {key!r} (settings are the long options of "
                                f"`crashsweep sweep`, e.g. budget-seconds = 60)")
        flag = f"--{name}"
        if action == "store_true":
            if not isinstance(value, bool):
                raise SettingsError(f"{where}: {key} must be true or false")
            argv += [flag] if value else []
        elif action == "append":
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, (dict, list)):
                    raise SettingsError(f"{where}: {key} must be a text or a list of texts")
                argv += [flag, str(item)]
        else:
            if isinstance(value, (dict, list)) or isinstance(value, bool):
                raise SettingsError(f"{where}: {key} must be a single value")
            argv += [flag, str(value)]
    return argv


def settings_argv(profile: str | None, known: dict[str, object], start: str | None = None) -> tuple[list[str], str]:
    """(flags to put before the user's, what they came from). `profile`: named on the command line, or None."""
    path = find_config(start)
    section = read_section(path) if path else {}
    where = f"{os.path.relpath(path) if path else CONFIG_FILE} [tool.crashsweep]"
    profiles = dict(PROFILES)
    own = section.get("profiles", {})
    if not isinstance(own, dict) or not all(isinstance(value, dict) for value in own.values()):
        raise SettingsError(f"{where}: profiles must be tables ([tool.crashsweep.profiles.NAME])")
    profiles.update(own)
    chosen = profile or section.get("profile") or "default"
    if not isinstance(chosen, str) or chosen not in profiles:
        raise SettingsError(f"unknown profile {chosen!r}: choose one of {', '.join(sorted(profiles))}")
    plain = {key: value for key, value in section.items() if key not in ("profiles", "profile")}
    argv = _flags(profiles[chosen], known, f"profile {chosen}") + _flags(plain, known, where)
    origin = ", ".join(part for part in (f"profile {chosen}" if chosen != "default" else "",
                                         where if plain else "") if part)
    return argv, origin
