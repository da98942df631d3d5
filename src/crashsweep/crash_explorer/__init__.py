"""The crash explorer (DESIGN §5): record, crash points, crash states, recover and check,
stream results, traces, replay and minimize, executors."""

from crashsweep.crash_explorer._crash_points import CrashPoint, PointWalk, crash_points
from crashsweep.crash_explorer._executor import InlineExecutor, LocalExecutor
from crashsweep.crash_explorer._image import DurableImage, LayeredImage
from crashsweep.crash_explorer._minimize import minimize_trace
from crashsweep.crash_explorer._plan import UNIT_STATES_MAX, Plan, PlannedState, make_units, plan_states
from crashsweep.crash_explorer._recording import Recording, record
from crashsweep.crash_explorer._replay import replay_state, replay_trace
from crashsweep.crash_explorer._results import RESULTS_NAME, ResultsError, ResultsWriter, read_results, tally
from crashsweep.crash_explorer._spec import (
    BOUND_DEFAULT, CRASH_DEPTH_MAX, SAMPLES_DEFAULT, STRATEGIES, STRATEGY_DEFAULT, SweepSpec, make_options,
)
from crashsweep.crash_explorer._strategies import point_states, tear_patterns
from crashsweep.crash_explorer._sweep import (
    SweepOptions, SweepRun, execute, header_for, merge_results, prepare, summarize, summarize_results,
)
from crashsweep.crash_explorer._trace import TRACE_FORMAT, TRACE_VERSION, load_trace, make_trace, write_trace
from crashsweep.crash_explorer._worker import run_unit
from crashsweep.crash_explorer.errors import ExplorerError, SpecError, StateTimeout, TraceError

__all__ = [
    "BOUND_DEFAULT", "CRASH_DEPTH_MAX", "CrashPoint", "DurableImage", "ExplorerError", "InlineExecutor",
    "LayeredImage", "LocalExecutor", "Plan", "PlannedState", "PointWalk", "RESULTS_NAME", "Recording",
    "ResultsError", "ResultsWriter", "SAMPLES_DEFAULT", "STRATEGIES", "STRATEGY_DEFAULT", "SpecError",
    "StateTimeout", "SweepOptions", "SweepRun", "SweepSpec", "TRACE_FORMAT", "TRACE_VERSION", "TraceError",
    "UNIT_STATES_MAX", "crash_points", "execute", "load_trace", "make_options", "header_for", "make_trace", "make_units", "merge_results",
    "minimize_trace", "plan_states", "point_states", "prepare", "read_results", "record", "replay_state",
    "replay_trace", "run_unit", "summarize", "summarize_results", "tally", "tear_patterns", "write_trace",
]
