"""botocore's standard retry mode 2.0 deciding randomised runs: JSON runs on stdin, decisions on stdout.

Run by ``test_botocore_legacy.py`` as ``python _botocore_legacy_driver.py`` with
``PYTHONPATH=<legacy botocore dir>:<repo root>``, so ``import botocore`` finds the old
botocore (``make legacy-libs`` installs it beside the venv's current one) and the
installed botocore stays unused in this process. The old library's own objects decide:
``retries/standard.py`` ``RetryHandler`` with ``StandardRetryConditions``,
``ExponentialBackoff`` and ``RetryQuotaChecker`` over one ``quota.RetryQuota``, wired as
that version's ``register_retry_handler`` wires them when ``NEW_RETRIES_ENABLED`` is false
(its default; botocore <= 1.43.2 has no such switch and wires them the same way): no
service name and no throttling detector, so one 1 s base for every error, no
``x-amz-retry-after``, a retry costing 5 tokens or 10 after a ``ConnectTimeoutError`` or
``ReadTimeoutError``, and ``max_attempts or DEFAULT_MAX_ATTEMPTS`` (3) tries for every
service. The runs' calls, tries and ``after-call`` refunds go through
:func:`botocore_standard.run_botocore`, as for the current botocore.

Output: ``{"botocore": version, "path": botocore/__init__.py, "records": [record per run]}``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import botocore
from botocore import configprovider
from botocore.retries import quota, standard

from tests.policies.conformance.botocore_standard import run_botocore


def mode_2_0_handler(service: str, override: int, draws: list[float]) -> tuple[Any, Any, Any]:
    """(needs_retry handler, quota checker, quota) as mode 2.0's ``register_retry_handler`` builds them.

    ``service`` is unused, as in mode 2.0: neither the backoff nor the tries depend on it.
    """
    the_quota = quota.RetryQuota()
    checker = standard.RetryQuotaChecker(the_quota)
    handler = standard.RetryHandler(
        retry_policy=standard.RetryPolicy(
            retry_checker=standard.StandardRetryConditions(
                max_attempts=override or standard.DEFAULT_MAX_ATTEMPTS),
            retry_backoff=standard.ExponentialBackoff(random=lambda: draws[0])),
        retry_event_adapter=standard.RetryEventAdapter(), retry_quota=checker)
    return handler, checker, the_quota


def main() -> None:
    """Decide every run read from stdin; refuse to run with mode 2.1 switched on."""
    if getattr(configprovider, "NEW_RETRIES_ENABLED", False):
        sys.exit(f"botocore {botocore.__version__} has NEW_RETRIES_ENABLED (AWS_NEW_RETRIES_2026): mode 2.1")
    runs = json.load(sys.stdin)
    json.dump({"botocore": botocore.__version__, "path": botocore.__file__,
               "records": [run_botocore(run, mode_2_0_handler) for run in runs]}, sys.stdout)


if __name__ == "__main__":
    main()
