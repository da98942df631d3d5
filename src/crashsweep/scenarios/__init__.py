"""Workloads (DESIGN §1): named seeded scenarios and user scenarios from JSON files."""

from crashsweep.scenarios._json_file import load_scenario_file, save_scenario_file
from crashsweep.scenarios._named import OPS_COUNT_MAX, SCENARIOS, describe, generate
from crashsweep.scenarios.errors import ScenarioError

__all__ = ["OPS_COUNT_MAX", "SCENARIOS", "ScenarioError", "describe", "generate", "load_scenario_file",
           "resolve_scenario", "save_scenario_file"]


def resolve_scenario(text: str, seed: int, ops_count: int | None = None):
    """A scenario name or a path to a .json file -> (name, ops)."""
    if text.endswith(".json") or "/" in text:
        return load_scenario_file(text)
    return text, generate(text, seed, ops_count)
