"""Engine adapters (DESIGN §4): the built-in engines the explorer can drive, and their options."""

from crashsweep.engines._registry import (
    ADAPTERS, DEFAULT_ENGINE, EngineAdapter, adapter_from_description, describe_user_engine, parse_option_pairs,
    resolve_engine,
)
from crashsweep.engines._native import NativeEngineError
from crashsweep.engines.errors import EngineError

__all__ = ["ADAPTERS", "DEFAULT_ENGINE", "EngineAdapter", "EngineError", "NativeEngineError", "adapter_from_description",
           "describe_user_engine", "parse_option_pairs", "resolve_engine"]
