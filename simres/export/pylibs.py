"""Python client libraries: urllib3 ``Retry``, botocore ``Config``, tenacity ``Retrying``, pybreaker ``CircuitBreaker``.

Each function takes a :class:`~simres.export._common.Mapping` and returns the Python source (the
header is added by :func:`simres.export.export_call`); executing it builds the object.
"""

from __future__ import annotations

from simres.export._common import HTTP_STATUS, REMOTE, Mapping, NothingToExport, codes_for, num, resolved, show
from simres.policies import BreakerConfig, RetryConfig

_PY_EXCEPTION = {"timeout": "TimeoutError", "connection": "ConnectionError"}
"""The builtin exception of an outcome; error, rejected and shed are your HTTP client's own exception."""


def _args(pairs: list[tuple[str, str]], indent: str = "    ") -> str:
    return "".join(f"{indent}{k}={v},\n" for k, v in pairs)


def _timeouts_elsewhere(m: Mapping, *keys: str) -> None:
    for key in keys:
        if m.has(key):
            m.cannot(key, f"{m.library} has no {key.replace('_', ' ')}")


# ---------------------------------------------------------------------------- urllib3


def urllib3(m: Mapping) -> str:
    """``Retry(total=N, ...)`` (``total`` counts retries) and ``Timeout(total=...)`` per try."""
    if not m.has("retry") and not m.has("timeout"):
        raise NothingToExport("urllib3 exports a retry policy or a per-try timeout; this call has neither")
    lines = ["from urllib3 import Retry, Timeout", ""]
    if m.has("retry"):
        lib = resolved(RetryConfig, "urllib3")
        tries = m.v("retry.max_attempts")
        retry_on = m.v("retry.retry_on")
        statuses, also = codes_for([o for o in retry_on if o in HTTP_STATUS], HTTP_STATUS)
        args = [("total", str(tries - 1))]
        per = {"connect": ("connection", "retry.connect_retries"), "read": ("timeout", "retry.read_retries"),
               "status": (None, "retry.status_retries")}
        for arg, (outcome, path) in per.items():
            n = m.v(path)
            if outcome is not None and outcome not in retry_on:
                n = 0
            if n is not None:
                args.append((arg, str(n)))
        if statuses:
            args.append(("status_forcelist", repr(sorted(statuses))))
        if also:
            m.note(f"retry.retry_on: {show(also)} share a status with the outcomes retried; urllib3 retries them too")
        kind = m.v("retry.backoff.kind")
        base, cap = m.v("retry.backoff.base"), m.v("retry.backoff.cap")
        if kind == "none":
            args.append(("backoff_factor", "0"))
        else:
            args += [("backoff_factor", num(base)), ("backoff_max", num(cap))]
            if kind != "exponential":
                m.note(f"retry.backoff.kind: {kind}: urllib3 only backs off exponentially "
                       "(backoff_factor * 2 ** (retries - 1)); written as exponential from backoff_factor")
        jit = m.v("retry.jitter.kind")
        if jit == "additive" and not m.v("retry.jitter.over_cap"):
            args.append(("backoff_jitter", num(m.v("retry.jitter.amount"))))
        elif jit != "none":
            m.note(f"retry.jitter: {jit}: urllib3 has only an additive jitter capped at backoff_max "
                   "(backoff_jitter); written without jitter")
        honour = m.v("retry.honor_retry_after")
        args.append(("respect_retry_after_header", str(bool(honour))))
        if honour:
            args.append(("retry_after_max", num(m.v("retry.retry_after_max") or 21600)))
        m.fixed("retry", lib, "urllib3")
        if not honour:
            m.use("retry.retry_after_mode", "retry.retry_after_max", "retry.retry_on_hint")
        lines += ["# urllib3 retries reads and statuses only for allowed_methods (GET, PUT, DELETE, HEAD, OPTIONS,",
                  "# TRACE by default); a POST is retried after a connection failure only",
                  "retry = Retry(", _args(args).rstrip("\n"), ")"]
    parts = [(k, m.v(key)) for k, key in (("total", "timeout"), ("connect", "connect_timeout"),
                                          ("read", "read_timeout")) if m.has(key)]
    if parts:
        say = ("  # per try: connect and read together" if len(parts) == 1 and parts[0][0] == "total"
               else "  # connect: reaching the host; read: each wait for data")
        lines += [f"timeout = Timeout({', '.join(f'{k}={num(v)}' for k, v in parts)}){say}"]
    _timeouts_elsewhere(m, "deadline")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- botocore

