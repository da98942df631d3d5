"""Crash choices as Hypothesis strategies, and a stateful test a user subclasses.

`CrashSafeMachine` is a Hypothesis `RuleBasedStateMachine` that drives an engine
on a simulated block device (or, for a path engine, on the file-system model under
`fs_model`) with random put / delete / get / sync steps and,
now and then, a power loss: Hypothesis chooses the crash point (any moment since
the last recovery) and which of the then-pending writes landed, tore or were
lost. The engine is reopened on that disk image and checked against the
reference (CrashSafe<Map>: a whole prefix snapshot, never older than the last
completed sync); afterwards the test continues from the recovered snapshot. A
`get` is compared with the reference at every step. Hypothesis shrinks a failure
to a short sequence of steps.

Example:

    from crashsweep.hypothesis import CrashSafeMachine

    class TinyStoreMachine(CrashSafeMachine):
        engine = "tiny_store.py:TinyStore"     # or a built-in engine name

    TestTinyStore = TinyStoreMachine.TestCase
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, Phase, settings as Settings, strategies as st
from hypothesis.control import current_build_context
from hypothesis.stateful import RuleBasedStateMachine, rule

from crashsweep.crash_explorer._fates import explain_state, sentences
from crashsweep.crash_explorer._io_view import unit_names, unit_sites
from crashsweep.crash_explorer._medium import durable_of, engine_scope, let_go, new_log, new_target, points_of, uses_fs
from crashsweep.crash_explorer.media import medium_of
from crashsweep.crash_explorer._recover import StateContext, recover_state
from crashsweep.crash_explorer._strategies import LANDED, make_choice, tear_patterns
from crashsweep.disk_model import FS_MODEL_DEFAULT, FaultPlan
from crashsweep.engines import DEFAULT_ENGINE, resolve_engine
from crashsweep.reference import History, delete, get, put, sync
from crashsweep.scenarios.strategies import keys, values


def write_fates(sector_count: int, faults: FaultPlan) -> st.SearchStrategy:
    """The fate of one pending write: landed (LANDED), lost (None) or torn (the sector offsets that landed)."""
    options: list[st.SearchStrategy] = [st.just(LANDED)]
    if faults.has("lost"):
        options.append(st.none())
    patterns = tear_patterns(sector_count) if faults.has("torn") else []
    if patterns:
        options.append(st.sampled_from(patterns))
    return st.one_of(*options)


def crash_choices(pending_sector_counts: dict[int, int], faults: FaultPlan | None = None) -> st.SearchStrategy[dict]:
    """A crash choice (trace format: {"persist": [...], "torn": [[id, offsets]]}) for the pending writes
    {request id: sector count}. Shrinks towards every write landed."""
    faults = faults if faults is not None else FaultPlan.parse("crash,torn,lost")
    pending = tuple(sorted(pending_sector_counts))
    return st.tuples(*(write_fates(pending_sector_counts[rid], faults) for rid in pending)).map(
        lambda fates: make_choice(pending, fates))


STEPS_DEFAULT = 20    # steps per example: a failure shrinks in about a minute (Hypothesis's 50 took ~5)


class CrashSafeMachine(RuleBasedStateMachine):
    """Subclass it and set `engine` (a built-in name or `MODULE:CLASS`); see the module docstring.

    Its TestCase runs `STEPS_DEFAULT` steps per example (a crash needs only a few operations before it,
    and shorter examples shrink several times faster); `@settings(...)` on a subclass overrides it."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.TestCase.settings = Settings(stateful_step_count=STEPS_DEFAULT, deadline=None,
                                         suppress_health_check=list(HealthCheck),
                                         phases=[phase for phase in Phase if phase != Phase.explain])

    engine: str = DEFAULT_ENGINE
    options: dict = {}
    sector_size: int = 4096
    sector_count: int = 256
    volatile_cache: bool = True
    faults: str = "crash,torn,lost"
    fs_model: str = FS_MODEL_DEFAULT
    key_strategy = keys()
    value_strategy = values()

    def __init__(self):
        super().__init__()
        adapter = resolve_engine(self.engine)
        self._context = StateContext(
            adapter=adapter, options=adapter.parse_options({k: str(v) for k, v in self.options.items()}),
            sector_size=self.sector_size, sector_count=self.sector_count, volatile_cache=self.volatile_cache,
            seed=0, strategy="bounded", bound=1, samples=1, faults=FaultPlan.parse(self.faults),
            crash_depth=0, nested_states_max=0, continuation=False, state_timeout_s=30.0, fs_model=self.fs_model)
        self._crashes = 0
        self.store = None
        self._start(image=None, recovered={})

    # -- the engine's life between two crashes --
    def _start(self, image, recovered: dict) -> None:
        context = self._context
        self._image = image if image is not None or uses_fs(context) else {}
        self._base = dict(recovered)
        self._model = dict(recovered)
        self._ops: list = []
        self._log = new_log(context)
        self._log.track_sites = True       # a failure names the engine's lines
        device = new_target(context, image, random.Random(self._crashes), self._log,
                            random_seed=f"stateful:{self._crashes}")
        self.events: list[str] = []
        with engine_scope(context, device):
            self.store = context.adapter.open(device, context.options, self.events)

    def _run(self, op):
        __tracebackhide__ = True     # pytest shows the engine's frames and the assertion, not this one
        index = len(self._ops)
        self._ops.append(op)
        self._log.begin_op(index)
        with engine_scope(self._context, None):
            if op.kind == "put":
                self.store.put(op.key, op.value)
                self._model[op.key] = op.value
            elif op.kind == "delete":
                self.store.delete(op.key)
                self._model.pop(op.key, None)
            elif op.kind == "get":
                actual = self.store.get(op.key)
                expected = self._model.get(op.key)
                assert actual == expected, f"get({op.key!r}) returned {actual!r}, the reference has {expected!r}"
            else:
                self.store.sync()
        self._log.end_op(index)

    @rule(data=st.data())
    def do_put(self, data):
        self._run(put(data.draw(self.key_strategy, label="key"), data.draw(self.value_strategy, label="value")))

    @rule(data=st.data())
    def do_delete(self, data):
        self._run(delete(data.draw(self.key_strategy, label="key")))

    @rule(data=st.data())
    def do_get(self, data):
        self._run(get(data.draw(self.key_strategy, label="key")))

    @rule()
    def do_sync(self):
        self._run(sync())

    @rule(data=st.data())
    def power_loss(self, data):
        __tracebackhide__ = True
        context = self._context
        history = History(list(self._ops), base=self._base)
        walk = points_of(context, self._log, history)
        point = walk.points[data.draw(st.integers(0, len(walk.points) - 1).map(lambda i: len(walk.points) - 1 - i),
                                      label="crash point (counted from the end)")]
        choice = data.draw(crash_choices({rid: walk.writes[rid][1] for rid in point.pending}, context.faults),
                           label="fates of the pending writes")
        durable = durable_of(context, walk, self._log, base=self._image, hashed=False)
        choice = durable.normalize(point, choice)          # what the file-system model allows
        durable.advance(point.durable_count)
        image = durable.snapshot(durable.overlay(choice))
        engine, self.store = [self.store], None
        let_go(context, engine)                            # the crashed engine's clean-up counts for nothing
        result = recover_state(context, image, choice, point.windows, history, point.index, depth=0)
        if result["kind"] is not None:
            __tracebackhide__ = True
            raise AssertionError(self._failure(result, point, choice, durable, history))
        self._crashes += 1
        recovered = history.snapshot(result["matched"]) if result.get("matched") is not None else {}
        self._start(image=image if uses_fs(context) else dict(image.items()), recovered=recovered)

    def _failure(self, result: dict, point, choice: dict, durable, history) -> str:
        """The failure in the engine's terms: the operation, the violation, the essential fates (on Hypothesis's
        final run only: shrinking does not pay for them) and the fate of every pending write."""
        op = self._ops[point.op_index] if 0 <= point.op_index < len(self._ops) else None
        during = f"during {op.kind}" if op is not None else "while the engine opened"
        raised = f" [{result['raised']}]" if result.get("raised") else ""
        lines = [f"{result['kind']} after a power loss {during} (operation {point.op_index} since the last "
                 f"recovery): {result['detail']}{raised}"]
        names, sites = unit_names(self._log), unit_sites(self._log)

        def unit(unit_id: int) -> str:
            site = sites.get(unit_id, "")
            return f"{names.get(unit_id, f'unit {unit_id}')}{f' at {site}' if site else ''}"

        if _final_run():
            def check(candidate: dict) -> bool:
                state = durable.snapshot(durable.overlay(candidate))
                again = recover_state(self._context, state, candidate, point.windows, history, point.index, depth=0)
                return again["kind"] == result["kind"]

            fates = explain_state(list(point.pending), choice,
                                  check, lambda candidate: durable.normalize(point, candidate))
            said = sentences(fates, unit, medium_of(self._context).explain_as, None)
            lines += ["why:"] + [f"  {line}" for line in said]
        persisted = set(choice.get("persist", ()))
        torn = {unit_id for unit_id, _ in choice.get("torn", ())}
        if point.pending:
            lines.append("writes pending at the power loss, and what it did to them:")
        for unit_id in point.pending:
            fate = "persisted" if unit_id in persisted else "torn" if unit_id in torn else "lost"
            lines.append(f"  {fate:9} {unit(unit_id)}")
        return "\n".join(lines)

    def teardown(self):
        engine, self.store = [self.store], None
        if engine[0] is not None:
            with engine_scope(self._context, None):
                try:
                    engine[0].close()
                except Exception:
                    pass
        let_go(self._context, engine)


def _final_run() -> bool:
    try:
        return current_build_context().is_final
    except Exception:      # noqa: BLE001 - outside a Hypothesis test (a user driving the machine by hand)
        return True
