"""The exception hierarchy: one root, and errors that name the field and what was expected."""

from __future__ import annotations


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
        self.detail = message
        parts = [p for p in (source, path) if p]
        super().__init__(": ".join([*parts, message]))


class PolicyConfigError(SimresError, ValueError):
    """A policy was built with invalid options from Python (outside a scenario file)."""


class SweepError(SimresError):
    """A sweep specification or results file is invalid."""
