"""Each library's output parses, builds the library's own object, and says what it cannot express.

Round trips: a call whose policy is library X's preset exports to library X as that library's own
defaults, with nothing named as unexpressible.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from simres.export import LIBRARIES, NothingToExport, export_call
from simres.export._common import millis, seconds, timespan
from simres.scenario.services import CallPolicy


def export(library: str, **policy: Any) -> tuple[Any, list[str]]:
    """The parsed output (a namespace of the executed code for the Python libraries) and the notes."""
    e = export_call(CallPolicy(**policy), library, instance="db", header=["a header line"])
    if e.language == "python":
        assert e.text.startswith("# a header line\n")
        namespace: dict[str, Any] = {}
        exec(compile(e.text, f"<{library}>", "exec"), namespace)
        return namespace, e.unexpressed
    if e.language == "json":
        data = json.loads(e.text)
        assert data["_comment"][0] == "a header line"
        return data, e.unexpressed
    docs = list(yaml.safe_load_all(e.text))
    assert e.text.startswith("# a header line\n")
    return (docs[0] if len(docs) == 1 else docs), e.unexpressed


# ---------------------------------------------------------------------------- round trips of the presets


def test_urllib3_preset_is_urllib3s_retry() -> None:
    ns, notes = export("urllib3", retry={"preset": "urllib3"}, timeout=2.0)
    r = ns["retry"]
    assert (r.total, r.backoff_factor, r.backoff_max) == (3, 1, 120)
    assert sorted(r.status_forcelist) == [429, 500, 502, 503, 504]
    assert r.connect is None and r.read is None and r.status is None
    assert r.respect_retry_after_header and r.retry_after_max == 21600
    assert ns["timeout"].total == 2.0
    assert notes == []


def test_botocore_preset_is_standard_mode_counting_tries() -> None:
    ns, notes = export("botocore", retry={"preset": "aws_standard"})
    assert ns["config"].retries == {"total_max_attempts": 3, "mode": "standard"}
    assert notes == []
    ns, notes = export("botocore", retry={"preset": "aws_standard", "max_attempts": 5})
    assert ns["config"].retries["total_max_attempts"] == 5 and notes == []
    ns, notes = export("botocore", retry={"preset": "aws_standard_dynamodb"})  # botocore's DynamoDB form
    assert ns["config"].retries["total_max_attempts"] == 4 and notes == []


def test_botocore_adaptive_mode_is_the_rate_limiter() -> None:
    ns, notes = export("botocore", retry={"preset": "aws_adaptive"})
    assert ns["config"].retries == {"total_max_attempts": 3, "mode": "adaptive"} and notes == []
    # constants botocore does not let you set are named, not dropped
    ns, notes = export("botocore", retry={"preset": "aws_adaptive", "rate_limiter": {"beta": 0.5}})
    assert ns["config"].retries["mode"] == "adaptive"
    assert any("retry.rate_limiter.beta" in n for n in notes)


def test_tenacity_preset_is_its_documented_recipe() -> None:
    import tenacity

    ns, notes = export("tenacity", retry={"preset": "tenacity"})
    r = ns["retrying"]
    assert isinstance(r.stop, tenacity.stop_after_attempt) and r.stop.max_attempt_number == 3
    assert isinstance(r.wait, tenacity.wait_exponential)
    assert (r.wait.multiplier, r.wait.max, r.wait.exp_base, r.wait.min) == (1, 10, 2, 0)
    assert isinstance(r.retry, tenacity.retry_if_exception_type) and r.retry.exception_types is Exception
    assert notes == []


def test_pybreaker_preset_is_pybreakers_defaults() -> None:
    ns, notes = export("pybreaker", breaker={"preset": "pybreaker"})
    b = ns["breaker"]
    assert (b.fail_max, b.reset_timeout, b.success_threshold) == (5, 60, 1)
    assert notes == []


def test_resilience4j_presets_are_its_defaults() -> None:
    doc, notes = export("resilience4j", retry={"preset": "resilience4j"}, breaker={"preset": "resilience4j"},
                        bulkhead={"preset": "resilience4j"}, timeout=1.0)
    r4j = doc["resilience4j"]
    assert r4j["retry"]["instances"]["db"] == {"maxAttempts": 3, "waitDuration": "500ms"}
    cb = r4j["circuitbreaker"]["instances"]["db"]
    assert cb["slidingWindowType"] == "COUNT_BASED" and cb["slidingWindowSize"] == 100
    assert (cb["failureRateThreshold"], cb["minimumNumberOfCalls"], cb["slowCallRateThreshold"]) == (50, 100, 100)
    assert cb["waitDurationInOpenState"] == "60000ms" and cb["permittedNumberOfCallsInHalfOpenState"] == 10
    assert r4j["bulkhead"]["instances"]["db"] == {"maxConcurrentCalls": 25, "maxWaitDuration": "0ms"}
    assert r4j["timelimiter"]["instances"]["db"]["timeoutDuration"] == "1000ms"
    assert notes == []


def test_polly_presets_are_its_defaults() -> None:
    data, notes = export("polly", retry={"preset": "polly"}, breaker={"preset": "polly"},
                         bulkhead={"preset": "polly"})
    assert data["Retry"] == {"MaxRetryAttempts": 3, "BackoffType": "Constant", "Delay": "00:00:02",
                             "UseJitter": False}
    assert data["CircuitBreaker"] == {"FailureRatio": 0.1, "MinimumThroughput": 100,
                                      "SamplingDuration": "00:00:30", "BreakDuration": "00:00:05"}
    assert data["ConcurrencyLimiter"] == {"PermitLimit": 1000, "QueueLimit": 0}
    assert notes == []
    data, notes = export("polly", retry={"preset": "polly_jitter"})
    assert data["Retry"]["BackoffType"] == "Exponential" and data["Retry"]["UseJitter"] is True and notes == []
    data, notes = export("polly", hedge={"preset": "polly"})
    assert data["Hedging"] == {"MaxHedgedAttempts": 1, "Delay": "00:00:02"} and notes == []


def test_envoy_presets_are_its_defaults() -> None:
    doc, notes = export("envoy", retry={"preset": "envoy"}, bulkhead={"preset": "envoy"},
                        outlier_detection={"preset": "envoy"}, timeout=0.5, deadline=2.0)
    thresholds = doc["clusters"][0]["circuit_breakers"]["thresholds"][0]
    assert thresholds["retry_budget"] == {"budget_percent": {"value": 20.0}, "min_retry_concurrency": 3}
    assert (thresholds["max_requests"], thresholds["max_pending_requests"]) == (1024, 1024)
    od = doc["clusters"][0]["outlier_detection"]
    assert (od["consecutive_5xx"], od["interval"], od["base_ejection_time"], od["max_ejection_percent"]) == \
        (5, "10s", "30s", 10)
    assert "max_ejection_time" not in od and od["success_rate_stdev_factor"] == 1900  # Envoy's default 300 s
    assert doc["clusters"][0]["common_lb_config"] == {"healthy_panic_threshold": {"value": 50.0}}
    route = doc["routes"][0]["route"]
    assert route["timeout"] == "2s"
    assert route["retry_policy"] == {"retry_on": "5xx", "num_retries": 1, "per_try_timeout": "0.5s",
                                     "retry_back_off": {"base_interval": "0.025s", "max_interval": "0.25s"}}
    assert notes == []


def test_grpc_presets_are_the_grfc_example() -> None:
    data, notes = export("grpc", retry={"preset": "grpc"}, deadline=1.5)
    method = data["methodConfig"][0]
    assert method["name"] == [{"service": "db"}] and method["timeout"] == "1.5s"
    assert method["retryPolicy"] == {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
                                     "backoffMultiplier": 2.0,
                                     "retryableStatusCodes": ["UNAVAILABLE", "INTERNAL", "RESOURCE_EXHAUSTED"]}
    assert data["retryThrottling"] == {"maxTokens": 10.0, "tokenRatio": 0.1}
    assert notes == []
    data, notes = export("grpc", hedge={"preset": "grpc"})
    assert data["methodConfig"][0]["hedgingPolicy"]["maxAttempts"] == 4
    assert data["methodConfig"][0]["hedgingPolicy"]["hedgingDelay"] == "0.5s" and notes == []


def test_istio_from_envoys_presets_names_what_istio_lacks() -> None:
    (vs, dr), notes = export("istio", retry={"preset": "envoy"}, outlier_detection={"preset": "envoy"},
                             bulkhead={"preset": "envoy"}, timeout=0.5)
    http = vs["spec"]["http"][0]
    assert http["retries"] == {"attempts": 1, "retryOn": "5xx", "perTryTimeout": "0.5s"}
    pool = dr["spec"]["trafficPolicy"]["connectionPool"]["http"]
    assert (pool["http2MaxRequests"], pool["http1MaxPendingRequests"], pool["maxRetries"]) == (1024, 1024, 3)
    od = dr["spec"]["trafficPolicy"]["outlierDetection"]
    assert od["consecutive5xxErrors"] == 5 and od["minHealthPercent"] == 50
    assert any("budget_percent" in n for n in notes)          # Istio has no retry_budget
    assert any("enforcing_success_rate" in n for n in notes)  # Istio turns success-rate ejection off


def test_a_mapped_backoff_of_another_kind_than_the_presets_is_not_named() -> None:
    doc, notes = export("resilience4j", retry={"max_attempts": 3, "jitter": {"kind": "proportional", "fraction": 0.5},
                                               "retry_on": ["timeout", "connection"],
                                               "backoff": {"base": 0.1, "cap": 3, "multiplier": 1.5}})
    r = doc["resilience4j"]["retry"]["instances"]["db"]
    assert (r["waitDuration"], r["exponentialBackoffMultiplier"], r["exponentialMaxWaitDuration"]) == \
        ("100ms", 1.5, "3000ms")
    assert (r["enableRandomizedWait"], r["randomizedWaitFactor"]) == (True, 0.5)
    assert notes == []


def test_resilience4j_grows_the_open_state_wait_exponentially() -> None:
    doc, notes = export("resilience4j", breaker={"preset": "resilience4j", "open_for": 5, "open_for_multiplier": 2,
                                                 "open_for_max": 300, "minimum_calls": 0})
    cb = doc["resilience4j"]["circuitbreaker"]["instances"]["db"]
    assert (cb["enableExponentialBackoff"], cb["exponentialBackoffMultiplier"]) == (True, 2.0)
    assert cb["exponentialMaxWaitDurationInOpenState"] == "300000ms" and cb["minimumNumberOfCalls"] == 1
    assert notes == ["breaker.minimum_calls: 0: Resilience4j needs at least 1; written as 1"]


def test_envoy_hedges_on_a_per_try_timeout_of_the_hedging_delay() -> None:
    doc, notes = export("envoy", timeout=1.0, hedge={"max_attempts": 3, "delay": 0.05,
                                                     "non_fatal": ["connection", "error", "rejected", "shed"]})
    route = doc["routes"][0]["route"]
    assert route["hedge_policy"] == {"hedge_on_per_try_timeout": True}
    assert route["retry_policy"]["per_try_timeout"] == "0.05s" and route["retry_policy"]["num_retries"] == 2
    assert route["timeout"] == "1.1s"  # the last hedge, sent at 0.1 s, times out at 1.1 s
    assert doc["clusters"][0]["circuit_breakers"]["thresholds"][0]["max_retries"] == 4294967295
    assert {n.split(":")[0] for n in notes} == {"hedge.hedge_on_failure", "timeout", "hedge.non_fatal"}
    _, notes = export("envoy", hedge={"delay": "p95"})
    assert any(n.startswith("hedge:") for n in notes)


# ---------------------------------------------------------------------------- counting and units


def test_each_library_counts_tries_its_own_way() -> None:
    retry = {"max_attempts": 4, "backoff": {"kind": "exponential", "base": 0.1, "cap": 1.0}, "jitter": "none"}
    assert export("urllib3", retry=retry)[0]["retry"].total == 3                        # retries
    assert export("botocore", retry=retry)[0]["config"].retries["total_max_attempts"] == 4  # tries
    assert export("tenacity", retry=retry)[0]["retrying"].stop.max_attempt_number == 4  # tries
    assert export("resilience4j", retry=retry)[0]["resilience4j"]["retry"]["instances"]["db"]["maxAttempts"] == 4
    assert export("polly", retry=retry)[0]["Retry"]["MaxRetryAttempts"] == 3             # retries
    assert export("envoy", retry=retry)[0]["routes"][0]["route"]["retry_policy"]["num_retries"] == 3
    assert export("istio", retry=retry)[0]["spec"]["http"][0]["retries"]["attempts"] == 3
    assert export("grpc", retry=retry)[0]["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 4


def test_grpc_caps_max_attempts_at_five_and_says_so() -> None:
    data, notes = export("grpc", retry={"preset": "grpc", "max_attempts": 7})
    assert data["methodConfig"][0]["retryPolicy"]["maxAttempts"] == 5
    assert any("caps maxAttempts at 5" in n for n in notes)


def test_durations_in_each_librarys_units() -> None:
    assert (seconds(0.1), seconds(2), seconds(0.025)) == ("0.1s", "2s", "0.025s")
    assert (millis(0.5), millis(60), millis(0.0005)) == ("500ms", "60000ms", "PT0.0005S")
    assert (timespan(2), timespan(0.05), timespan(90000), timespan(-0.001)) == \
        ("00:00:02", "00:00:00.0500000", "1.01:00:00", "-00:00:00.0010000")


def test_tenacity_jitter_and_deadline_build_the_real_objects() -> None:
    import tenacity

    ns, notes = export("tenacity", deadline=3.0, retry={"max_attempts": 5, "jitter": "full",
                                                        "honor_retry_after": False,
                                                        "retry_on": ["timeout", "connection"],
                                                        "backoff": {"base": 0.2, "cap": 2.0, "floor": 0.05}})
    r = ns["retrying"]
    assert isinstance(r.wait, tenacity.wait_random_exponential)
    assert (r.wait.multiplier, r.wait.max, r.wait.min) == (0.2, 2.0, 0.05)
    assert isinstance(r.stop, tenacity.stop_any)
    assert r.retry.exception_types == (TimeoutError, ConnectionError)
    assert [n.split(":")[0] for n in notes] == ["deadline"]  # a running try is not cut short


def test_urllib3_maps_outcomes_to_its_counters() -> None:
    ns, notes = export("urllib3", retry={"max_attempts": 3, "retry_on": ["connection"], "jitter": "none",
                                         "honor_retry_after": False,
                                         "backoff": {"base": 0.5, "zero_first": True}})
    r = ns["retry"]
    assert (r.total, r.connect, r.read) == (2, None, 0) and not r.status_forcelist
    assert r.backoff_factor == 0.5 and r.respect_retry_after_header is False
    assert notes == []


# ---------------------------------------------------------------------------- what cannot be expressed


def test_settings_a_library_lacks_are_named_never_dropped() -> None:
    _, notes = export("urllib3", retry={"preset": "urllib3", "budget": {"preset": "sre"}})
    assert any(n.startswith("retry.budget:") and "no equivalent" in n for n in notes)
    _, notes = export("tenacity", retry={"preset": "tenacity"}, breaker={"preset": "pybreaker"})
    assert any(n.startswith("breaker:") for n in notes)
    _, notes = export("pybreaker", breaker={"preset": "resilience4j"})
    assert any("breaker.trip: failure_rate" in n for n in notes)
    _, notes = export("botocore", retry={"preset": "aws_standard", "backoff": {"base": 0.2}})
    assert any(n.startswith("retry.backoff.base: 0.2") for n in notes)
    _, notes = export("botocore", retry={"preset": "aws_standard", "budget": None})  # botocore always has its quota
    assert [n.split(": ")[:2] for n in notes] == [["retry.budget", "null"]]
    _, notes = export("resilience4j", retry={"preset": "resilience4j", "jitter": "full"})
    assert any(n.startswith("retry.jitter: full") for n in notes)
    _, notes = export("envoy", retry={"preset": "envoy"}, limit={"kind": "aimd"})
    assert any(n.startswith("limit:") for n in notes)


@pytest.mark.parametrize("library", [lib for lib in LIBRARIES if lib != "pybreaker"])
def test_a_retry_feature_no_library_has_is_named_by_every_library(library: str) -> None:
    _, notes = export(library, retry={"max_attempts": 3, "first_retry_index": 2})
    assert any("first_retry_index" in n for n in notes), notes


@pytest.mark.parametrize(("library", "policy"), [("pybreaker", {"retry": {"preset": "urllib3"}}),
                                                 ("tenacity", {"timeout": 1.0}),
                                                 ("urllib3", {"breaker": {"preset": "pybreaker"}}),
                                                 ("grpc", {"timeout": 1.0})])
def test_a_call_with_nothing_in_the_librarys_domain_is_an_error(library: str, policy: dict[str, Any]) -> None:
    with pytest.raises(NothingToExport):
        export_call(CallPolicy(**policy), library)


# ---------------------------------------------------------------------------- the waits themselves


def simres_waits(retry: dict[str, Any]) -> list[float]:
    """The waits simres computes between the tries of one call that keeps failing (no jitter: no draws)."""
    import numpy as np

    from simres.policies import RetryConfig

    call = RetryConfig(**retry).new_call()
    waits = []
    rng = np.random.default_rng(0)
    while True:
        call.on_try()
        wait = call.next_delay("error", rng)
        if wait is None:
            return waits
        waits.append(wait)


@pytest.mark.parametrize("retry", [{"preset": "urllib3"}, {"preset": "urllib3", "backoff": {"base": 0.3, "cap": 2}},
                                   {"preset": "urllib3", "max_attempts": 8}])
def test_urllib3_waits_are_simres_waits(retry: dict[str, Any]) -> None:
    from urllib3.util.retry import RequestHistory

    r = export("urllib3", retry=retry)[0]["retry"]
    expected = simres_waits(retry)
    assert len(expected) == r.total
    got = [r.new(history=(RequestHistory("GET", "/", None, 503, None),) * k).get_backoff_time()
           for k in range(1, r.total + 1)]
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("retry", [{"preset": "tenacity"}, {"preset": "tenacity", "backoff": {"floor": 2.5}},
                                   {"max_attempts": 5, "jitter": "none", "backoff": {"kind": "linear", "base": 0.2}},
                                   {"max_attempts": 4, "jitter": "none", "backoff": {"kind": "constant", "base": 0.7}},
                                   {"max_attempts": 6, "jitter": "none",
                                    "backoff": {"base": 0.1, "multiplier": 3, "cap": 2}}])
def test_tenacity_waits_are_simres_waits(retry: dict[str, Any]) -> None:
    import tenacity

    r = export("tenacity", retry=retry)[0]["retrying"]
    expected = simres_waits(retry)
    state = tenacity.RetryCallState(r, fn=None, args=(), kwargs={})
    got = []
    for attempt in range(1, r.stop.max_attempt_number):
        state.attempt_number = attempt
        got.append(r.wait(state))
    assert got == pytest.approx(expected)


def _bundled_calls() -> list[tuple[str, str | None]]:
    from pathlib import Path

    from simres.scenario.loading import load_scenario

    root = Path(__file__).resolve().parents[2] / "scenarios"
    out: list[tuple[str, str | None]] = []
    for path in sorted(root.glob("*.yaml")):
        sc = load_scenario(path.stem)
        out += [(path.stem, None), *((path.stem, v) for v in sc.variants)]
    return out


@pytest.mark.parametrize(("name", "variant"), _bundled_calls())
def test_every_bundled_call_exports_to_every_library_or_says_why_not(name: str, variant: str | None) -> None:
    from simres.export import call_policies, has_policy
    from simres.scenario.loading import load_scenario

    sc = load_scenario(name, variant=variant)
    for key, (target, call) in call_policies(sc).items():
        if not has_policy(call):
            continue
        for library in LIBRARIES:
            try:
                e = export_call(call, library, instance=target)
            except NothingToExport:
                continue
            if e.language == "python":
                exec(compile(e.text, f"<{name} {key} {library}>", "exec"), {})
            elif e.language == "json":
                json.loads(e.text)
            else:
                assert list(yaml.safe_load_all(e.text)), (name, key, library)
            assert all(n.split(":", 1)[0] for n in e.unexpressed)


def test_an_order_with_the_breaker_outside_the_retry_is_written_where_the_library_can_say_it() -> None:
    """Resilience4j: Spring Boot aspect orders (lower is outer; the defaults are Retry
    LOWEST_PRECEDENCE - 5, CircuitBreaker - 4, Bulkhead - 1); Polly: the pipeline's order of
    strategies; a library with a fixed order names ``order`` instead of dropping it."""
    stack = {"retry": {"preset": "resilience4j"}, "breaker": {"preset": "resilience4j"},
             "bulkhead": {"max_concurrent": 4}, "order": ["breaker", "retry", "bulkhead"]}
    doc, notes = export("resilience4j", **stack)
    r4j = doc["resilience4j"]
    lowest = 2**31 - 1
    assert r4j["circuitbreaker"]["circuitBreakerAspectOrder"] == lowest - 5
    assert r4j["retry"]["retryAspectOrder"] == lowest - 4
    assert r4j["bulkhead"]["bulkheadAspectOrder"] == lowest - 1  # still inside the retry (and the TimeLimiter)
    assert not [n for n in notes if n.startswith("order")]
    outer = export("resilience4j", **{**stack, "order": ["breaker", "bulkhead", "retry"]})[0]["resilience4j"]
    assert outer["bulkhead"]["bulkheadAspectOrder"] == lowest - 4 and outer["retry"]["retryAspectOrder"] == lowest - 3
    default = export("resilience4j", **{k: v for k, v in stack.items() if k != "order"})[0]["resilience4j"]
    assert "retryAspectOrder" not in default["retry"]  # the default order writes nothing
    polly, notes = export("polly", **stack)
    assert [k for k in polly if k != "_comment"][:3] == ["CircuitBreaker", "Retry", "ConcurrencyLimiter"]
    assert not [n for n in notes if n.startswith("order")]
    _, notes = export("envoy", retry={"preset": "envoy"}, breaker={"preset": "resilience4j"},
                      order=["breaker", "retry"])
    assert any(n.startswith("order: [breaker, retry]") for n in notes), notes


def test_connect_and_read_timeouts_go_where_each_library_has_them() -> None:
    """urllib3 Timeout(connect=, read=), botocore connect_timeout / read_timeout, Envoy's cluster
    connect_timeout, Istio's connectionPool.tcp.connectTimeout; a library without them names them."""
    ns, notes = export("urllib3", retry={"preset": "urllib3"}, connect_timeout=3.0, read_timeout=10.0)
    t = ns["timeout"]
    assert t.connect_timeout == 3.0 and t.read_timeout == 10.0 and not notes
    ns, notes = export("botocore", retry={"preset": "aws_standard"}, connect_timeout=2.0, timeout=5.0)
    cfg = ns["config"]
    assert cfg.connect_timeout == 2.0 and cfg.read_timeout == 5.0
    assert any("read_timeout written as the per-try timeout" in n for n in notes), notes
    doc, notes = export("envoy", retry={"preset": "envoy"}, connect_timeout=0.25, read_timeout=1.0)
    cluster = doc[0] if isinstance(doc, list) else doc
    assert "connect_timeout: 0.25s" in yaml.safe_dump(cluster)
    assert any(n.startswith("read_timeout: 1") for n in notes), notes
    docs, _ = export("istio", retry={"preset": "envoy"}, connect_timeout=0.25)
    rule = next(d for d in docs if d["kind"] == "DestinationRule")
    assert rule["spec"]["trafficPolicy"]["connectionPool"]["tcp"]["connectTimeout"] == "0.25s"
    _, notes = export("resilience4j", retry={"preset": "resilience4j"}, connect_timeout=1.0)
    assert any(n.startswith("connect_timeout: 1") for n in notes), notes


def test_the_envoy_hedge_preset_round_trips_to_envoys_retry_back_off() -> None:
    doc, notes = export("envoy", hedge={"preset": "envoy"})
    text = yaml.safe_dump(doc)
    assert "hedge_on_per_try_timeout: true" in text and "per_try_timeout: 0.5s" in text
    assert "base_interval: 0.025s" in text and "max_interval: 0.25s" in text
    assert not [n for n in notes if n.startswith(("hedge.backoff", "hedge.jitter", "hedge.hedge_on_failure"))], notes
