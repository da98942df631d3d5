"""A sweep's planned states run in this process, as workers run them: what tests comparing every state's
result under two settings use."""

TIMING_FIELDS = ("engine_s", "total_s", "memo")     # what may differ between runs of the same state


def planned_sweep(argv: list[str]):
    """(the recording, its work units) of `crashsweep sweep ARGV`, the recording kept for `run_unit`."""
    from crashsweep import cli
    from crashsweep.crash_explorer._plan import make_units, plan_states
    from crashsweep.crash_explorer._recording import record
    from crashsweep.crash_explorer._worker import remember

    spec = cli.spec_from_args(cli.parse_with_settings(["sweep"] + argv))
    recording = record(spec)
    remember(recording)
    return recording, make_units(spec.to_json(), plan_states(recording).states, spec_id=spec.spec_id)


def state_results(units: list[dict], memo: bool = True) -> list[dict]:
    """Every state's result of `units`, in order, without the fields that say how it was computed."""
    from crashsweep.crash_explorer._worker import run_unit

    found = [result for unit in units for result in run_unit({**unit, "memo": memo})]
    for result in found:
        for name in TIMING_FIELDS:
            result.pop(name, None)
    return found
