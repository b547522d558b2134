"""The exception hierarchy: one root, and errors that name the field and what was expected."""

from __future__ import annotations

MAX_MESSAGE = 500
"""Characters of an error message; :func:`one_line` cuts longer ones (values are shortened first)."""


def one_line(message: str, *, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line (newlines folded) and at most ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SimresError(Exception):
    """Root of every error simres raises on purpose."""


class ScenarioError(SimresError):
    """A scenario (file, override or API argument) is invalid.

    The message is one line: ``<source>: <field.path>: <what was expected>, got <value>``,
    so the CLI can print it as it is and exit 2.
    """

    def __init__(self, message: str, *, source: str | None = None, path: str | None = None):
        self.source = source
        self.path = path
        self.detail = one_line(message)
        parts = [one_line(p, limit=200) for p in (source, path) if p]
        super().__init__(one_line(": ".join([*parts, self.detail])))


class ScenarioWarning(UserWarning):
    """A scenario setting that is valid but may not do what was meant (a fault after arrivals end).

    The CLI prints it as one line, ``warning: <field.path>: ...``, and carries on.
    """


class PolicyConfigError(SimresError, ValueError):
    """A policy was built with invalid options from Python (outside a scenario file)."""


class SweepError(SimresError):
    """A sweep specification or results file is invalid."""
