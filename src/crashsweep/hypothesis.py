"""Hypothesis support (needs the `hypothesis` package, in the `test` extra).

- `operations`, `keys`, `values`: strategies for operation histories;
- `crash_choices`, `write_fates`: strategies for which pending writes a crash lets land, tear or lose;
- `CrashSafeMachine`: a stateful test to subclass with your engine (random traces with crashes,
  compared with the reference at every step); see crashsweep.crash_explorer._stateful.
"""

from crashsweep.crash_explorer._stateful import CrashSafeMachine, crash_choices, write_fates
from crashsweep.scenarios.strategies import keys, operations, values

__all__ = ["CrashSafeMachine", "crash_choices", "keys", "operations", "values", "write_fates"]
