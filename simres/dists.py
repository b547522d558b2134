"""Probability distributions for service times, latencies, think times and jitter.

Each distribution is a frozen pydantic model selected by ``kind`` in a scenario file. It
knows its mean (and variance where finite) and builds a fast zero-argument sampler that
draws from numpy in batches. A bare number in a scenario file means a constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from simres import datafiles
from simres.errors import ScenarioError
from simres.rng import batched

Sampler = Callable[[], float]

_Z99 = 2.3263478740408408  # standard normal 0.99 quantile, for lognormal-by-p99
_NORMAL_MIN_Z = 3  # a truncated normal's mean may lie at most 3 sd below 0 (P(X >= 0) >= 0.13 %)


class _DistBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _finite_mean(self) -> Any:
        # Every kind: parameters whose mean overflows (a lognormal with mu 800) draw inf.
        try:
            m = self.mean
        except OverflowError:
            m = math.inf
        except (TypeError, ValueError, ZeroDivisionError):
            return self  # the kind's own validator reports its parameters
        if not math.isfinite(m):
            raise ValueError(f"parameters give an infinite or undefined mean ({self!r}); draws would overflow")
        return self

    @property
    def mean(self) -> float:  # pragma: no cover - overridden
        """Expected value."""
        raise NotImplementedError

    @property
    def variance(self) -> float:  # pragma: no cover - overridden
        """Variance (``inf`` where it is not finite)."""
        raise NotImplementedError

    @property
    def scv(self) -> float:
        """Squared coefficient of variation, variance / mean**2 (0 for a zero mean)."""
        m = self.mean
        return self.variance / (m * m) if m > 0 else 0.0

    def sampler(self, rng: np.random.Generator) -> Sampler:  # pragma: no cover
        """A zero-argument callable returning one draw per call, batched through numpy."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws as an array (convenience for analysis and tests)."""
        s = self.sampler(rng)
        return np.fromiter((s() for _ in range(n)), dtype=float, count=n)


class Exponential(_DistBase):
    """Exponential with the given ``mean`` (or ``rate`` = 1/mean; give exactly one)."""

    kind: Literal["exponential"] = "exponential"
    mean_: float | None = Field(default=None, alias="mean", gt=0)
    rate: float | None = Field(default=None, gt=0)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_of(self) -> Exponential:
        if (self.mean_ is None) == (self.rate is None):
            raise ValueError("give exactly one of 'mean' or 'rate'")
        return self

    @property
    def mean(self) -> float:
        return self.mean_ if self.mean_ is not None else 1.0 / float(self.rate)  # type: ignore[arg-type]

    @property
    def variance(self) -> float:
        return self.mean**2

    def sampler(self, rng: np.random.Generator) -> Sampler:
        scale = self.mean
        return batched(lambda n: rng.exponential(scale, n))


class Constant(_DistBase):
    """Always ``value``."""

    kind: Literal["constant"] = "constant"
    value: float = Field(ge=0)

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def sampler(self, rng: np.random.Generator) -> Sampler:
        v = float(self.value)
        return lambda: v


