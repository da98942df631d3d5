"""Errors of the scenarios package. One root: `ScenarioError`."""


class ScenarioError(ValueError):
    """A scenario name, size or file is wrong; the message says what and where."""
