"""Hypothesis strategies for histories and crash choices, and the stateful CrashSafeMachine."""

import pathlib

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from crashsweep.crash_explorer._crash_points import CrashPoint, PointWalk
from crashsweep.crash_explorer._image import choice_problem
from crashsweep.disk_model import FaultPlan
from crashsweep.hypothesis import CrashSafeMachine, crash_choices, operations
from crashsweep.reference import MUTATING_KINDS, decode_ops, encode_ops

ENGINE_FILE = pathlib.Path(__file__).resolve().parents[1] / "engines" / "tiny_block.py"


@given(operations(max_size=30))
def test_operation_histories_are_valid_and_round_trip(ops):
    assert 1 <= len(ops) <= 30
    assert decode_ops(encode_ops(ops)) == ops
    for op in ops:
        assert op.kind in ("put", "delete", "get", "sync")
        assert isinstance(op.key, bytes) or op.kind == "sync"


@given(st.data())
def test_operation_histories_reach_overwrites_and_deletes(data):
    ops = data.draw(operations(max_size=60))
    keys = [op.key for op in ops if op.kind in MUTATING_KINDS and op.kind != "sync"]
    assert all(key.startswith(b"k") for key in keys)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.integers(0, 50), st.integers(1, 6), min_size=0, max_size=5), st.data())
def test_crash_choices_are_valid_choices_for_their_point(pending, data):
    faults = FaultPlan.parse("crash,torn,lost")
    choice = data.draw(crash_choices(pending, faults))
    writes = {rid: (rid * 10, count) for rid, count in pending.items()}
    walk = PointWalk([CrashPoint(0, 0, 0, tuple(sorted(pending)), ((0, 0),), -1)], [], writes)
    assert choice_problem(walk, 0, choice, 10_000) is None
    landed = set(choice.get("persist", [])) | {rid for rid, _ in choice.get("torn", [])}
    assert landed <= set(pending)


@given(crash_choices({3: 2, 5: 1}, FaultPlan.parse("crash")))
def test_crash_choices_without_lost_or_torn_land_everything(choice):
    assert choice == {"persist": [3, 5]}


class TinyMachine(CrashSafeMachine):
    engine = f"{ENGINE_FILE}:TinyBlockStore"


class TinyBuggyMachine(CrashSafeMachine):
    engine = f"{ENGINE_FILE}:TinyBlockStore"
    options = {"bug": "in-place"}


class ExampleWalMachine(CrashSafeMachine):
    engine = "example-wal"
    options = {"checkpoint_sectors": 16, "log_sectors": 16, "checkpoint_every_syncs": 2}
    sector_count = 64


@pytest.mark.parametrize("machine", [TinyMachine, ExampleWalMachine])
def test_correct_engines_pass_the_stateful_test(machine):
    run_state_machine_as_test(machine, settings=settings(max_examples=60, deadline=None, database=None))


def test_the_stateful_test_finds_a_crash_bug():
    with pytest.raises(AssertionError, match="recovery-error after a power loss during") as failure:
        run_state_machine_as_test(TinyBuggyMachine, settings=settings(max_examples=300, deadline=None,
                                                                      database=None, derandomize=True,
                                                                      stateful_step_count=20,
                                                                      phases=[Phase.generate]))
    assert "checksum mismatch" in str(failure.value)


FS_ENGINES = pathlib.Path(__file__).resolve().parents[1] / "engines" / "fs_engines.py"


class AtomicReplaceMachine(CrashSafeMachine):
    engine = f"{FS_ENGINES}:AtomicReplace"


class RenameWithoutFsyncMachine(CrashSafeMachine):
    engine = f"{FS_ENGINES}:RenameWithoutFsync"


def test_the_stateful_test_runs_path_engines_on_the_file_system_model():
    run_state_machine_as_test(AtomicReplaceMachine, settings=settings(max_examples=40, deadline=None, database=None))
    with pytest.raises(AssertionError, match="after a power loss during") as failure:
        run_state_machine_as_test(RenameWithoutFsyncMachine, settings=settings(
            max_examples=300, deadline=None, database=None, derandomize=True, phases=[Phase.generate]))
    text = str(failure.value)              # said in the engine's terms: its calls, its lines, what they need
    assert "why:" in text and ("(ordering)" in text or "(durability)" in text or "(atomicity)" in text)
    assert "map.json" in text and "fs_engines.py:" in text and "writes pending at the power loss" in text
    assert not pathlib.Path("/crashsweep").exists()          # every file call was served by the model


MACHINE_TEST = """
import os
from hypothesis import settings
from crashsweep.hypothesis import CrashSafeMachine


class RenameMachine(CrashSafeMachine):
    engine = {engine!r}


class ForgetfulStore:          # syncs by creating marker files it cannot read back after a crash
    def __init__(self, path):
        self.path, self.data = path, {{}}
        if os.listdir(path):
            raise ValueError("cannot read the store back")

    def put(self, key, value):
        self.data[key] = value

    def get(self, key):
        return self.data.get(key)

    def delete(self, key):
        self.data.pop(key, None)

    def sync(self):
        with open(os.path.join(self.path, "marker"), "w") as handle:
            handle.write("x")
            handle.flush()
            os.fsync(handle.fileno())
        directory = os.open(self.path, os.O_RDONLY)
        os.fsync(directory)
        os.close(directory)

    def close(self):
        pass


class ForgetfulMachine(CrashSafeMachine):
    engine = __file__ + ":ForgetfulStore"


TestForgetful = ForgetfulMachine.TestCase
TestForgetful.settings = settings(TestForgetful.settings, max_examples=100, derandomize=True, database=None)
"""


def test_a_machine_failure_is_explained_without_crashsweep_frames_in_the_traceback(pytester):
    pytester.makepyfile(test_machine=MACHINE_TEST.format(engine=f"{FS_ENGINES}:RenameWithoutFsync"))
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "recovery-error after a power loss" in text and "ValueError at test_machine.py:" in text
    assert "why:" in text and "fails with every pending write persisted in order" in text
    assert "_stateful.py" not in text                     # no crashsweep internals in the traceback


def test_the_machine_runs_short_examples_by_default():
    from crashsweep.crash_explorer._stateful import STEPS_DEFAULT
    assert TinyMachine.TestCase.settings.stateful_step_count == STEPS_DEFAULT < 50
