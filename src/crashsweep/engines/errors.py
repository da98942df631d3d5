"""Errors of the engine adapters. One root: `EngineError`."""


class EngineError(ValueError):
    """An engine name or option is wrong; the message is one line that says what."""
