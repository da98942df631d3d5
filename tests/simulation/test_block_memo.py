"""The observation memo on the block device (`disk_model/block/_memo.py`): a state whose every device request
gets a response the memo has seen is answered without running the engine, from a fresh device holding the
state's image and drawing on the state's rng. Every state's result must be the one of running it live."""

import random

import pytest

from crashsweep.disk_model import EventLog, SimulatedBlockDevice
from crashsweep.disk_model._memo import _recording
from crashsweep.disk_model.block._memo import DeviceMemo, NotedBlockDevice
from tests.simulation.planned_sweep import planned_sweep, state_results


def _results_with_and_without(argv: list[str]):
    """(every state's result with the memo, the same with every state live, (memo hits, misses))."""
    recording, units = planned_sweep(argv)
    live = state_results(units, memo=False)
    context = recording.context
    context.memos.clear()
    context.memo_of_history.clear()
    memoized = state_results(units)
    memos = list(context.memos.values())
    return memoized, live, (sum(memo.hits for memo in memos), sum(memo.misses for memo in memos))


@pytest.mark.parametrize("argv", [
    ["--engine", "betree"],
    ["--engine", "betree", "--option", "bug=no-flush-before-superblock"],
    ["--engine", "betree", "--option", "bug=journal-replay-wrong-start"],
    ["--engine", "betree", "--crash-depth", "0", "--ops", "24"],
    ["--engine", "example-wal"],
    ["--engine", "example-wal", "--option", "bug=sync-without-flush"],
    pytest.param(["--engine", "betree", "--faults", "crash,torn,lost,corrupt,misdirect"], marks=pytest.mark.long),
    pytest.param(["--engine", "betree", "--option", "bug=reuse-before-durable", "--crash-depth", "2", "--ops", "8"],
                 marks=pytest.mark.long),
    pytest.param(["--engine", "example-wal", "--option", "bug=checkpoint-in-place"], marks=pytest.mark.long),
])
def test_the_block_memo_gives_every_state_the_result_of_a_live_run(argv):
    """Correct and buggy block engines, crash depth 0 (continuation on), 1 and 2, with and without corruption
    faults (a state with injected faults is always live): every result — verdicts, snapshots, nested state
    counts, nested findings, events — equals the all-live one, and most states at the last depth were
    answered."""
    memoized, live, (hits, misses) = _results_with_and_without(argv)
    assert memoized == live
    assert hits > misses, (hits, misses)


def test_a_fresh_device_answers_as_the_noted_one_responded():
    """The recorded responses (ids, read data, completion order under the rng, errors) are what a walk gets
    from a plain device on the same image with the same rng; another image or another rng is a miss."""
    image = {sector: bytes([sector]) * 512 for sector in range(8)}

    def run(device: SimulatedBlockDevice) -> list:
        seen = [device.read(3)]
        ids = [device.submit_write(sector, bytes([100 + sector]) * 512) for sector in (2, 3, 4)]
        ids.append(device.submit_read(3, 2))
        seen.append(device.wait(ids[-1]))              # the rng decides which writes completed before the read
        device.flush()
        try:
            device.read(99)
        except Exception as error:                     # a request the device refuses is a response too
            seen.append(type(error).__name__)
        device.close()
        return seen

    memo = DeviceMemo()
    memo.begin()
    try:
        noted = NotedBlockDevice(512, 16, random.Random(5), base=image, log=EventLog())
        live = run(noted)
        memo.stop(("done", tuple(map(repr, live))))
    finally:
        memo.end()
    assert _recording[0] is None and memo.nodes > 8
    walk = memo.walk(SimulatedBlockDevice(512, 16, random.Random(5), base=image, log=EventLog()))
    assert walk is not None and walk.outcome == ("done", tuple(map(repr, live)))
    assert run(SimulatedBlockDevice(512, 16, random.Random(5), base=image, log=EventLog())) == live
    other = {**image, 3: b"\xff" * 512}
    assert memo.walk(SimulatedBlockDevice(512, 16, random.Random(5), base=other, log=EventLog())) is None
    answered, differing = 0, 0
    for seed in range(30):
        same = run(SimulatedBlockDevice(512, 16, random.Random(seed), base=image, log=EventLog())) == live
        walked = memo.walk(SimulatedBlockDevice(512, 16, random.Random(seed), base=image, log=EventLog()))
        assert (walked is not None) == same, seed     # answered exactly when a live run would respond alike
        answered, differing = answered + same, differing + (not same)
    assert answered and differing, "the rng never (or always) changed what the requests saw: nothing shown"

