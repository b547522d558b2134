"""The policy objects of :mod:`simres.policies` around real calls, on the wall clock.

Owns :class:`Resilient` (:mod:`.resilient`: the sync and asyncio entry points, on the
shared decisions of :mod:`._stack`), the errors it raises (:mod:`.errors`) and the
classification of real results into outcomes (:mod:`.classify`). It is a second driver of
the same policy objects the simulation drives, so it may import only the foundations
(``errors``, ``outcomes``, ``clock``) and :mod:`simres.policies`; never SimPy, the model,
experiments, reporting or the CLI.
"""

from simres.realtime.classify import (
    Classification,
    Classifier,
    aws_classify,
    aws_classify_2_0,
    default_classify,
    http_classify,
)
from simres.realtime.errors import (
    AttemptTimeout,
    BreakerOpenError,
    BulkheadFullError,
    ConcurrencyLimitError,
    DeadlineExceeded,
    ThrottledError,
)
from simres.realtime.resilient import Resilient

__all__ = [
    "AttemptTimeout", "BreakerOpenError", "BulkheadFullError", "Classification", "Classifier",
    "ConcurrencyLimitError", "DeadlineExceeded", "Resilient", "ThrottledError", "aws_classify", "aws_classify_2_0",
    "default_classify", "http_classify",
]
