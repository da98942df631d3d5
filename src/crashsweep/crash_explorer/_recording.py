"""Record: run the scenario once on a simulated device and keep every event and op boundary.

The recording is deterministic in the spec: any process can rebuild it, so a
work unit needs to carry only the spec and the states to recover.

Invariants: the engine's reads during the recording are checked against the
reference dict (no crash yet: it must behave exactly like a dict); an
exception or a wrong read there is a finding of its own (`engine-error` /
`wrong-read`), reported with no crash point.
"""

from __future__ import annotations

import base64
import random
import zlib
from dataclasses import dataclass, field, replace

from crashsweep.crash_explorer._crash_points import PointWalk
from crashsweep.crash_explorer._medium import engine_scope, let_go, new_log, new_target, points_of
from crashsweep.crash_explorer.media import medium_of
from crashsweep.crash_explorer._recover import StateContext, encode_map, error_text, raised_by
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._time_limit import time_limit
from crashsweep.crash_explorer._limits import cap_text
from crashsweep.crash_explorer.errors import ENGINE_EXCEPTIONS, EngineBypass, StateTimeout
from crashsweep.disk_model import InterpositionBypass
from crashsweep.crash_explorer._log_wire import log_from_data, log_to_data
from crashsweep.crash_explorer._profiles import engine_profile
from crashsweep.crash_explorer._sandbox import run_contained
from crashsweep.crash_explorer import _wire
from crashsweep.crash_explorer._wire import WireError
from crashsweep.engines import resolve_engine
from crashsweep.reference import History, encode_bytes


@dataclass
class Recording:
    spec: SweepSpec
    log: object   # EventLog (block) or FsLog (file system)
    history: History
    walk: PointWalk
    context: StateContext
    failure: dict | None     # a finding during the un-crashed run, or None
    warnings: list[str] = field(default_factory=list)   # what the engine did that is no finding (leftovers)
    live: bool = True        # its context can open the engine (False: made in crashsweep's own process)


RECORD_SLACK_S = 30.0
RECORDED_BYTES_MAX = 1 << 30


def state_context(spec: SweepSpec, live: bool = True) -> StateContext:
    """The context of a spec. `live`: with the engine's real adapter (this process runs the engine: a worker,
    a contained child, or a caller of `record` who chose to); else with its profile, which cannot open it."""
    adapter = resolve_engine(spec.engine, spec.medium) if live else engine_profile(spec.engine, medium=spec.medium)
    return StateContext(adapter=adapter, options=spec.engine_options(), ignore_mmap=spec.ignore_mmap,
                        sector_size=spec.sector_size, sector_count=spec.sector_count,
                        volatile_cache=spec.volatile_cache, seed=spec.seed, strategy=spec.strategy,
                        bound=spec.bound, samples=spec.samples, faults=spec.faults, crash_depth=spec.crash_depth,
                        nested_states_max=spec.nested_states_max, continuation=spec.continuation,
                        state_timeout_s=spec.state_timeout_s, fs_model=spec.fs_model)


def record(spec: SweepSpec) -> Recording:
    """Example: `record(SweepSpec(ops=(put(b"a", b"1"), sync()))).walk.points`."""
    context = state_context(spec)
    if spec.recorded:              # a native engine's recording, kept: rebuild it exactly (no engine runs)
        history = History(list(spec.ops))
        log = recorded_log(spec.recorded)
        return Recording(spec, log, history, points_of(context, log, history), context, None)
    log = new_log(context)
    log.track_sites = True      # findings name the engine's lines (costs one stack walk per call, here only)
    device = new_target(context, None, random.Random(f"{spec.seed}:record"), log, random_seed=f"{spec.seed}:record")
    history = History(list(spec.ops))
    failure = _drive(context, device, log, history, spec)
    walk = points_of(context, log, history)
    return Recording(spec, log, history, walk, context, failure)


def encode_recorded(log) -> str:
    """A recorded log as spec text (`SweepSpec.recorded`): the wire encoding, compressed, base64."""
    return base64.b64encode(zlib.compress(_wire.encode(log_to_data(log)), 6)).decode("ascii")


def recorded_log(text: str):
    """The log `encode_recorded` made. Raises WireError on anything malformed."""
    try:
        data = zlib.decompressobj().decompress(base64.b64decode(text.encode("ascii"), validate=True),
                                               RECORDED_BYTES_MAX)
    except (ValueError, zlib.error) as error:
        raise WireError(f"the recorded I/O log is malformed ({error})") from None
    return log_from_data(_wire.decode(data))


def new_recording_differs(spec: SweepSpec, memory_limit_bytes: int | None = None) -> str | None:
    """For a spec that carries its recorded log (a native engine's): record the workload again and say how the
    new recording differs from the kept one (None: the same I/O). Replay uses the kept log either way."""
    if not spec.recorded:
        return None
    kept = recorded_log(spec.recorded)
    fresh = record_contained(replace(spec, recorded=""), memory_limit_bytes)
    if fresh.failure is not None:
        return f"recording the workload again failed ({fresh.failure['kind']}: {cap_text(fresh.failure['detail'], 200)})"
    if fresh.log.ops == kept.ops and fresh.log.events == kept.events:
        return None
    first = next((index for index, (a, b) in enumerate(zip(kept.ops, fresh.log.ops)) if a != b),
                 min(len(kept.ops), len(fresh.log.ops)))
    return (f"a new recording of this workload differs from the trace's ({len(fresh.log.ops):,} vs "
            f"{len(kept.ops):,} micro-operations, first difference at micro-operation {first}: the engine's own "
            "randomness, clock or threads); the replay used the trace's recorded I/O")