def test_a_write_of_data_a_fresh_device_cannot_be_given_turns_the_memo_off():
    class Odd(list):
        pass

    memo = DeviceMemo()
    memo.begin()
    try:
        device = NotedBlockDevice(512, 16, random.Random(1), log=EventLog())
        device.write(0, Odd(bytes(512)))               # a list of ints: the device takes it, a key could not
        memo.stop(("done",))
    finally:
        memo.end()
    assert memo.off and memo.walk(SimulatedBlockDevice(512, 16, random.Random(1), log=EventLog())) is None


def test_a_walk_answers_from_the_state_image_with_the_rng_its_live_run_would_have():
    """The block medium's walk target holds the state's image and the rng `_recover_live` gives the state's
    device (`_state_seed`): with another rng a walk could follow a path a live run of the state would not."""
    from crashsweep import cli
    from crashsweep.crash_explorer import _recover
    from crashsweep.crash_explorer._recording import state_context
    from crashsweep.crash_explorer.media import medium_of

    context = state_context(cli.spec_from_args(cli.parse_with_settings(["sweep", "--engine", "betree"])))
    choice = {"landed": [1, 2]}
    seed = _recover._state_seed(context, 7, choice, 0)
    assert seed != _recover._state_seed(context, 8, choice, 0) != _recover._state_seed(context, 7, choice, 1)
    image = {0: b"\x01" * context.sector_size}
    target = medium_of(context).memo_target(context, image, seed)
    assert target.rng.getstate() == random.Random(seed).getstate()
    assert target.read(0) == image[0] and target.sector_count == context.sector_count
    devices = []
    original = _recover.new_target

    def kept(*arguments, **keywords):
        devices.append(original(*arguments, **keywords))
        devices[-1].seeded = arguments[2].getstate()
        return devices[-1]

    _recover.new_target = kept
    try:
        from crashsweep.reference import History, put, sync
        _recover._recover_live(context, image, choice, [[0, 0]], History([put(b"k", b"v"), sync()]), 7, 0, None,
                               None, False, [], None)
    finally:
        _recover.new_target = original
    assert devices and devices[0].seeded == random.Random(seed).getstate()


def test_a_state_is_marked_memo_only_when_no_engine_code_ran_for_it():
    """`"memo": true` tells the worker no engine code ran for the state (its output and processes need no
    collecting): a top-level state answered by the memo whose nested states ran live is not marked. (A second
    pass over the sweep with the nested states' memos forgotten: top-level states answered, nested ones live.)"""
    from crashsweep.crash_explorer import _recover
    from crashsweep.crash_explorer._worker import run_unit

    recording, units = planned_sweep(["--engine", "betree"])
    context = recording.context
    first = [result for unit in units for result in run_unit(unit)]
    for key in [key for key in context.memos if key[0] == 0]:
        del context.memos[key]
    for key in [key for key in context.memo_of_history if key[1] == 0]:
        del context.memo_of_history[key]
    runs = []
    original = _recover._recover_live

    def counted(*arguments):
        runs.append(arguments[6])                          # the depth of every live run
        return original(*arguments)

    _recover._recover_live = counted
    try:
        marked = unmarked_with_live_nested = 0
        for unit in units:
            results = run_unit(unit)
            while True:
                runs.clear()
                result = next(results, None)
                if result is None:
                    break
                if result.get("memo"):
                    assert not runs, "a state marked memo ran engine code"
                    marked += 1
                elif runs and set(runs) == {0}:
                    unmarked_with_live_nested += 1
    finally:
        _recover._recover_live = original
    assert marked > 100 and unmarked_with_live_nested > 10, (marked, unmarked_with_live_nested)
    assert sum(1 for result in first if result.get("memo")) > 100


def test_a_noted_device_notes_only_for_the_memo_that_recorded_when_it_was_made():
    """A state that crashes again records its own run while a nested state's memo records another: the first
    state's device and log, still alive, must not write into the nested memo's trail."""
    from crashsweep.disk_model.block._memo import NotedEventLog

    outer, nested = DeviceMemo(), DeviceMemo()
    outer.begin()
    log = NotedEventLog()
    device = NotedBlockDevice(512, 16, random.Random(1), log=log)
    device.write(0, bytes(512))
    outer.stop(("done",))
    nested.begin()                              # the nested state's memo records now
    try:
        device.write(1, bytes(512))
        log.begin_op(0)
        nested.stop(("done",))
    finally:
        nested.end()
        outer.end()
    assert nested.nodes == 2                    # its stop alone: none of the outer device's requests
    assert outer.nodes > 3