_BOTOCORE_FORMS = {"aws_standard": "", "aws_standard_dynamodb": " (as botocore runs it for DynamoDB clients)",
                   "aws_standard_2_0": " (botocore <= 1.43, retry mode 2.0)",
                   "aws_adaptive": " (adaptive mode: standard mode plus the client rate limiter)"}


def botocore(m: Mapping) -> str:
    """``Config(retries={"total_max_attempts": N, "mode": "standard"}, ...)``: total_max_attempts counts tries."""
    if not any(m.has(k) for k in ("retry", "timeout", "connect_timeout", "read_timeout")):
        raise NothingToExport("botocore exports a retry policy or timeouts; this call has neither")
    args: list[tuple[str, str]] = []
    form = ""
    if m.has("retry"):
        tries = m.v("retry.max_attempts")
        # botocore's standard mode is the aws_standard preset (its DynamoDB and mode 2.0 forms too): nothing but the
        # tries can be set
        preset = m.raw("retry.preset")
        # a client rate limiter is botocore's adaptive mode, whatever the preset
        mode = "adaptive" if m.raw("retry.rate_limiter") is not None else "standard"
        if mode == "adaptive":
            preset = "aws_adaptive"
        preset = preset if preset in _BOTOCORE_FORMS else "aws_standard"
        m.fixed("retry", resolved(RetryConfig, preset), f"botocore {mode} mode{_BOTOCORE_FORMS[preset]}")
        form = _BOTOCORE_FORMS[preset].strip(" ()")
        args.append(("retries", f'{{"total_max_attempts": {tries}, "mode": "{mode}"}}'))
    else:
        args.append(("retries", '{"total_max_attempts": 1, "mode": "standard"}'))
    for key in ("connect_timeout", "read_timeout"):
        if m.has(key):
            args.append((key, num(m.v(key))))
    if m.has("timeout"):
        t = num(m.v("timeout"))
        unset = [k for k in ("connect_timeout", "read_timeout") if not m.has(k)]
        args += [(k, t) for k in unset]
        m.note(f"timeout: {t}: botocore bounds each connect and each socket read (connect_timeout, read_timeout), "
               "not a whole try" + (f"; {' and '.join(unset)} written as the per-try timeout" if unset else
                                    "; not written"))
    _timeouts_elsewhere(m, "deadline")
    return ("from botocore.config import Config\n\n"
            "# total_max_attempts counts every try; Config(retries={'max_attempts': N}) would count retries\n"
            + (f"# {form}\n" if form else "") +
            f"config = Config(\n{_args(args)})\n")


# ---------------------------------------------------------------------------- tenacity


def _tenacity_wait(m: Mapping) -> str:
    kind = m.v("retry.backoff.kind")
    base, cap, mult = (m.v(f"retry.backoff.{k}") for k in ("base", "cap", "multiplier"))
    floor = m.v("retry.backoff.floor")
    jit = m.v("retry.jitter.kind")
    lo = f", min={num(floor)}" if floor else ""
    if m.v("retry.backoff.zero_first"):
        m.cannot("retry.backoff.zero_first", "tenacity waits before every retry")
    if kind == "none":
        wait = "wait_none()"
        if jit != "none":
            m.note(f"retry.jitter: {jit} with no backoff: written as wait_none()")
        return wait
    if kind == "exponential":
        common = f"multiplier={num(base)}, max={num(cap)}, exp_base={num(mult)}{lo}"
        if jit == "none":
            return f"wait_exponential({common})"
        if jit == "full":
            return f"wait_random_exponential({common})"
        if jit == "additive":
            amount = num(m.v("retry.jitter.amount"))
            if m.v("retry.jitter.over_cap"):
                return f"wait_exponential({common}) + wait_random(0, {amount})"
            if floor:
                m.note("retry.backoff.floor: wait_exponential_jitter has no min=; written without it")
            return (f"wait_exponential_jitter(initial={num(base)}, max={num(cap)}, exp_base={num(mult)}, "
                    f"jitter={amount})")
        m.note(f"retry.jitter: {jit}: tenacity has none, only full (wait_random_exponential) and additive "
               "(wait_exponential_jitter); written without jitter")
        return f"wait_exponential({common})"
    if floor:
        m.note(f"retry.backoff.floor: {num(floor)}: only tenacity's exponential waits take min=; written without it")
    if kind == "constant":
        step = num(min(base, cap))
        if jit == "full":
            return f"wait_random(0, {step})"
        if jit == "additive" and m.v("retry.jitter.over_cap"):
            return f"wait_fixed({step}) + wait_random(0, {num(m.v('retry.jitter.amount'))})"
        if jit != "none":
            m.note(f"retry.jitter: {jit}: not expressible with wait_fixed; written without jitter")
        return f"wait_fixed({step})"
    if jit != "none":
        m.note(f"retry.jitter: {jit}: not expressible with wait_incrementing; written without jitter")
    return f"wait_incrementing(start={num(base)}, increment={num(base)}, max={num(cap)})"