def workload_limit_s(spec: SweepSpec, context) -> float:
    """How long the recorded workload may take before it is a hang: the state timeout per 100 operations,
    times the medium's recording slowdown (strace's, natively: the harness's cost, not the engine's)."""
    return spec.state_timeout_s * max(1, len(spec.ops) // 100) * medium_of(context).recording_slowdown


def record_contained(spec: SweepSpec, memory_limit_bytes: int | None = None) -> Recording:
    """`record(spec)` run in a contained child process (the engine boundary): only the log and the
    outcome come back, as data. An engine that kills, hangs or exhausts that process is the recording's
    finding (`engine-error`, `hang`, `resource-exhausted`), with its captured output."""
    context = state_context(spec, live=False)
    timeout_s = workload_limit_s(spec, context) + RECORD_SLACK_S
    outcome = run_contained(_record_as_data, spec.to_json(), timeout_s=timeout_s,
                            memory_limit_bytes=memory_limit_bytes)
    history = History(list(spec.ops))
    failure, log = None, new_log(context)
    if outcome.ok and isinstance(outcome.value, dict) and "bypass" in outcome.value:
        raise EngineBypass(f"{outcome.value['bypass']} (during the recording)")
    if outcome.ok:
        try:
            log = log_from_data(outcome.value["log"])
            failure = _checked_failure(outcome.value["failure"])
        except (WireError, KeyError, TypeError) as error:
            failure = {"kind": "engine-error", "outcome": "engine-error", "op_index": -1,
                       "detail": f"the recording process sent back a malformed recording ({error})"}
    else:
        kind = {"hang": "hang", "resource-exhausted": "resource-exhausted"}.get(outcome.status, "engine-error")
        failure = {"kind": kind, "outcome": kind, "op_index": -1,
                   "detail": f"the workload without any crash: the recording process {outcome.detail}"}
    if failure is not None and outcome.output:
        failure["output"] = outcome.output
    warnings = []
    if outcome.leftovers:
        warnings.append(f"the engine left {outcome.leftovers} process(es) running after the recording; "
                        "crashsweep killed them")
    walk = points_of(context, log, history)
    return Recording(spec, log, history, walk, context, failure, warnings, live=False)


def recording_from_data(spec_json: dict, log_data) -> Recording:
    """A recording rebuilt from its spec and its log as data (`log_to_data`): enough to plan its states
    anywhere (a Dask worker), without running the engine. Example: `recording_from_data(spec.to_json(), data)`."""
    spec = SweepSpec.from_json(spec_json)
    context = state_context(spec, live=False)
    history = History(list(spec.ops))
    log = log_from_data(log_data)
    return Recording(spec, log, history, points_of(context, log, history), context, None, live=False)


def _record_as_data(spec_json: dict) -> dict:
    try:
        recording = record(SweepSpec.from_json(spec_json))
    except InterpositionBypass as bypass:
        return {"bypass": str(bypass)}
    return {"log": log_to_data(recording.log), "failure": recording.failure}


def _checked_failure(failure) -> dict | None:
    if failure is None:
        return None
    if not isinstance(failure, dict) or not isinstance(failure.get("kind"), str) \
            or not isinstance(failure.get("detail", ""), str):
        raise TypeError("failure")
    return failure


def _drive(context: StateContext, device, log, history: History, spec: SweepSpec) -> dict | None:
    engine: list = []
    try:
        return _run_workload(context, device, log, spec, engine)
    finally:
        let_go(context, engine)     # the workload ends in a power loss: no clean-up reaches the log


def _run_workload(context: StateContext, device, log, spec: SweepSpec, engine: list) -> dict | None:
    reference: dict[bytes, bytes] = {}
    index = -1
    try:
        with time_limit(workload_limit_s(spec, context)), engine_scope(context, device):
            store = context.adapter.open(device, context.options, [])
            engine.append(store)
            for index, op in enumerate(spec.ops):
                log.begin_op(index)
                if op.kind == "put":
                    store.put(op.key, op.value)
                    reference[op.key] = op.value
                elif op.kind == "delete":
                    store.delete(op.key)
                    reference.pop(op.key, None)
                elif op.kind == "get":
                    actual = store.get(op.key)
                    if actual != reference.get(op.key):
                        return {"kind": "wrong-read", "outcome": "wrong-read", "op_index": index,
                                "detail": f"without any crash, get({encode_bytes(op.key)}) at op {index} returned "
                                          f"{_show(actual)}, expected {_show(reference.get(op.key))}",
                                "expected": encode_map(reference)}
                else:
                    store.sync()
                log.end_op(index)
    except StateTimeout:
        return {"kind": "hang", "outcome": "hang", "op_index": index,
                "detail": f"the workload without any crash did not finish in time (op {index})"}
    except InterpositionBypass:
        raise
    except MemoryError:
        return {"kind": "resource-exhausted", "outcome": "resource-exhausted", "op_index": index,
                "detail": f"without any crash, op {index} ran out of memory (MemoryError under --memory-limit)"}
    except ENGINE_EXCEPTIONS as error:
        return {"kind": "engine-error", "outcome": "engine-error", "op_index": index, "raised": raised_by(error),
                "detail": cap_text(f"without any crash, op {index} raised {error_text(error)}")}
    return None


def _show(value: bytes | None) -> str:
    return "nothing" if value is None else cap_text(repr(encode_bytes(value)), 200)
