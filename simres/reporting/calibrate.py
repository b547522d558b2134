"""Simulated vs measured latency per service: quantiles, distances, a verdict and a QQ figure.

Why: a scenario built from measurements (``simres import traces``, or by hand) is only
worth its predictions if it reproduces what was measured; ``simres calibrate`` says so per
service before anyone trusts it.

What is compared: per service, the duration of every try sent to it, seen by its caller
(an ``attempts`` row's ``end - start`` with ``sent`` true; a CLIENT try span's duration in
a trace). Measured data is a trace file (OTLP JSON or Jaeger JSON, read as ``simres import
traces`` reads it) or a CSV with columns ``service`` and ``latency`` (seconds).

The headline distance is the two-sample Kolmogorov-Smirnov statistic
(``scipy.stats.ks_2samp``): the largest gap between the two CDFs, 0 to 1, free of units
and of the tail's scale. A service **matches** when it is at most :data:`KS_MATCH` (0.1:
no latency threshold's share of tries differs by more than 10 points). The p-value is
not the verdict: with thousands of tries it rejects differences no one cares about. The
Wasserstein distance (the mean shift needed to turn one distribution into the other)
divided by the measured mean is shown beside it, as a size in the unit users think in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simres.errors import SimresError

KS_MATCH = 0.1
"""A service matches when its KS statistic is at most this."""

QUANTILES = (0.5, 0.9, 0.99, 0.999)
"""The quantile table's levels: p50, p90, p99, p99.9."""


def _label(q: float) -> str:
    return f"p{q * 100:g}"