class Uniform(_DistBase):
    """Uniform on [low, high)."""

    kind: Literal["uniform"] = "uniform"
    low: float = Field(ge=0)
    high: float = Field(ge=0)

    @model_validator(mode="after")
    def _order(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high: must be >= low ({self.low}), got {self.high}")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12

    def sampler(self, rng: np.random.Generator) -> Sampler:
        lo, hi = self.low, self.high
        return batched(lambda n: rng.uniform(lo, hi, n))


def _phi(x: float) -> float:
    return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


class Normal(_DistBase):
    """Normal(mean, sd) made non-negative: truncated at 0 (redrawn) or folded (|x|).

    ``at_zero: truncate`` (the default) redraws negative values, so the shape above 0 is
    the normal's; ``fold`` takes the absolute value, |N(mean, sd)|, as the AWS
    backoff-and-jitter simulator draws its delays.
    """

    kind: Literal["normal"] = "normal"
    mu: float = Field(alias="mean")
    sd: float = Field(ge=0)
    at_zero: Literal["truncate", "fold"] = Field(
        default="truncate", description="Negative draws: redrawn (truncate) or their absolute value (fold).")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _drawable(self) -> Normal:
        # Truncation redraws negatives: with mean < -MIN_Z sd fewer than 0.1 % of draws are
        # kept and sampling crawls; with sd 0 and mean < 0 it would never end.
        if self.sd == 0 and self.mu < 0:
            raise ValueError(f"mean: must be >= 0 when sd is 0 (truncated at 0), got {self.mu}")
        if self.sd > 0 and self.mu < -_NORMAL_MIN_Z * self.sd:
            raise ValueError(f"mean: must be >= -{_NORMAL_MIN_Z} x sd ({-_NORMAL_MIN_Z * self.sd:g}) so that "
                             f"truncation at 0 keeps at least 0.1% of draws, got {self.mu}")
        return self

    @property
    def _alpha(self) -> float:
        return -self.mu / self.sd if self.sd > 0 else -math.inf

    @property
    def mean(self) -> float:
        if self.sd == 0:
            return abs(self.mu) if self.at_zero == "fold" else max(self.mu, 0.0)
        if self.at_zero == "fold":
            m, s = self.mu, self.sd
            return s * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * s * s)) + m * (1 - 2 * _Phi(-m / s))
        a = self._alpha
        return self.mu + self.sd * _phi(a) / (1 - _Phi(a))

    @property
    def variance(self) -> float:
        if self.sd == 0:
            return 0.0
        if self.at_zero == "fold":
            return self.mu**2 + self.sd**2 - self.mean**2
        a = self._alpha
        lam = _phi(a) / (1 - _Phi(a))
        return self.sd**2 * (1 + a * lam - lam * lam)

    def sampler(self, rng: np.random.Generator) -> Sampler:
        mu, sd = self.mu, self.sd
        if self.at_zero == "fold":
            return batched(lambda n: np.abs(rng.normal(mu, sd, n)))

        def draw(n: int) -> np.ndarray:
            x = rng.normal(mu, sd, n)
            bad = x < 0
            while bad.any():
                x[bad] = rng.normal(mu, sd, int(bad.sum()))
                bad = x < 0
            return x

        return batched(draw)


