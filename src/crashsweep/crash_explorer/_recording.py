"""Record: run the scenario once on a simulated device and keep every event and op boundary.

The recording is deterministic in the spec: any process can rebuild it, so a
work unit needs to carry only the spec and the states to recover.

Invariants: the engine's reads during the recording are checked against the
reference dict (no crash yet: it must behave exactly like a dict); an
exception or a wrong read there is a finding of its own (`engine-error` /
`wrong-read`), reported with no crash point.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from crashsweep.crash_explorer._crash_points import PointWalk
from crashsweep.crash_explorer._medium import engine_scope, let_go, new_log, new_target, points_of
from crashsweep.crash_explorer._recover import StateContext, encode_map
from crashsweep.crash_explorer._spec import SweepSpec
from crashsweep.crash_explorer._time_limit import time_limit
from crashsweep.crash_explorer.errors import StateTimeout
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


def state_context(spec: SweepSpec) -> StateContext:
    return StateContext(adapter=resolve_engine(spec.engine), options=spec.engine_options(),
                        sector_size=spec.sector_size, sector_count=spec.sector_count,
                        volatile_cache=spec.volatile_cache, seed=spec.seed, strategy=spec.strategy,
                        bound=spec.bound, samples=spec.samples, faults=spec.faults, crash_depth=spec.crash_depth,
                        nested_states_max=spec.nested_states_max, continuation=spec.continuation,
                        state_timeout_s=spec.state_timeout_s, fs_model=spec.fs_model)


def record(spec: SweepSpec) -> Recording:
    """Example: `record(SweepSpec(ops=(put(b"a", b"1"), sync()))).walk.points`."""
    context = state_context(spec)
    log = new_log(context)
    device = new_target(context, None, random.Random(f"{spec.seed}:record"), log, random_seed=f"{spec.seed}:record")
    history = History(list(spec.ops))
    failure = _drive(context, device, log, history, spec)
    walk = points_of(context, log, history)
    return Recording(spec, log, history, walk, context, failure)


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
        with time_limit(spec.state_timeout_s * max(1, len(spec.ops) // 100)), engine_scope(context, device):
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
    except Exception as error:
        return {"kind": "engine-error", "outcome": "engine-error", "op_index": index,
                "detail": f"without any crash, op {index} raised {type(error).__name__}: {error}"}
    return None


def _show(value: bytes | None) -> str:
    return "nothing" if value is None else repr(encode_bytes(value))