def tenacity(m: Mapping) -> str:
    """``Retrying(stop=stop_after_attempt(N) | stop_before_delay(D), wait=..., retry=..., reraise=True)``."""
    if not m.has("retry"):
        raise NothingToExport("tenacity exports a retry policy; this call has none")
    stop = f"stop_after_attempt({m.v('retry.max_attempts')})"
    if m.has("deadline"):
        stop += f" | stop_before_delay({num(m.v('deadline'))})"
        m.note(f"deadline: {num(m.raw('deadline'))}: stop_before_delay stops retrying before a wait that would end "
               "past it, but tenacity cannot cut a running try short at the deadline")
    wait = _tenacity_wait(m)
    if m.v("retry.first_retry_index"):
        m.cannot("retry.first_retry_index", "tenacity's first retry is always attempt 1")
    retry_on = m.v("retry.retry_on")
    if set(retry_on) >= set(REMOTE):
        retry = "retry_if_exception_type(Exception)"
    else:
        excs = [_PY_EXCEPTION[o] for o in retry_on if o in _PY_EXCEPTION]
        http = [o for o in retry_on if o not in _PY_EXCEPTION]
        if http:
            statuses = sorted(s for o in http for s in HTTP_STATUS[o])
            m.note(f"retry.retry_on: {show(http)}: replies (HTTP {statuses}) raise your client's own exception; "
                   "add it to retry_if_exception_type")
        retry = f"retry_if_exception_type(({', '.join(excs)},))" if excs else "retry_if_exception_type(())"
    m.fixed("retry", {"honor_retry_after": False}, "tenacity")
    if m.has("timeout"):
        m.cannot("timeout", "tenacity does not time a try out; set it on the call itself")
    names = sorted({w.split("(")[0] for w in (stop + " | " + wait).replace("+", "|").split("|")}
                   | {"Retrying", "retry_if_exception_type"})
    names = [n.strip() for n in names]
    args = [("stop", stop), ("wait", wait), ("retry", retry), ("reraise", "True")]
    return f"from tenacity import {', '.join(sorted(set(names)))}\n\nretrying = Retrying(\n{_args(args)})\n"


# ---------------------------------------------------------------------------- pybreaker


def pybreaker(m: Mapping) -> str:
    """``CircuitBreaker(fail_max=N, reset_timeout=S, success_threshold=K)``: consecutive failures only."""
    if not m.has("breaker"):
        raise NothingToExport("pybreaker exports a circuit breaker; this call has none")
    args: list[tuple[str, str]] = []
    trip = m.v("breaker.trip")
    if trip == "consecutive":
        args.append(("fail_max", str(m.v("breaker.failure_threshold"))))
    else:
        m.note(f"breaker.trip: {trip}: pybreaker opens only after fail_max consecutive failures; its rate "
               "settings (threshold, window, minimum_calls, slow calls) are not written")
        m.use("breaker.trip", "breaker.threshold", "breaker.window", "breaker.minimum_calls",
              "breaker.slow_call_duration", "breaker.slow_threshold", "breaker.rate_rule", "breaker.check_rate_on",
              "breaker.rate_denominator", "breaker.minimum_rps")
    args.append(("reset_timeout", num(m.v("breaker.open_for"))))
    half_open = m.raw("breaker.half_open")
    if half_open != "permits":
        args.append(("success_threshold", str(m.v("breaker.close_after_successes"))))
    m.fixed("breaker", resolved(BreakerConfig, "pybreaker"), "pybreaker")
    for key in ("timeout", "deadline", "retry", "bulkhead", "limit", "outlier_detection", "hedge"):
        if m.has(key):
            m.v(key)
            m.note(f"{key}: pybreaker is only a circuit breaker; export it with another library")
    return f"from pybreaker import CircuitBreaker\n\nbreaker = CircuitBreaker(\n{_args(args)})\n"