class LogNormal(_DistBase):
    """Log-normal by ``median`` and ``p99`` (the way latencies are quoted) or by ``mu``/``sigma``."""

    kind: Literal["lognormal"] = "lognormal"
    median: float | None = Field(default=None, gt=0)
    p99: float | None = Field(default=None, gt=0)
    mu: float | None = None
    sigma: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _params(self) -> LogNormal:
        by_q = self.median is not None and self.p99 is not None
        by_p = self.mu is not None and self.sigma is not None
        if by_q == by_p or (by_q and (self.mu is not None or self.sigma is not None)):
            raise ValueError("give either 'median' and 'p99', or 'mu' and 'sigma'")
        if by_q and self.p99 < self.median:  # type: ignore[operator]
            raise ValueError(f"p99: must be >= median ({self.median}), got {self.p99}")
        return self

    @property
    def params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal."""
        if self.mu is not None and self.sigma is not None:
            return self.mu, self.sigma
        mu = math.log(self.median)  # type: ignore[arg-type]
        return mu, (math.log(self.p99) - mu) / _Z99  # type: ignore[arg-type]

    @property
    def mean(self) -> float:
        mu, s = self.params
        return math.exp(mu + s * s / 2)

    @property
    def variance(self) -> float:
        mu, s = self.params
        return (math.exp(s * s) - 1) * math.exp(2 * mu + s * s)

    def sampler(self, rng: np.random.Generator) -> Sampler:
        mu, s = self.params
        return batched(lambda n: rng.lognormal(mu, s, n))


class Gamma(_DistBase):
    """Gamma with ``shape`` k and ``mean``; an integer shape is an Erlang-k distribution."""

    kind: Literal["gamma", "erlang"] = "gamma"
    shape: float = Field(gt=0)
    mean_: float = Field(alias="mean", gt=0)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _erlang(self) -> Gamma:
        if self.kind == "erlang" and float(self.shape) != int(self.shape):
            raise ValueError(f"shape: an erlang shape must be a whole number, got {self.shape}")
        return self

    @property
    def mean(self) -> float:
        return self.mean_

    @property
    def variance(self) -> float:
        return self.mean_**2 / self.shape

    def sampler(self, rng: np.random.Generator) -> Sampler:
        k, scale = self.shape, self.mean_ / self.shape
        return batched(lambda n: rng.gamma(k, scale, n))


Unit = Literal["s", "ms", "us"]


def _drop_none(out: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    for key in keys:
        if out.get(key, 0) is None:
            del out[key]
    return out


class Empirical(_DistBase):
    """Draws uniformly from observed values (with replacement): inline ``values``, or a ``file`` column.

    ``file`` is a CSV (header row first) or Parquet file, relative to the scenario file's
    directory; ``column`` names the column (it may be left out when the file has one) and
    ``unit`` its unit (s, ms or us; seconds by default). The values are read and checked
    (numbers, finite, >= 0) once, when the scenario is loaded, and drawn exactly as inline
    values are: the same values inline or from a file give the same run. A resolved
    scenario shows the file's absolute path and ``sha256`` (filled in from its bytes on
    every load, whatever was given) instead of the values, so its fingerprint follows the
    file's contents.
    """

    kind: Literal["empirical"] = "empirical"
    values: list[Annotated[float, Field(ge=0)]] | None = Field(
        default=None, min_length=1, description="Observed values (seconds); or give file.")
    column: str | None = Field(default=None, description="The file's column to use (default: its only column).")
    unit: Unit | None = Field(default=None, description="Unit of the file's column: s (default), ms or us.")
    file: str | None = Field(default=None, description="CSV or Parquet file of observations, relative to the "
                             "scenario file; instead of values.")
    sha256: str | None = Field(default=None, validate_default=True, description="The file's SHA-256, filled in "
                               "on load (a given value is replaced).")

    @field_validator("file")
    @classmethod
    def _read_file(cls, file: str | None, info: ValidationInfo) -> str | None:
        # Read and check the column now (errors name this field); the values stay cached by content.
        if file is None or "column" not in info.data or "unit" not in info.data:
            return file  # no file, or a bad column/unit that is reported on its own
        if info.data.get("values") is not None:
            raise ValueError("give either 'values' or 'file', not both")
        path, _, _ = datafiles.values(file, datafiles.base_dir_of(info), info.data["column"], info.data["unit"])
        return str(path)

    _digest = field_validator("sha256")(datafiles.file_digest)

    @model_validator(mode="after")
    def _one_source(self) -> Empirical:
        if self.values is None and self.file is None:
            raise ValueError("give either 'values' (a list of observations) or 'file' (a CSV or Parquet file)")
        if self.file is None:
            for key in ("column", "unit", "sha256"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only with 'file' (inline values are in seconds)")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Inline empirical dists dump as before ({kind, values}); a file's values are never inlined.
        return _drop_none(handler(self), ("values", "file", "column", "unit", "sha256"))

    def array(self) -> np.ndarray:
        """The observations in seconds, inline or from the file (read-only, shared for a file)."""
        if self.values is not None:
            return np.asarray(self.values, dtype=float)
        assert self.file is not None
        _, sha, arr = datafiles.values(self.file, None, self.column, self.unit)
        if self.sha256 is not None and sha != self.sha256:
            # the values drawn must be the ones the scenario (and its fingerprint) was loaded with
            raise ScenarioError(f"changed since the scenario was loaded (sha256 {sha[:12]}..., was "
                                f"{self.sha256[:12]}...); load the scenario again", source=self.file)
        return arr

    @property
    def mean(self) -> float:
        return float(np.mean(self.array()))

    @property
    def variance(self) -> float:
        return float(np.var(self.array()))

    def sampler(self, rng: np.random.Generator) -> Sampler:
        arr = self.array()
        return batched(lambda n: rng.choice(arr, n))


INF_BOUND = "+Inf"
"""The ``le`` of a histogram's overflow bucket, spelled as in Prometheus (``le="+Inf"``)."""


class Bucket(BaseModel):
    """One bucket of a Prometheus-style histogram: ``count`` observations <= ``le`` (cumulative)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    le: float | Literal["+Inf"] = Field(description="Upper bound (inclusive), or '+Inf' for the overflow bucket.")
    count: float = Field(ge=0, description="Observations <= le, cumulative as in a _bucket series.")


def _histogram_rows(file: str, base_dir: str | None) -> tuple[Any, list[dict[str, Any]]]:
    """(absolute path, buckets) from a file's ``le`` and ``count`` columns (``inf`` in ``le`` is ``+Inf``)."""
    import pyarrow as pa

    path, table, _ = datafiles.read_table(file, base_dir)
    _, counts = datafiles.column(table, "count", file=file, what="count")
    if "le" not in table.column_names:
        raise ValueError(f"no le column in {file} (columns: {', '.join(table.column_names)})")
    col = table.column("le")
    if not pa.types.is_floating(col.type) and not pa.types.is_integer(col.type):
        raise ValueError(f"le column of {file} is not numeric (type {col.type}); write +Inf as +Inf or inf")
    les = np.asarray(col.to_numpy(zero_copy_only=False), dtype=float)
    bad = np.flatnonzero(np.isnan(les) | (les == -np.inf))
    if bad.size:
        raise ValueError(f"le column of {file} has an empty or invalid value in data row {int(bad[0]) + 1}")
    rows = [{"le": INF_BOUND if le == np.inf else le, "count": c} for le, c in zip(les.tolist(), counts.tolist())]
    return path, rows


