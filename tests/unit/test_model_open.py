"""`open` on the file-system model: its direct path (a `str` name, default buffering) against `_pyio.open` through
the same model, argument by argument, valid and not: the same object layers, the same errors, the same files."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crashsweep.disk_model import FsLog, FsTree, Interposer, STORE_PATH
from crashsweep.disk_model.fs._log import DIRECTORY, FILE
from crashsweep.disk_model.fs._session import FsSession

MODES = ("r", "rb", "rt", "tr", "br", "w", "wb", "wt", "a", "ab", "x", "xb", "r+", "r+b", "rb+", "+r", "w+", "w+b",
         "a+", "ab+", "x+", "x+b", "", "rw", "rr", "q", "r+t", "rtb", "U", "r++")
FILES = ("f", "missing", "d", "no/f", "f/")


def _described(result) -> tuple:
    layers, layer = [], result
    while layer is not None:
        layers.append(type(layer).__name__)
        layer = getattr(layer, "buffer", None) or getattr(layer, "raw", None)
    raw = result
    while hasattr(raw, "buffer") or hasattr(raw, "raw"):
        raw = getattr(raw, "buffer", None) or raw.raw
    text = hasattr(result, "encoding")
    return (tuple(layers), getattr(result, "mode", None), result.name, raw.readable(), raw.writable(), raw.tell(),
            result.encoding if text else None, result.errors if text else None, text and result.line_buffering,
            raw._blksize, raw._appending, raw.closefd)


def _outcome(opener, session, interposer, path, *arguments):
    session.load(_tree(), FsLog())
    with interposer.active():
        try:
            result = opener(path, *arguments)
        except Exception as error:      # noqa: BLE001 - the outcome compared
            described = ("raised", type(error).__name__, str(error))
        else:
            described = _described(result)
            try:
                if result.readable():
                    described += (result.read(),)
                if result.writable():
                    result.write(b"xyz" if "b" in result.mode else "xyz")
            finally:
                result.close()
            described += (result.closed, _after_close(result))
        files = {path: bytes(session.fs.get_object(path).byte_contents)
                 for path in (f"{STORE_PATH}/f", f"{STORE_PATH}/missing") if session.fs.exists(path)}
    return described, files


def _after_close(result) -> tuple:
    """What a closed file says: closed at every layer, and reading it is an error."""
    raw = result
    while hasattr(raw, "buffer") or hasattr(raw, "raw"):
        raw = getattr(raw, "buffer", None) or raw.raw
    try:
        raw.read(1)
    except Exception as error:      # noqa: BLE001 - the outcome compared
        return raw.closed, type(error).__name__
    return raw.closed, None


def _tree() -> FsTree:
    """The store holds a file `f` (text with a non-ASCII letter and both line ends) and a directory `d`."""
    tree = FsTree.initial()
    store = tree.entries[3]["store"][0]
    tree.entries[store] = {"f": (20, FILE), "d": (21, DIRECTORY)}
    tree.entries[21] = {}
    tree.data = {20: bytearray("h\u00e9llo\r\nw\n".encode())}
    tree.sizes = {20: len(tree.data[20])}
    return tree


@pytest.fixture(scope="module")
def model():
    session = FsSession(FsTree.initial(), FsLog())
    interposer = Interposer(session)
    with interposer.active():
        pass
    yield session, interposer, interposer.patcher.fake_modules["io"]
    interposer.close()


@pytest.mark.filterwarnings("ignore:line buffering:RuntimeWarning")
@settings(max_examples=600, deadline=None)
@given(mode=st.sampled_from(MODES), file=st.sampled_from(FILES),
       encoding=st.sampled_from((None, "utf-8", "latin-1", "no-such-codec", 5)),
       errors=st.sampled_from((None, "strict", "replace", 3)), newline=st.sampled_from((None, "", "\n", "\r\n", "x")),
       buffering=st.sampled_from((-1, -1, -1, 0, 1, 512)))
def test_open_is_pyio_open_through_the_model(model, mode, file, encoding, errors, newline, buffering):
    session, interposer, model_io = model
    path = f"{STORE_PATH}/{file}"
    arguments = (mode, buffering, encoding, errors, newline)
    assert _outcome(model_io.open, session, interposer, path, *arguments) == \
        _outcome(model_io._pyio.open, session, interposer, path, *arguments)
