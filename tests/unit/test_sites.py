"""Which frame names a call's or an exception's site (`_sites._pick`): the innermost engine frame; with none
before crashsweep's driver, the innermost standard-library frame that is not file plumbing, else the innermost
plumbing one — checked against that definition on generated stacks of every kind of file."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from crashsweep.disk_model import _sites

STDLIB, PACKAGE = _sites._STDLIB, _sites._PACKAGE
FILES = {
    os.path.join(os.getcwd(), "engines", "mine.py"): "engine",
    os.path.join(os.getcwd(), "helper.py"): "engine",
    PACKAGE + os.path.join("store", "_tree.py"): "engine",            # crashsweep's own engines are engine code
    STDLIB + "os.py": "plumbing",
    STDLIB + os.path.join("json", "decoder.py"): "plumbing",
    STDLIB + "_pyio.py": "plumbing",
    STDLIB + os.path.join("dbm", "dumb.py"): "library",
    STDLIB + "pickle.py": "library",
    PACKAGE + os.path.join("disk_model", "fs", "_session.py"): "harness",
    "<frozen os>": "harness",
    PACKAGE + os.path.join("crash_explorer", "_recover.py"): "driver",
}


def _expected(frames) -> str:
    library = plumbing = None
    for filename, line in frames:
        kind = FILES[filename]
        if kind == "driver":
            break
        if kind == "engine":
            return f"{_sites.shown_path(filename)}:{line}"
        if kind == "library" and library is None:
            library = (filename, line)
        if kind == "plumbing" and plumbing is None:
            plumbing = (filename, line)
    found = library or plumbing
    return f"{_sites.shown_path(found[0])}:{found[1]}" if found else _sites.UNKNOWN_SITE


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(FILES)), st.integers(1, 999)), max_size=12))
def test_the_site_is_the_innermost_engine_frame_else_a_library_one(frames):
    assert _sites.pick_site(frames) == _expected(frames)
    assert _sites.pick_site(iter(frames)) == _expected(frames)


def test_a_site_is_named_as_a_user_looks_it_up():
    assert _sites.pick_site([(STDLIB + "os.py", 3), (os.path.join(os.getcwd(), "engines", "mine.py"), 7)]) \
        == os.path.join("engines", "mine.py") + ":7"
    assert _sites.pick_site([(STDLIB + "os.py", 3), (STDLIB + os.path.join("dbm", "dumb.py"), 9)]) \
        == os.path.join("dbm", "dumb.py") + ":9"
    assert _sites.pick_site([(PACKAGE + os.path.join("crash_explorer", "_recover.py"), 1),
                             (os.path.join(os.getcwd(), "helper.py"), 2)]) == _sites.UNKNOWN_SITE