class Histogram(_DistBase):
    """A histogram as Prometheus exports it: cumulative bucket counts; draws pick a bucket, then a uniform value in it.

    ``buckets`` are the ``_bucket{le=...}`` series: upper bounds ``le`` in increasing order
    and *cumulative* counts (observations <= le, so never decreasing). A draw picks a bucket
    with probability proportional to its own count (the difference of neighbouring
    cumulative counts), then a value uniformly between the previous bound (``min`` for the
    first bucket) and its ``le``. The ``+Inf`` bucket has no upper bound: its observations
    are drawn up to ``max``, which must then be given; a ``+Inf`` bucket with no more
    observations than the last finite one (the usual case) is never drawn and needs no ``max``.

    The buckets may also come from a CSV or Parquet ``file`` (relative to the scenario
    file) with columns ``le`` and ``count``, one bucket per row (``+Inf`` or ``inf`` in the
    last row's ``le``); a resolved scenario then shows the file's path and ``sha256``.
    """

    kind: Literal["histogram"] = "histogram"
    min: float = Field(default=0.0, ge=0, description="Lower bound of the first bucket.")
    max: float | None = Field(default=None, gt=0, description="Upper bound for the +Inf bucket's observations "
                              "(required when it has any).")
    unit: Unit | None = Field(default=None, description="Unit of the bounds: s (default), ms or us.")
    file: str | None = Field(default=None, description="CSV or Parquet file with columns le and count, one bucket "
                             "per row, relative to the scenario file; instead of buckets.")
    sha256: str | None = Field(default=None, validate_default=True, description="The file's SHA-256, filled in "
                               "on load (a given value is replaced).")
    buckets: list[Bucket] | None = Field(default=None, min_length=1, validate_default=True,
                                         description="Bounds and cumulative counts, by increasing le; or give file.")

    @field_validator("file")
    @classmethod
    def _read_file(cls, file: str | None, info: ValidationInfo) -> str | None:
        if file is None:
            return None
        path, _ = _histogram_rows(file, datafiles.base_dir_of(info))
        return str(path)

    _digest = field_validator("sha256")(datafiles.file_digest)

    @field_validator("buckets", mode="before")
    @classmethod
    def _buckets_from_file(cls, buckets: Any, info: ValidationInfo) -> Any:
        file = info.data.get("file")
        if file is None:
            if buckets is None and "file" in info.data:
                raise ValueError("give either 'buckets' or 'file' (a CSV or Parquet file with columns le, count)")
            return buckets
        if buckets is not None:
            raise ValueError("give either 'buckets' or 'file', not both")
        return _histogram_rows(file, None)[1]

    @model_validator(mode="after")
    def _cumulative(self) -> Histogram:
        bs = self.buckets
        assert bs is not None  # filled from the file when one is given

        def at(i: int, key: str) -> str:
            return f"file: {key} in data row {i + 1} of {self.file}" if self.file else f"buckets.{i}.{key}"

        prev_le, prev_count = self.min, 0.0
        for i, b in enumerate(bs):
            if b.le == INF_BOUND:
                if i != len(bs) - 1:
                    raise ValueError(f"{at(i, 'le')}: '+Inf' must be the last bucket")
            elif b.le <= prev_le:
                what = "min" if i == 0 else f"the previous bound ({prev_le:g})"
                raise ValueError(f"{at(i, 'le')}: bounds must increase; {b.le:g} is not above {what}")
            if b.count < prev_count:
                raise ValueError(f"{at(i, 'count')}: cumulative counts (Prometheus _bucket series) must not "
                                 f"decrease; {b.count:g} after {prev_count:g}")
            prev_count = b.count
            if b.le != INF_BOUND:
                prev_le = float(b.le)
        if bs[-1].count <= 0:
            raise ValueError(f"buckets: no observations (the last cumulative count is {bs[-1].count:g})")
        if bs[-1].le == INF_BOUND:
            if len(bs) == 1:
                raise ValueError("buckets: a '+Inf' bucket alone has no bounds; give the finite buckets too")
            over = bs[-1].count - bs[-2].count
            if over > 0 and self.max is None:
                raise ValueError(f"max: needed: the '+Inf' bucket has {over:g} observation(s) above the last bound "
                                 f"({bs[-2].le:g}); give max (their upper bound) or drop them")
            if self.max is not None and self.max <= prev_le:
                raise ValueError(f"max: must be above the last finite bound ({prev_le:g}), got {self.max:g}")
        elif self.max is not None:
            raise ValueError("max: only with a '+Inf' bucket")
        return self

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A file's buckets are not inlined (the sha256 stands for them).
        out: dict[str, Any] = handler(self)
        if self.file is not None:
            del out["buckets"]
        return _drop_none(out, ("max", "unit", "file", "sha256"))

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower bounds, upper bounds, probabilities) of the buckets, in seconds; empty buckets dropped."""
        bs = self.buckets or []
        scale = datafiles.UNITS[self.unit or "s"]
        counts = np.array([b.count for b in bs], dtype=float)
        own = np.diff(counts, prepend=0.0)
        finite = [float(b.le) for b in bs if b.le != INF_BOUND]
        top = self.max if self.max is not None else finite[-1]  # an empty +Inf bucket: dropped below
        hi = np.array([*finite, top][: len(counts)], dtype=float) / scale
        lo = np.concatenate(([self.min / scale], hi[:-1]))
        keep = own > 0
        return lo[keep], hi[keep], own[keep] / own[keep].sum()

    @property
    def mean(self) -> float:
        lo, hi, p = self.table()
        return float(np.sum(p * (lo + hi) / 2))

    @property
    def variance(self) -> float:
        lo, hi, p = self.table()
        mid, w = (lo + hi) / 2, hi - lo
        return float(np.sum(p * (w * w / 12 + mid * mid)) - self.mean**2)

    def sampler(self, rng: np.random.Generator) -> Sampler:
        lo, hi, p = self.table()
        width, k = hi - lo, len(p)

        def draw(n: int) -> np.ndarray:
            idx = rng.choice(k, n, p=p)
            return lo[idx] + rng.random(n) * width[idx]

        return batched(draw)


class Component(BaseModel):
    """One weighted component of a mixture."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    weight: float = Field(gt=0)
    dist: Dist


