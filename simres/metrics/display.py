"""Summary values for people: units, grouping, and which rows carry information.

A run's summary is a flat mapping of ~70 keys (docs/metrics.md); most are empty or zero
for any one scenario. :func:`grouped_rows` is the view a reader wants first (requests,
latency, failures, work, services, caches, autoscaling, consistency, sagas, breakers,
faults, stability) with latencies in milliseconds and shares in percent, hiding NaN
values (a priority with no traffic), zero failure shares, and per-client or per-priority
rows when there is only one class. The terminal (``simres run``) and notebooks
(``RunResult._repr_html_``) both render it.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Mapping, Sequence

from simres.errors import SimresError

Formatter = Callable[[float], str]


def _num(x: float) -> str:
    if x.is_integer() and abs(x) < 1e12:
        return f"{int(x):,}"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.3g}"
    return f"{x:.4g}"


def _ms(x: float) -> str:
    ms = float(f"{x * 1000:.3g}")
    return f"{ms:g} ms" if abs(ms) < 1000 else f"{x:.3g} s"  # 0.9996 s is "1 s", never "1e+03 ms"


def _pct(x: float) -> str:
    if x == 0 or x == 1:
        return f"{x * 100:.0f} %"
    return f"{x * 100:.3g} %" if x * 100 < 99.9 else f"{x * 100:.2f} %"


def _per_s(x: float) -> str:
    return f"{x:.4g} /s"


def _sec(x: float) -> str:
    return f"{x:.3g} s"


def _yes(x: float) -> str:
    return "yes" if x == 1 else "no"


def _times(x: float) -> str:
    return f"{x:.3g}×"


RATES = ("error_rate", "timeout_rate", "connect_timeout_rate", "connection_rate", "rejected_rate", "shed_rate",
         "throttled_rate", "breaker_open_rate", "bulkhead_full_rate", "degraded_rate", "unfinished_rate")

# (group, key or pattern, label, formatter, hide when zero)
_ROWS: tuple[tuple[str, str, str, Formatter, bool], ...] = (
    ("requests", "count", "measured requests", _num, False),
    ("requests", "success_rate", "success", _pct, False),
    ("requests", "goodput", "goodput", _per_s, False),
    ("requests", "throughput", "throughput", _per_s, False),
    ("requests", "slo_attainment", "within the SLO", _pct, False),
    ("latency of successes", "latency_p50", "p50", _ms, False),
    ("latency of successes", "latency_p90", "p90", _ms, False),
    ("latency of successes", "latency_p99", "p99", _ms, False),
    ("latency of successes", "latency_p999", "p99.9", _ms, False),
    ("latency of successes", "latency_max", "max", _ms, False),
    ("latency of all requests", "latency_all_p99", "p99 (failures at give-up)", _ms, False),
    *(("failures", k, k.removesuffix("_rate").replace("_", " "), _pct, True) for k in RATES),
    ("work", "tries_per_request", "client tries per request", _num, False),
    ("work", "work_per_success", "work per success (total / useful)", _times, False),
    ("work", "amplification:*", "amplification at {}", _times, False),
    ("services", "utilization:*", "utilization of {}", _pct, False),
    ("services", "queue_len:*", "mean queue at {}", _num, True),
    ("caches", "cache_hit_ratio:*", "hit ratio at {}", _pct, False),
    ("caches", "cache_backend_load:*", "backend calls per lookup at {}", _num, False),
    ("autoscaling", "instances_mean:*", "mean instances of {}", _num, False),
    ("autoscaling", "instances_max:*", "most instances of {}", _num, False),
    ("consistency", "stale_read_rate:*", "stale reads at {}", _pct, False),
    ("consistency", "read_staleness_p99:*", "p99 read staleness at {}", _ms, False),
    ("consistency", "read_staleness_max:*", "max read staleness at {}", _ms, False),
    ("consistency", "read_refused_rate:*", "reads refused at {}", _pct, False),
    ("consistency", "ryw_violation_rate:*", "read-your-writes violations at {}", _pct, False),
    ("consistency", "replication_lag_max:*", "max replication lag of {}", _ms, False),
    ("sagas", "sagas_completed", "completed", _pct, False),
    ("sagas", "sagas_compensated", "compensated", _pct, False),
    ("sagas", "sagas_inconsistent", "left inconsistent", _pct, False),
    ("sagas", "saga_partial_time_p99", "p99 time partially applied", _sec, False),
    ("breakers", "breaker_open_share:*", "open share of {}", _pct, False),
    ("breakers", "breaker_transitions:*", "transitions of {}", _num, False),
    ("faults", "recovered:*", "recovered from {}", _yes, False),
    ("faults", "relapsed:*", "relapsed after {}", _yes, True),
    ("faults", "recovery_time:*", "recovery time after {}", _sec, False),
    ("stability", "stable_at_end", "healthy at the end", _yes, False),
    ("per class", "success_rate:*", "success of {}", _pct, False),
    ("per class", "latency_p99:*", "p99 of {}", _ms, False),
    ("per class", "shed_rate:*", "shed share of {}", _pct, True),
)

FORMATS: dict[str, Formatter] = {
    "latency": _ms, "recovery_time": _sec, "goodput": _per_s, "throughput": _per_s, "tries_per_s": _per_s,
    "utilization": _pct, "breaker_open_share": _pct, "slo_attainment": _pct, "recovered": _yes,
    "relapsed": _yes, "stable_at_end": _yes, "amplification": _times, "work_per_success": _times,
    "read_staleness": _ms, "replication_lag": _ms, "cache_hit_ratio": _pct, "sagas_": _pct, "saga_partial_time": _sec,
}
"""The formatter of a key by its prefix, for ``--metrics`` (everything else is a plain number)."""


def format_for(key: str) -> Formatter:
    """The unit-aware formatter of a summary key."""
    base = key.split(":", 1)[0]
    if base.endswith("_rate") or base.startswith("success_rate"):
        return _pct
    for prefix, fmt in FORMATS.items():
        if base.startswith(prefix):
            return fmt
    return _num


def _classes(summary: Mapping[str, float], prefix: str) -> list[str]:
    return [k for k in summary if k.startswith(prefix) and has_value(summary[k])]


def has_value(v: float) -> bool:
    return isinstance(v, int | float) and not math.isnan(v)


def grouped_rows(summary: Mapping[str, float]) -> list[tuple[str, str, str]]:
    """``(group, label, value)`` rows of the default view, in display order."""
    rows: list[tuple[str, str, str]] = []
    # per-class rows only tell something when there are several classes with traffic
    several = {p: len(_classes(summary, f"success_rate:{p}=")) > 1 for p in ("priority", "client")}
    for group, key, label, fmt, hide_zero in _ROWS:
        keys = sorted(k for k in summary if fnmatch.fnmatchcase(k, key)) if "*" in key else [key]
        for k in keys:
            v = summary.get(k)
            if v is None or not has_value(v) or (hide_zero and v == 0):
                continue
            name = k.split(":", 1)[1] if ":" in k else ""
            if group == "per class":
                kind = name.split("=", 1)[0]
                if not several.get(kind, False):
                    continue
            rows.append((group, label.format(name), fmt(float(v))))
    return rows


def select(summary: Mapping[str, float], patterns: Sequence[str]) -> list[str]:
    """The keys matching any of ``patterns`` (globs; ``all`` is every key), in summary order."""
    if "all" in patterns:
        return list(summary)
    from simres.metrics.streaming import StreamedSummary, UnavailableMetric, is_unavailable

    if isinstance(summary, StreamedSummary):
        for p in patterns:
            if is_unavailable(p) and not any(fnmatch.fnmatchcase(k, p) for k in summary):
                raise UnavailableMetric(f"--metrics: {p} is not available with record: summary (it needs the "
                                        "whole frame); run with record: full, or compute it from the frames "
                                        "--stream wrote")
    keys = [k for k in summary if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
    if not keys:
        raise SimresError(f"--metrics: no summary key matches {', '.join(patterns)} "
                          "(e.g. latency_p99, 'latency_*', 'utilization:*', all)")
    return keys


_SHARES = ("recovered", "relapsed", "stable_at_end")
"""0/1 keys: a mean over runs of these is a share of runs, shown in percent."""


def _g2(x: float) -> str:
    """Two significant digits, without an exponent below 10,000 (``0.0018``, ``4.4``, ``681``)."""
    return f"{x:.0f}" if 100 <= abs(x) < 1e4 else f"{x:.2g}"


def _ms2(x: float) -> str:
    return f"{_g2(x * 1000)} ms" if abs(x) < 1 else f"{_g2(x)} s"


_TWO_DIGITS: dict[Formatter, Formatter] = {
    _ms: _ms2, _pct: lambda x: f"{_g2(x * 100)} %", _per_s: lambda x: f"{_g2(x)} /s", _sec: lambda x: f"{_g2(x)} s",
    _times: lambda x: f"{_g2(x)}×", _num: _g2,
}
"""A half-width needs two significant digits, not the four of a value."""


def is_share(key: str) -> bool:
    """Whether ``key`` is 0/1 per run, so its mean over runs is a share of runs (``recovered:*``)."""
    return key.split(":", 1)[0] in _SHARES


def format_interval(key: str, mean: float, halfwidth: float = math.nan, *, lo: float = math.nan,
                    hi: float = math.nan) -> str:
    """A mean over runs with its interval, in the key's unit: ``27.3 ms ± 1.2 ms``.

    A 0/1 key (``recovered:*``) is a share of runs with its Wilson interval ``lo``-``hi``
    (``67 % [21-94 %]``), never ``mean ± t-interval``; a NaN or zero half-width (one run,
    or the same value on every run) is left out. The half-width has two significant digits,
    and the mean is rounded to the same place (``13.4 /s ± 2.7 /s``, not ``13.45 /s``).
    """
    if not has_value(mean):
        return "-"
    if is_share(key):
        text = f"{mean * 100:.0f} %"
        if has_value(lo) and has_value(hi):
            text += f" [{lo * 100:.0f}-{hi * 100:.0f} %]"
        return text
    fmt = format_for(key)
    mean = float(mean)
    wide = has_value(halfwidth) and halfwidth > 1e-9 * max(abs(mean), 1e-12)  # not float noise on equal runs
    if wide:
        # the mean to the digit the interval supports: its half-width's second significant digit
        step = 10.0 ** (math.floor(math.log10(float(halfwidth))) - 1)
        mean = round(mean / step) * step
    text = fmt(mean)
    if wide:
        text += f" ± {_TWO_DIGITS.get(fmt, fmt)(float(halfwidth))}"
    return text
