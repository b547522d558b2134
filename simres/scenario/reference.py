"""Generate ``docs/scenario-reference.md`` from the pydantic schema itself.

The reference cannot drift from the code: a test regenerates it and compares. Run
``python -m simres.scenario.reference > docs/scenario-reference.md`` after changing the schema.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from simres.scenario.schema import Scenario

_INTRO = """# Scenario reference

Generated from the schema by `python -m simres.scenario.reference`; do not edit by hand.

A scenario is a YAML mapping validated by these models. Every model rejects unknown keys,
so a typo is an error naming the field. `simres show SCENARIO` prints a scenario with every
default filled in. Durations and latencies are in seconds, rates in requests per second.

Start from a commented template (`simres init three-tier`, `fan-out` or `batch-herd`); for
completion and checking in an editor, point its YAML support at `simres schema --out
simres.schema.json` (the JSON Schema of these same models).

Any field can be overridden from the CLI or Python with a dotted path:
`--set services.db.workers=4`, `--set clients.web.retry.max_attempts=5`,
`--set faults.0.duration=30` (list items by index),
`--set services.api.handler.calls.db.timeout=0.2` (a downstream call by its name, or by
index: `calls.0.timeout`). Variants and sweep axes take the same paths.

**One order everywhere.** A run resolves its scenario as: the scenario file, then the
selected variant's overrides, then the `--set` flags (or `overrides=` in Python), so the
explicit flag wins. `run`, `show`, `compare`, `sweep`, `report` and the Python API
(`simres.run`, `simres.replicate`, `simres.compare`, `simres.sweep`,
`simres.build_report`) all apply it; a sweep applies its axes last, after `--set`.
`simres show SCENARIO --variant V --set K=X` prints exactly what `simres run` with the same
arguments simulates.

