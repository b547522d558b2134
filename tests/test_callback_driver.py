"""The callback-driven call (driver.Call) and handler (service.Handling) against the processes.

A logical call with policies runs on callbacks unless its call site has a bulkhead, and a
sequential handler runs on callbacks when all its call sites do; the generator versions
(``CallSite.call`` in a process, ``Instance._handle``) remain for the other cases. The two
must make the same decisions, draws and records in the same order: here every frame of
runs that exercise timeouts, retries, budgets, breakers, throttling, fallbacks, crashes
and cancellation is compared between the two engines, value for value.
"""

from __future__ import annotations

import pandas as pd
import pytest

from simres.experiments.runs import FRAMES, run
from simres.model import driver, service

CASES = [
    ("baseline", None, {"duration": 12}),
    ("retry-storm-metastable", None, {}),
    ("dependency-outage-breaker", None, {}),
    ("brooker-retries-independent-failures", "token-bucket", {}),
    ("brooker-retries-independent-failures", "breaker", {}),
    ("chaos-error-injection", "retries-breaker", {}),
    ("metastability-trigger-size", None, {}),
    ("thundering-herd-after-partition", None, {}),
    ("congestive-collapse", None, {}),
    ("hedging-tail-latency", "hedge-p95", {"duration": 10}),
    ("hedging-tail-latency", "hedge-no-cancel", {"duration": 10}),
]

THROTTLED = {
    "name": "throttled-deadline",
    "duration": 20,
    "services": {
        "api": {"workers": 4, "service_time": {"kind": "exponential", "mean": 0.02}, "on_caller_gone": "cancel",
                "handler": {"calls": [
                    {"to": "db", "timeout": 0.05, "retry": {"max_attempts": 3, "jitter": "full"}},
                    {"to": "cache", "critical": False, "timeout": 0.02,
                     "fallback": {"latency": {"kind": "exponential", "mean": 0.005}}}]}},
        "db": {"workers": 2, "service_time": {"kind": "exponential", "mean": 0.03}, "error_rate": 0.1},
        "cache": {"workers": 1, "service_time": {"kind": "exponential", "mean": 0.02}},
    },
    "clients": {"web": {"target": "api", "arrival": {"kind": "poisson", "rate": 120}, "timeout": 0.2,
                        "deadline": 0.5, "retry": {"max_attempts": 4, "jitter": "full",
                                                   "budget": {"kind": "token_bucket"}},
                        "throttle": {}}},
    "faults": [{"kind": "crash", "service": "db", "at": 8, "duration": 3}],
}

RATE_LIMITED = {
    "name": "rate-limited",
    "duration": 15,
    "services": {"api": {"workers": 2, "service_time": {"kind": "exponential", "mean": 0.01},
                         "queue": {"capacity": 10}}},
    "clients": {"sdk": {"target": "api", "count": 2, "arrival": {"kind": "poisson", "rate": 150},
                        "timeout": 1.0, "deadline": 3.0, "retry": {"preset": "aws_adaptive"}}},
}
"""botocore adaptive mode in overload: tries wait for tokens, some past their deadline."""


def _without_callbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the process-driven engine: no call site may run on callbacks."""
    init = driver.CallSite.__init__

    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.callbacks = False

    monkeypatch.setattr(driver.CallSite, "__init__", patched)
    add_call = service.Instance.add_call

    def add(self, site, critical, fallback):
        add_call(self, site, critical, fallback)
        self.callback_handler = False

    monkeypatch.setattr(service.Instance, "add_call", add)
    monkeypatch.setattr(driver, "Call", None)  # any use of the callback engine would now fail
    monkeypatch.setattr(service, "Handling", None)


def _frames(scenario, variant, overrides):
    res = run(scenario, seed=3, variant=variant, overrides=overrides or None)
    return {f: getattr(res, f) for f in FRAMES}


@pytest.mark.parametrize(("scenario", "variant", "overrides"),
                         [*CASES, (THROTTLED, None, {}), (RATE_LIMITED, None, {})],
                         ids=[*(c[0] + (f":{c[1]}" if c[1] else "") for c in CASES), "throttled-deadline",
                              "rate-limited"])
def test_callbacks_match_processes(monkeypatch, scenario, variant, overrides):
    fast = _frames(scenario, variant, overrides)
    with monkeypatch.context() as m:
        _without_callbacks(m)
        slow = _frames(scenario, variant, overrides)
    assert len(fast["attempts"]) > 0
    for name in FRAMES:
        pd.testing.assert_frame_equal(fast[name], slow[name], check_exact=True, obj=name)
