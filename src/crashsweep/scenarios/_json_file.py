"""User scenarios as JSON files.

Format (docs/scenario-format.md):

    {"name": "my-workload",
     "ops": [["put", "alice", "1"], ["sync"], ["delete", "alice"], ["get", "alice"],
             ["put", "hex:00ff", "hex:deadbeef"]]}

A bare list of ops is accepted too. Strings are UTF-8; "hex:..." is raw bytes.
"""

from __future__ import annotations

import json
import os

from crashsweep.reference import Op, OpFormatError, decode_ops, encode_ops
from crashsweep.scenarios.errors import ScenarioError


def load_scenario_file(path: str) -> tuple[str, list[Op]]:
    """Returns (name, ops). Raises ScenarioError with a one-line reason."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"scenario file {path} cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise ScenarioError(f"scenario file {path} is not valid JSON (line {error.lineno}: {error.msg})") from None
    if isinstance(data, list):
        data = {"ops": data}
    if not isinstance(data, dict) or "ops" not in data:
        raise ScenarioError(f"scenario file {path}: expected an object with \"ops\" or a list of ops")
    try:
        ops = decode_ops(data["ops"])
    except OpFormatError as error:
        raise ScenarioError(f"scenario file {path}: {error}") from None
    if not ops:
        raise ScenarioError(f"scenario file {path} has no operations")
    name = data.get("name") or os.path.splitext(os.path.basename(path))[0]
    return str(name), ops


def save_scenario_file(path: str, name: str, ops: list[Op]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"name": name, "ops": encode_ops(ops)}, handle, indent=1)
        handle.write("\n")