A *distribution* (`Dist`) is `{kind: ..., ...}` or a bare number (a constant); the kinds
are [Exponential](#exponential), [Constant](#constant), [Uniform](#uniform),
[Normal](#normal) (truncated or folded at 0), [LogNormal](#lognormal), [Gamma](#gamma) (`gamma` or
`erlang`), [Empirical](#empirical) (inline values or a CSV/Parquet column), [Histogram](#histogram)
(Prometheus-style cumulative buckets) and [Mixture](#mixture).
"""


_SEMANTICS = """
## Semantics that surprise

- **Workers are held while a request waits on its downstream calls.** An instance's worker
  does the request's own work (`service_time`), then makes the handler's calls (with
  their retries and backoff waits) and answers any fallback, all while it stays busy. A
  slow dependency therefore fills its callers' workers and queues: the holding time, not
  the service time, sets a service's capacity (`simres check` estimates it per service).
- **A call's policies are per calling instance by default.** Every instance of a calling
  service (and every member of a client population, `count`) gets its own call site for
  each call of its handler, with its own circuit breaker, retry budget, bulkhead and (for
  clients) adaptive throttle: with `scope: per_client` (the default), 3 api instances with
  `bulkhead: {max_concurrent: 4}` let 12 calls reach the dependency at once, and one
  instance's breaker can be open while another's is closed. `scope: shared` makes one
  object per caller and target (`api -> db`), shared by every instance or member of the
  caller and by every call of that handler to that target (the first call's settings are
  used). Shedding, queues and workers belong to each instance of the called service.
- **One override order** (above): scenario, variant, `--set`, then a sweep's axes. Each
  path is resolved against the scenario as the previous steps left it, so a variant that
  replaces a handler's `calls` changes what a later `calls.db` path names.
- **Calls by name.** `services.api.handler.calls.db.timeout` names the call whose `name:`
  (default: its target) is `db`; `calls.0.timeout` still names the first call. Naming
  calls keeps variants on their target when calls are reordered. A handler that calls
  one target twice must give the calls distinct `name:` fields to address them by name;
  otherwise the name is ambiguous and the error lists the candidates.
- **Mixed handlers.** `steps: [auth, [payments, inventory], recommendations]` runs `auth`,
  then `payments` and `inventory` at once (the step ends when the slower ends), then
  `recommendations`. A failed critical call fails the request: the other calls of its
  step still finish (nothing is cancelled), later steps are not made. A failed
  non-critical call degrades the response; its fallback latency is waited after the
  calls, as in sequential and parallel handlers. With `on_caller_gone: cancel`, no new
  step starts once the caller has given up.
"""

EXAMPLES: dict[str, str] = {
    "LimitConfig": "limit: {kind: gradient2, max_limit: 100}\n",
    "OutlierConfig": "outlier_detection: {preset: envoy, max_ejection_percent: 20}\n",
    "AutoscaleConfig": """\
autoscale: {kind: target_tracking, metric: utilization, target: 0.6, sync_period: 15, min: 2, max: 10,
            startup_delay: 30, cold_start: {factor: 2, duration: 30}}
""",
    "ColdStartConfig": "cold_start: {factor: 2, duration: 30}  # in autoscale:\n",
    "ScaleStep": "steps: [{lower: 0, change: -1}, {lower: 10, change: 0}, {lower: 50, change: 2}]  # kind: step\n",
    "LimitWindowConfig": "window: {min_time: 0.5, sample: percentile, percentile: 0.9}\n",
    "EnvoyGradientConfig": "envoy: {interval: 30, concurrency_update_interval: 0.05}  # kind: envoy_gradient\n",
    "CodelConfig": "codel: {target: 0.005, interval: 0.1}\n",
    "AdaptiveRateConfig": "rate_limiter: {scope: per_client}  # in retry:, as the aws_adaptive preset sets it\n",
    "HedgeConfig": "hedge: {preset: grpc, max_attempts: 3, delay: 0.05}\n",
    "SagaConfig": """\
saga:  # in clients.C, with workflow: saga
  steps:
    - {name: reserve, to: inventory, timeout: 0.5, compensate: {to: inventory, timeout: 0.5}}
    - name: charge
      to: payment
      retry: {max_attempts: 3}
      compensate: {to: payment, retry: {max_attempts: 6, backoff: {kind: exponential, base: 0.1, cap: 1}}}
    - {name: ship, to: shipping}
""",
    "SagaStep": "steps: [{name: charge, to: payment, timeout: 0.5, compensate: {to: payment}}]  # in saga:\n",
    "SagaCompensation": "compensate: {to: payment, timeout: 0.5, retry: {max_attempts: 6}}  # in a saga step\n",
    "Scenario": """\
name: checkout
duration: 60
warmup: 5
slo: 0.3
services:
  api:
    workers: 16
    service_time: {kind: lognormal, median: 0.02, p99: 0.2}
    handler:
      calls:
        - {to: db, timeout: 0.3, retry: {max_attempts: 3, jitter: full}}
  db:
    workers: 4
clients:
  web: {target: api, arrival: {kind: poisson, rate: 200}, timeout: 1.0}
faults:
  - {kind: slowdown, service: db, at: 20, duration: 10, factor: 5}
variants:
  no-retry: {services.api.handler.calls.db.retry: null}
  budget: {services.api.handler.calls.db.retry.budget: {kind: token_bucket}}
""",
    "NetworkConfig": """\
network:
  default: {latency: {kind: exponential, mean: 0.0005}}
  links:
    - {from: api, to: db, latency: 0.002}
""",
    "ServiceConfig": """\
# services.api
api:
  instances: 3
  workers: 8
  queue: {capacity: 50}
  service_time: {kind: lognormal, median: 0.01, p99: 0.08}
  load_balancer: least_outstanding
  on_caller_gone: cancel
  handler:
    calls: [{to: db, timeout: 0.2}]
""",
    "ClientConfig": """\
# clients.web
web:
  target: api
  count: 10
  arrival: {kind: poisson, rate: 20}
  timeout: 1.0
  retry: {max_attempts: 3, backoff: {kind: exponential, base: 0.05, cap: 1.0}, jitter: full}
  priority: high
""",
    "PartitionFault": """\
faults:
  - {kind: partition, at: 20, duration: 5, from: [api], to: [db]}
""",
    "LatencyFault": """\
faults:
  - {kind: latency, at: 20, duration: 10, from: [api], to: [db], add: 0.05, one_way: true}
""",
    "SlowdownFault": """\
faults:
  - {kind: slowdown, service: db, at: 20, duration: 10, factor: 5}
""",
    "CapacityFault": """\
faults:
  - {kind: capacity, service: api, at: 30, duration: 15, remove: 4}
""",
    "CrashFault": """\
faults:
  - {kind: crash, service: db, instance: 0, at: 20, duration: 8, mode: blackhole, cold_start: {factor: 3}}
""",
    "ErrorsFault": """\
faults:
  - {kind: errors, service: payments, at: 10, duration: 5, probability: 0.5}
""",
    "LoadFault": """\
faults:
  - {name: spike, kind: load, client: web, at: 20, duration: 4, factor: 3}
""",
    "ChaosFault": """\
faults:
  - {kind: chaos, service: api, at: 10, duration: 20, rate: 0.05, mix: {timeout: 1, error: 2, connection: 0}}
""",
    "CacheFlushFault": """\
faults:
  - {name: flush, kind: cache_flush, service: api, call: db, at: 20}
""",
    "CacheCrashFault": """\
faults:
  - {kind: cache_crash, service: api, at: 20, duration: 10, store: false}
""",
    "Objective": """\
objective:
  primary: success_rate
  then: [latency_all_p99]
  subject_to: ["retry_amplification <= 1.5"]
""",
    "LinkDefaults": """\
# network.default
default: {latency: {kind: exponential, mean: 0.0005}, loss: 0.001}
""",
    "LinkConfig": """\
# network.links
links:
  - {from: web, to: api, latency: {kind: uniform, low: 0.01, high: 0.03}}
  - {from: api, to: db/0, latency: 0.001, symmetric: false}
""",
    "QueueConfig": """\
# services.api.queue: at most workers + 20 requests in the system, newest served first
queue: {discipline: lifo, capacity: 20}
""",
    "Exponential": """\
service_time: {kind: exponential, mean: 0.01}
""",
    "Constant": """\
service_time: {kind: constant, value: 0.005}   # or just: service_time: 0.005
""",
    "Uniform": """\
think_time: {kind: uniform, low: 0.5, high: 1.5}
""",
    "Normal": """\
service_time: {kind: normal, mean: 0.05, sd: 0.01}
""",
    "LogNormal": """\
service_time: {kind: lognormal, median: 0.02, p99: 0.2}
""",
    "Gamma": """\
service_time: {kind: erlang, shape: 4, mean: 0.02}
""",
    "Empirical": """\
# or from a measurement file, relative to the scenario file (see docs/scenarios.md):
#   service_time: {kind: empirical, file: data/latencies.csv, column: latency_ms, unit: ms}
service_time: {kind: empirical, values: [0.011, 0.013, 0.012, 0.05, 0.014]}
""",
    "Histogram": """\
# a Prometheus histogram's cumulative _bucket counts (le in seconds); nothing above 0.25 s
service_time:
  kind: histogram
  buckets:
    - {le: 0.005, count: 120}
    - {le: 0.01, count: 480}
    - {le: 0.025, count: 910}
    - {le: 0.1, count: 990}
    - {le: 0.25, count: 1000}
    - {le: +Inf, count: 1000}
""",
    "Bucket": """\
# service_time.buckets of a histogram: cumulative counts, the last bucket may be +Inf
buckets: [{le: 0.01, count: 40}, {le: 0.1, count: 95}, {le: +Inf, count: 100}]
""",
    "Mixture": """\
# 95 % fast hits, 5 % slow misses
service_time:
  kind: mixture
  components:
    - {weight: 0.95, dist: 0.002}
    - {weight: 0.05, dist: {kind: exponential, mean: 0.05}}
""",
    "HandlerConfig": """\
# services.checkout.handler: auth, then payments and inventory at once, then recommendations
handler:
  calls:
    - {to: auth, timeout: 0.1}
    - {to: payments, timeout: 0.5, retry: {max_attempts: 2}}
    - {to: inventory, timeout: 0.3}
    - {to: recommendations, timeout: 0.1, critical: false}
  steps: [auth, [payments, inventory], recommendations]
""",
    "SheddingConfig": """\
# services.api.shedding: shed low-priority work first
shedding: {signal: utilization, thresholds: {low: 0.7, medium: 0.85}}
""",
    "RetryConfig": """\
# clients.web.retry, or services.api.handler.calls.db.retry
retry:
  max_attempts: 4
  retry_on: [timeout, connection]
  backoff: {kind: exponential, base: 0.05, cap: 2.0}
  jitter: full
  budget: {kind: token_bucket, capacity: 50, cost: 5}
""",
    "BreakerConfig": """\
# services.api.handler.calls.db.breaker (one per api instance unless scope: shared)
breaker: {trip: failure_rate, threshold: 0.5, window: {kind: time, size: 10}, minimum_calls: 20, open_for: 5}
""",
    "BulkheadConfig": """\
# services.api.handler.calls.recommendations.bulkhead (per api instance unless scope: shared)
bulkhead: {kind: semaphore, max_concurrent: 4, max_wait: 0.01}
""",
    "PoissonArrivals": """\
arrival: {kind: poisson, rate: 200}
""",
    "ConstantArrivals": """\
arrival: {kind: constant, rate: 10}
""",
    "ProfileArrivals": """\
# a ramp from 50 to 400 requests per second over 30 s, then back down; or from a time
# series file (see docs/scenarios.md):
#   arrival: {kind: profile, file: data/rates.csv, time: t, rate: rps, shape: linear}
arrival:
  kind: profile
  shape: linear
  points: [{at: 0, rate: 50}, {at: 30, rate: 400}, {at: 60, rate: 50}]
""",
    "ClosedArrivals": """\
arrival: {kind: closed, users: 50, think_time: {kind: exponential, mean: 1.0}}
""",
    "ThrottleConfig": """\
# clients.web.throttle
throttle: {mode: sre, k: 2.0, window: 60}
""",
    "ColdStart": """\
# faults.N.cold_start of a crash fault
cold_start: {factor: 3, duration: 20}
""",
    "ChaosMix": """\
# faults.N.mix of a chaos fault: only timeouts and errors, twice as many errors
mix: {timeout: 1, error: 2, connection: 0}
""",
    "Component": """\
# service_time.components of a mixture
components:
  - {weight: 0.9, dist: 0.01}
  - {weight: 0.1, dist: {kind: lognormal, median: 0.2, p99: 1.0}}
""",
    "DownstreamCall": """\
# services.api.handler.calls: db twice (named, so `calls.read.timeout` addresses the first)
calls:
  - {to: db, name: read, timeout: 0.1, retry: {max_attempts: 3}}
  - {to: db, name: write, timeout: 0.5, deadline: 1.0}
  - {to: cache, critical: false, fallback: {latency: 0.002}}
""",
    "BackoffConfig": """\
# retry.backoff: 50 ms, 100 ms, 200 ms, ... up to 2 s
backoff: {kind: exponential, base: 0.05, multiplier: 2, cap: 2.0}
""",
    "JitterConfig": """\
jitter: {kind: proportional, fraction: 0.2}   # or a bare kind: jitter: full
""",
    "TokenBucketBudgetConfig": """\
# retry.budget: Brooker's bucket, 0.1 token per new call, a retry costs 1
budget: {kind: token_bucket, capacity: 10, cost: 1, timeout_cost: 1, refund: 0, refill_per_request: 0.1}
""",
    "GrpcBudgetConfig": """\
budget: {kind: grpc, max_tokens: 10, token_ratio: 0.1}
""",
    "RatioBudgetConfig": """\
# retry.budget: retries at most 20 % of requests plus 10 per second, over 10 s
budget: {kind: ratio, percent: 0.2, min_per_second: 10, ttl: 10}
""",
    "ConcurrencyBudgetConfig": """\
budget: {kind: concurrency, budget_percent: 0.2, min_retry_concurrency: 3}
""",
    "FailureRatioBudgetConfig": """\
budget: {kind: failure_ratio, threshold: 0.1, window: 10}
""",
    "WindowConfig": """\
# breaker.window: the last 10 s in 10 one-second buckets
window: {kind: rolling, size: 10, buckets: 10}
""",
    "RatePoint": """\
# arrival.points of a profile
points: [{at: 0, rate: 100}, {at: 20, rate: 300}]
""",
    "CacheConfig": """\
# services.api.handler.calls.N.cache: Zipf keys, 60 s TTL, 10,000 entries, singleflight
cache:
  keys: {kind: zipf, n: 100000, s: 1.0}
  ttl: 60
  capacity: 10000
  hit_latency: 0.0005
  coalesce: true
  stale_while_revalidate: 5
""",
    "ZipfKeys": """\
# services.api.handler.calls.N.cache.keys
keys: {kind: zipf, n: 100000, s: 1.2}
""",
    "ReplicaConfig": """\
# services.accounts-replica.replica: a read replica of accounts that refuses reads it cannot vouch for
replica:
  of: accounts
  delay: {kind: exponential, mean: 0.02}
  apply_time: 0.001
  heartbeat: 0.25
  mode: consistent
  max_staleness: 1.0
""",
    "FallbackConfig": """\
# services.api.handler.calls.N.fallback of a non-critical call
fallback: {latency: {kind: exponential, mean: 0.002}}
""",
}
"""A short YAML example per section, keyed by model name. Each is a mapping of one key (where it
goes; a leading comment names the full path) to the model's data or a list of them, except
``Scenario``, a whole file. ``tests/test_reference_examples.py`` validates every one."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names = [_type_name(a) for a in args if a is not type(None)]
        if len(names) > 3 and all(n.startswith("[") for n in names):
            names = ["Dist" if "Exponential" in " ".join(names) else " \\| ".join(names)]
        out = " \\| ".join(dict.fromkeys(names))
        return out + (" \\| null" if type(None) in args else "")
    if origin is list:
        inner = _type_name(args[0])
        return f"list of ({inner})" if " \\| " in inner and not inner.endswith("null") else f"list of {inner}"
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return getattr(tp, "__name__", str(tp))


def _models_in(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out: list[type[BaseModel]] = []
    for a in typing.get_args(tp):
        out += _models_in(a)
    return out


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        d = field.default
        if isinstance(d, BaseModel):
            return "see type"
        return f"`{d!r}`" if d is not None else "`null`"
    if field.default_factory is not None:
        try:
            v = field.default_factory()
        except TypeError:
            return "see type"
        if isinstance(v, BaseModel):
            return "see type"
        return f"`{v!r}`"
    return "**required**"


def _collect(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    stack = [root]
    while stack:
        m = stack.pop(0)
        if m in seen:
            continue
        seen.append(m)
        for f in m.model_fields.values():
            stack += [x for x in _models_in(f.annotation) if x not in seen]
    return seen


def scenario_reference_markdown() -> str:
    """The full reference as Markdown."""
    lines = [_INTRO, _SEMANTICS]
    for model in _collect(Scenario):
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        lines.append(f"## {model.__name__}\n")
        if doc:
            lines.append(doc + "\n")
        example = EXAMPLES.get(model.__name__)
        if example is not None:
            lines.append(f"```yaml\n{example.rstrip()}\n```\n")
        lines.append("| field | type | default | description |")
        lines.append("|---|---|---|---|")
        for name, f in model.model_fields.items():
            key = f.alias or name
            desc = (f.description or "").replace("\n", " ").replace("|", "\\|")
            lines.append(f"| `{key}` | {_type_name(f.annotation)} | {_default(f)} | {desc} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(scenario_reference_markdown(), end="")