class Mixture(_DistBase):
    """A weighted mixture, e.g. a bimodal service time (cache hit / miss)."""

    kind: Literal["mixture"] = "mixture"
    components: list[Component] = Field(min_length=1)

    @property
    def _weights(self) -> np.ndarray:
        w = np.array([c.weight for c in self.components], dtype=float)
        return w / w.sum()

    @property
    def mean(self) -> float:
        return float(sum(w * c.dist.mean for w, c in zip(self._weights, self.components)))

    @property
    def variance(self) -> float:
        m = self.mean
        second = sum(w * (c.dist.variance + c.dist.mean**2)
                     for w, c in zip(self._weights, self.components))
        return float(second - m * m)

    def sampler(self, rng: np.random.Generator) -> Sampler:
        w = self._weights
        subs = [c.dist.sampler(rng) for c in self.components]
        pick = batched(lambda n: rng.choice(len(w), n, p=w).astype(float))
        return lambda: subs[int(pick())]()


def _number_is_constant(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return {"kind": "constant", "value": v}
    return v


_Dists = Annotated[
    Exponential | Constant | Uniform | Normal | LogNormal | Gamma | Empirical | Histogram | Mixture,
    Field(discriminator="kind"),
]

Dist = Annotated[
    _Dists,
    # the JSON Schema (simres schema) shows the bare-number shorthand too
    BeforeValidator(_number_is_constant, json_schema_input_type=float | _Dists),
]
"""A distribution in a scenario file: ``{kind: ..., ...}``, or a bare number for a constant."""

Component.model_rebuild()
Mixture.model_rebuild()

DIST_KINDS: tuple[str, ...] = (
    "exponential", "constant", "uniform", "normal", "lognormal", "gamma", "erlang",
    "empirical", "histogram", "mixture",
)