def measured_latencies(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Per service, the measured try durations (seconds) from a trace file or a CSV of
    ``service,latency``. Raises a :class:`SimresError` naming the file and what was
    expected."""
    from simres.metrics.trace_import import TraceImportError, read_spans, tries_of, try_durations

    p = Path(path)
    if p.suffix.lower() in (".csv", ".tsv"):
        try:
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise SimresError(f"{p}: cannot read the CSV: {e}") from None
        if not {"service", "latency"} <= set(df.columns):
            raise SimresError(f"{p}: expected columns service,latency (seconds), got {','.join(map(str, df.columns))}")
        lat = pd.to_numeric(df["latency"], errors="coerce")
        if lat.isna().any() or (lat < 0).any():
            raise SimresError(f"{p}: latency: expected non-negative numbers (seconds)")
        return {str(s): g.to_numpy(dtype=float) for s, g in lat.groupby(df["service"].astype(str))}
    try:
        return try_durations(tries_of(read_spans(p)))
    except TraceImportError as e:
        msg = str(e)
        raise SimresError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None


def simulated_latencies(attempts: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per service, the durations of the tries sent to it in a run's ``attempts`` frame."""
    a = attempts[attempts["sent"].astype(bool)]
    d = (a["end"] - a["start"]).to_numpy(dtype=float)
    ok = np.isfinite(d)
    svc = a["service"].astype(str).to_numpy()[ok]
    d = d[ok]
    return {str(s): d[svc == s] for s in sorted(set(svc))}


@dataclass(frozen=True)
class Calibration:
    """The comparison: ``table`` has a row per service (counts, quantiles sim / measured /
    ratio, KS and its p-value, relative Wasserstein, verdict); ``only_measured`` and
    ``only_simulated`` name services seen on one side only."""

    table: pd.DataFrame
    simulated: dict[str, np.ndarray]
    measured: dict[str, np.ndarray]
    only_measured: list[str]
    only_simulated: list[str]

    def verdicts(self) -> list[str]:
        """One line per service: ``api: matches: KS 0.03 (Wasserstein 2.1 % of the mean)``."""
        out = []
        for _, r in self.table.iterrows():
            word = "matches" if r["verdict"] == "matches" else "differs"
            why = "" if word == "matches" else f" > {KS_MATCH:g}"
            shift = ""
            if word == "differs":
                shift = " (simulated slower)" if r["p50_ratio"] > 1 else " (simulated faster)"
            out.append(f"{r['service']}: {word}: KS {r['ks']:.3f}{why}, Wasserstein {r['wasserstein_rel']:.1%} of "
                       f"the measured mean{shift}")
        out += [f"{s}: measured only (not in the scenario)" for s in self.only_measured]
        out += [f"{s}: simulated only (not in the measurements)" for s in self.only_simulated]
        return out


def compare(simulated: Mapping[str, np.ndarray], measured: Mapping[str, np.ndarray]) -> Calibration:
    """The quantile table and distances of every service in both."""
    from scipy import stats

    rows: list[dict[str, Any]] = []
    for s in sorted(set(simulated) & set(measured)):
        x, y = np.asarray(simulated[s], float), np.asarray(measured[s], float)
        if not len(x) or not len(y):
            continue
        row: dict[str, Any] = {"service": s, "n_simulated": len(x), "n_measured": len(y)}
        for q in QUANTILES:
            a, b = float(np.quantile(x, q)), float(np.quantile(y, q))
            row[f"{_label(q)}_simulated"] = a
            row[f"{_label(q)}_measured"] = b
            row[f"{_label(q)}_ratio"] = a / b if b > 0 else np.nan
        ks = stats.ks_2samp(x, y)
        row["ks"] = float(ks.statistic)
        row["ks_pvalue"] = float(ks.pvalue)
        mean = float(y.mean())
        row["wasserstein_rel"] = float(stats.wasserstein_distance(x, y)) / mean if mean > 0 else np.nan
        row["verdict"] = "matches" if row["ks"] <= KS_MATCH else "differs"
        rows.append(row)
    table = pd.DataFrame(rows)
    return Calibration(table, dict(simulated), dict(measured), sorted(set(measured) - set(simulated)),
                       sorted(set(simulated) - set(measured)))


def quantile_text(cal: Calibration) -> str:
    """The quantile table as aligned text, milliseconds."""
    head = f"{'service':<18}{'quantile':>9}{'simulated':>12}{'measured':>12}{'ratio':>8}"
    lines = [head]
    for _, r in cal.table.iterrows():
        for i, q in enumerate(QUANTILES):
            lab = _label(q)
            lines.append(f"{(r['service'] if i == 0 else ''):<18}{lab:>9}{r[lab + '_simulated'] * 1e3:>9.2f} ms"
                         f"{r[lab + '_measured'] * 1e3:>9.2f} ms{r[lab + '_ratio']:>8.2f}")
    return "\n".join(lines)


def qq_figure(cal: Calibration, path: str | os.PathLike[str]) -> Path:
    """A QQ plot per service (simulated quantile against measured quantile, 0.5 % to
    99.9 %), log axes when a service's latencies span more than a factor of 20, the
    diagonal for reference. Written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    services = list(cal.table["service"]) if len(cal.table) else []
    n = max(1, len(services))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.0 * rows), squeeze=False)
    levels = np.linspace(0.005, 0.999, 200)
    for ax, s in zip(axes.flat, services, strict=False):
        x = np.quantile(cal.measured[s], levels) * 1e3
        y = np.quantile(cal.simulated[s], levels) * 1e3
        r = cal.table.set_index("service").loc[s]
        lo = max(min(x.min(), y.min()), 1e-3)
        hi = max(x.max(), y.max())
        ax.plot(x, y, ".", ms=3, color="C0", label="quantiles 0.5 % to 99.9 %")
        for q, mark in ((0.5, "o"), (0.99, "s")):
            ax.plot(np.quantile(cal.measured[s], q) * 1e3, np.quantile(cal.simulated[s], q) * 1e3, mark,
                    color="C3", ms=6, mfc="none", label=_label(q))
        ax.plot([lo, hi], [lo, hi], "-", color="0.5", lw=0.8, label="simulated = measured")
        if hi / lo > 20:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_title(f"{s}: KS {r['ks']:.3f} ({r['verdict']})", fontsize=10)
        ax.set_xlabel("measured try duration (ms)")
        ax.set_ylabel("simulated try duration (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(services):]:
        ax.set_visible(False)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
