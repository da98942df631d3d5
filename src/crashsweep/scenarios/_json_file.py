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


SCENARIO_BYTES_MAX = 64 << 20
SCENARIO_OPS_MAX = 100_000           # as many as a sweep spec takes
KEY_BYTES_MAX = 1 << 16
VALUE_BYTES_MAX = 16 << 20
NAME_CHARS_MAX = 200


def load_scenario_file(path: str) -> tuple[str, list[Op]]:
    """Returns (name, ops). Raises ScenarioError with a one-line reason. Every size is bounded before the
    file is parsed or its ops are built (a file past a bound costs a line, not memory)."""
    try:
        size = os.path.getsize(path)
        if size > SCENARIO_BYTES_MAX:
            raise ScenarioError(f"scenario file {path} is {size:,} bytes; at most {SCENARIO_BYTES_MAX:,} are read")
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise ScenarioError(f"scenario file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"scenario file {path} cannot be read: {error}") from None
    except json.JSONDecodeError as error:
        raise ScenarioError(f"scenario file {path} is not valid JSON (line {error.lineno}: {error.msg})") from None
    except RecursionError:
        raise ScenarioError(f"scenario file {path} nests too deeply to be a scenario") from None
    if isinstance(data, list):
        data = {"ops": data}
    if not isinstance(data, dict) or "ops" not in data:
        raise ScenarioError(f"scenario file {path}: expected an object with \"ops\" or a list of ops")
    unknown = sorted(set(data) - {"name", "ops", "description"})
    if unknown:
        raise ScenarioError(f"scenario file {path}: unknown field {unknown[0]!r} (fields: name, ops, description)")
    if isinstance(data["ops"], list) and len(data["ops"]) > SCENARIO_OPS_MAX:
        raise ScenarioError(f"scenario file {path} has {len(data['ops']):,} operations; at most "
                            f"{SCENARIO_OPS_MAX:,} are allowed")
    try:
        ops = decode_ops(data["ops"])
    except OpFormatError as error:
        raise ScenarioError(f"scenario file {path}: {error}") from None
    if not ops:
        raise ScenarioError(f"scenario file {path} has no operations")
    for index, op in enumerate(ops):
        if (op.key is not None and len(op.key) > KEY_BYTES_MAX) or (op.value is not None and len(op.value) > VALUE_BYTES_MAX):
            raise ScenarioError(f"scenario file {path}: ops[{index}] has a key over {KEY_BYTES_MAX:,} bytes or a "
                                f"value over {VALUE_BYTES_MAX:,} bytes")
    name = data.get("name", os.path.splitext(os.path.basename(path))[0])
    if not isinstance(name, str) or not name or len(name) > NAME_CHARS_MAX or not name.isprintable():
        raise ScenarioError(f"scenario file {path}: \"name\" must be printable text of 1..{NAME_CHARS_MAX} "
                            "characters")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"scenario file {path}: \"description\" must be text")
    return name, ops


def save_scenario_file(path: str, name: str, ops: list[Op]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"name": name, "ops": encode_ops(ops)}, handle, indent=1)
        handle.write("\n")
