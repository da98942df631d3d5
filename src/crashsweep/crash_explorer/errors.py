"""Errors of the crash explorer. One root: `ExplorerError`."""


class ExplorerError(Exception):
    """Root of the explorer's errors."""


class SpecError(ExplorerError, ValueError):
    """A sweep's settings are inconsistent or out of range; one line says which."""


class TraceError(ExplorerError, ValueError):
    """A trace file is missing, malformed, or does not match what it claims to reproduce."""


class EngineBypass(ExplorerError):
    """The engine reached the real system around its simulated medium (a subprocess, a real file, mmap,
    sqlite3, ctypes): its I/O cannot be tested, so the sweep stops (exit 2) instead of reporting findings."""


class StateTimeout(BaseException):
    """Raised inside an engine when a state's time limit passes (BaseException so `except Exception` can't eat it)."""


# What engine code may raise that is the engine's, not crashsweep's: everything but StateTimeout (our time
# limit). A KeyboardInterrupt or SystemExit raised by an engine is its failure, never an interrupt of the
# sweep (worker processes ignore SIGINT: Ctrl-C reaches only crashsweep's own process).
ENGINE_EXCEPTIONS = (Exception, KeyboardInterrupt, SystemExit, GeneratorExit)
