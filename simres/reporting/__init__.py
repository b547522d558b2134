"""Reporting: verdicts computed from the numbers, figures, and the self-contained HTML report.

Owns :mod:`.verdicts` (sentences from replication frames), :mod:`.plots` (matplotlib
figures from frames, one palette per report), :mod:`.tables` and :mod:`.html` (the
report's building blocks), :mod:`.sources` (reading run directories, replications and
sweep results) and :mod:`.report` (the page). It reads frames and may run experiments to
get them: it may import the foundations, :mod:`simres.metrics`, :mod:`simres.scenario` and
:mod:`simres.experiments`; never :mod:`simres.cli`. Nothing here changes a result.

Nothing is imported here (matplotlib is heavy); import the submodule you need.
"""
