"""The documented bounds on scenario input (docs/errors.md): beyond them a file is refused at once.

Each bound is far above what any bundled scenario or sweep needs and low enough that
loading, validating and showing a scenario stays fast and small; a value past one is
reported as an error naming the field, never run for hours.
"""

from __future__ import annotations

from simres import errors

MAX_FILE_BYTES = 10_000_000
"""A scenario or sweep file larger than this (10 MB) is not read."""

MAX_DEPTH = 64
"""Nesting depth of mappings and lists in a file, an override value or a Python mapping."""

MAX_ALIASES = 1_000
"""YAML aliases (``*name``) in one document."""

MAX_NODES = 100_000
"""Values in one document counted as if every alias were expanded (bounds alias bombs)."""

MAX_SERVICES = 10_000
"""Services in one scenario (and so the longest call chain)."""

MAX_CLIENTS = 1_000
"""Client populations in one scenario."""

MAX_INSTANCES = 10_000
"""Instances of one service."""

MAX_WORKERS = 100_000
"""Workers of one instance; also the largest queue capacity, bulkhead or closed-loop user count."""

MAX_CLIENT_COUNT = 100_000
"""Members of one client population."""

MAX_FAULTS = 1_000
"""Faults in one scenario."""

MAX_ARRIVALS = 1e9
"""Expected open-loop arrivals in one run (rate x count x sending time, load faults included)."""

MAX_TIMELINE_BUCKETS = 10_000_000
"""Timeline buckets in one run, (duration + drain) / timeline_step."""

MAX_MESSAGE = errors.MAX_MESSAGE
"""Characters of an error message (values in it are shortened first)."""
