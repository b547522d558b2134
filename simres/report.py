"""Reports: one self-contained HTML page comparing a scenario's variants, or summarising a sweep.

From a scenario, :func:`scenario_report` runs replications of every variant (common random
numbers) for the comparison table and the verdict, plus one representative run per
variant, all with the same seed, for the figures that need per-request data (CDF, CCDF,
timelines, herds). From a results frame (a sweep, or replications saved by
``simres run --reps N --out DIR``), :func:`results_report` draws the sweep figures.

The verdict sentences are computed from the numbers (:func:`verdicts`), never written by
hand. The page embeds its figures and CSS, names no external URL, and carries no
timestamp unless one is passed in: the same inputs give the same bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from simres import __version__, plots
from simres import report_html as H
from simres.errors import SimresError
from simres.experiment import HEADLINE, compare_frame
from simres.metrics.faults import fault_intervals
from simres.plots import variant_label
from simres.scenario import Scenario, load_scenario, resolved_dict
from simres.verdicts import recovery_by_variant, replication_count, sweep_metrics, sweep_verdicts, verdicts

FIGURE_FORMATS = ("png", "svg")
TABLE_EXTRA = ("latency_all_p99", "error_rate", "timeout_rate", "slo_attainment")
TABLE_PREFIXES = ("amplification:", "herd_peak_to_mean:", "utilization:", "breaker_open_share:")
RESULTS_FILES = ("replications.parquet", "results.parquet", "replications.csv", "results.csv")
MAX_HERD_FIGURES = 3
MAX_TABLE_ROWS = 200


class ReportError(SimresError, ValueError):
    """A report or plot was asked for with inputs it cannot use (names the input)."""


class RunLike(Protocol):
    """Anything with the four frames of a run (a ``RunResult``, a :class:`RunFrames`)."""

    requests: pd.DataFrame
    attempts: pd.DataFrame
    timeline: pd.DataFrame
    events: pd.DataFrame


@dataclass(frozen=True)
class RunFrames:
    """The frames of one run, from a ``RunResult`` or a directory written by ``simres run --out``."""

    requests: pd.DataFrame
    attempts: pd.DataFrame
    timeline: pd.DataFrame
    events: pd.DataFrame
    variant: str = ""
    seed: int | None = None
    warmup: float | None = None
    summary: dict[str, float] | None = None


# ---------------------------------------------------------------------------- loading


def load_run(path: str | os.PathLike[str]) -> RunFrames:
    """Read a run directory (``requests``, ``attempts``, ``timeline``, ``events`` as parquet or csv)."""
    d = Path(path)
    if not d.is_dir():
        raise ReportError(f"{d}: not a run directory (expected the --out directory of `simres run`)")
    frames: dict[str, pd.DataFrame] = {}
    for name in ("requests", "attempts", "timeline", "events", "summary"):
        frames[name] = _read_frame(d, name, required=name != "summary")
    summary = frames.pop("summary")
    variant, seed, row = "", None, None
    if summary is not None and len(summary):
        row = summary.iloc[0].to_dict()
        if pd.notna(row.get("variant")):
            variant = str(row["variant"])
        if pd.notna(row.get("seed")):
            seed = int(row["seed"])
    return RunFrames(**frames, variant=variant, seed=seed, summary=row)  # type: ignore[arg-type]


def _read_frame(d: Path, name: str, *, required: bool) -> pd.DataFrame | None:
    for suffix, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        p = d / f"{name}{suffix}"
        if p.is_file():
            try:
                return reader(p)
            except Exception as e:  # a corrupt or foreign file: one line, not a traceback
                raise ReportError(f"{p}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if required:
        raise ReportError(f"{d}: no {name}.parquet or {name}.csv (expected the --out directory of `simres run`)")
    return None


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory holding a run's frames."""
    d = Path(path)
    return d.is_dir() and any((d / f"requests{s}").is_file() for s in (".parquet", ".csv"))


def _is_sweep_dir(p: Path) -> bool:
    """A directory of Parquet parts written by ``simres sweep --out`` (it may be named ``x.parquet``)."""
    return p.is_dir() and not is_run_dir(p) and ((p / "_sweep.json").is_file() or any(p.glob("part-*.parquet")))


def _is_sweep_file(p: Path) -> bool:
    import pyarrow.parquet as pq

    from simres.sweeps import METADATA_KEY

    try:
        return METADATA_KEY in (pq.read_schema(p).metadata or {})
    except Exception:  # not Parquet at all: let the reader below say so
        return False


def is_results_source(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names results (a file, a sweep directory, a directory holding one) rather than a scenario."""
    p = Path(source)
    if p.is_file():
        return p.suffix in (".parquet", ".csv")
    return _is_sweep_dir(p) or (p.is_dir() and any((p / n).is_file() for n in RESULTS_FILES))


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results frame.

    ``path`` is a sweep's results (a directory of parts, or a file, written by ``simres
    sweep``: read with :func:`simres.sweeps.load_results`, so ``attrs["sweep"]`` names the
    swept parameters), a ``.parquet`` / ``.csv`` file, or a directory holding one of
    :data:`RESULTS_FILES` (``simres run --reps N --out DIR`` writes ``replications.parquet``).
    """
    p = Path(path)
    if _is_sweep_dir(p):
        from simres.sweeps import load_results as load_sweep

        return load_sweep(p)
    if p.is_dir():
        found = [p / n for n in RESULTS_FILES if (p / n).is_file()]
        if not found:
            raise ReportError(f"{p}: no sweep parts and no {' / '.join(RESULTS_FILES)} in this directory")
        p = found[0]
    if not p.is_file():
        raise ReportError(f"{p}: no such file")
    if p.suffix == ".parquet" and _is_sweep_file(p):
        from simres.sweeps import load_results as load_sweep

        return load_sweep(p)
    try:
        if p.suffix == ".parquet":
            return pd.read_parquet(p)
        if p.suffix == ".csv":
            return pd.read_csv(p)
    except Exception as e:
        raise ReportError(f"{p}: cannot be read ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    raise ReportError(f"{p}: expected a .parquet or .csv results file, got {p.suffix or 'no suffix'!r}")


# ---------------------------------------------------------------------------- tables


def _table_metrics(cmp: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(cmp["metric"]))
    main = [m for m in (*HEADLINE, *TABLE_EXTRA) if m in present]
    main += [m for m in present if m.startswith(TABLE_PREFIXES) and m not in main]
    return main


def comparison_table(reps_df: pd.DataFrame, *, metrics: Sequence[str] | None = None,
                     confidence: float = 0.95) -> str:
    """HTML table: one row per metric, one column per variant, mean ± CI half-width.

    The best variant of each metric is bold; ``~`` marks a variant not significantly
    different from the best (paired t-test). All-NaN metrics are left out.
    """
    cmp = compare_frame(reps_df, metrics=metrics, confidence=confidence)
    variants = list(dict.fromkeys(reps_df["variant"].fillna("").astype(str)))
    return _comparison_html(cmp, variants, list(metrics) if metrics is not None else None)


def _comparison_html(cmp: pd.DataFrame, variants: Sequence[str], order: Sequence[str] | None) -> str:
    cells = {(r.metric, r.variant): r for r in cmp.itertuples(index=False)}
    rows = []
    for m in order if order is not None else list(dict.fromkeys(cmp["metric"])):
        found = [cells.get((m, v)) for v in variants]
        if not any(r is not None and math.isfinite(r.mean) for r in found):
            continue
        scale, label = plots.metric_scale(m)
        unit = f' <span class="note">({H.esc(label.rsplit("(", 1)[-1])}</span>' if label.endswith(")") else ""
        row = [f"<code>{H.esc(m)}</code>{unit}"]
        means = [r.mean for r in found if r is not None and math.isfinite(r.mean)]
        top = next((r.mean for r in found if r is not None and r.best), None)
        tied = len(set(means)) == 1  # nothing to choose between the variants: mark none
        for r in found:
            if r is None or not math.isfinite(r.mean):
                row.append("-")
                continue
            text = plots.format_number(r.mean * scale)
            if math.isfinite(r.halfwidth):
                hw = r.halfwidth if r.halfwidth > 1e-9 * abs(r.mean) else 0.0  # float noise, not spread
                text += f" ± {plots.format_number(hw * scale)}"
            if not tied and r.mean == top:
                text = f"<strong>{H.esc(text)}</strong>"
            elif not tied:
                text = H.esc(text) + (" ~" if not r.significant and math.isfinite(r.p_value) else "")
            else:
                text = H.esc(text)
            row.append(text)
        rows.append(row)
    return H.table(["metric", *(H.esc(variant_label(v)) for v in variants)], rows)


def _comparison_parts(df: pd.DataFrame, *, confidence: float) -> list[str]:
    """The comparison table (headline metrics), its legend, all metrics folded, and the recovery table."""
    cmp = compare_frame(df, confidence=confidence)
    variants = list(dict.fromkeys(df["variant"]))
    n = replication_count(df)
    parts = [_comparison_html(cmp, variants, _table_metrics(cmp)),
             f'<p class="note">Mean ± half-width of the {confidence:.0%} Student-t interval over {n} '
             "replication(s). Bold: best variant (none when all are equal); ~: not significantly different from "
             "the best (paired t-test across replications with the same seeds). Latencies count successful "
             "requests only unless named <code>latency_all_*</code>.</p>",
             H.details("All metrics", _comparison_html(cmp, variants, None))]
    rec = recovery_table(df, confidence=confidence)
    if rec:
        parts += ["<h3>Recovery after each fault</h3>", rec]
    return parts


def recovery_table(reps_df: pd.DataFrame, *, confidence: float = 0.95) -> str | None:
    """HTML table of :func:`simres.experiment.recovery_verdicts`, or None without faults."""
    rec = recovery_by_variant(reps_df, confidence=confidence)
    if rec.empty:
        return None
    rows = []
    for r in rec.itertuples(index=False):
        share = "-" if r.n == 0 else f"{r.not_recovered} of {r.n} ({r.lo * 100:.0f}–{r.hi * 100:.0f} %)"
        t = [f"{x:.1f} s" if math.isfinite(x) else "-" for x in (r.recovery_time_p50, r.recovery_time_max)]
        rows.append([r.fault, variant_label(str(r.variant)), share, *t])
    return H.text_table(["fault", "variant", f"did not recover ({confidence:.0%} Wilson CI)",
                         "median recovery time", "max recovery time"], rows, text_columns=2)


# ---------------------------------------------------------------------------- figures


class _Figures:
    """Collects figures as embedded HTML in one format and resolution."""

    def __init__(self, fmt: str, dpi: int):
        if fmt not in FIGURE_FORMATS:
            raise ReportError(f"figure_format: expected one of {', '.join(FIGURE_FORMATS)}, got {fmt!r}")
        self.fmt, self.dpi = fmt, dpi

    def html(self, make: Any, *, caption: str, alt: str) -> str:
        """The embedded figure made by ``make()``, or a note when the data cannot be drawn."""
        try:
            fig = make()
        except plots.PlotError as e:
            return f'<p class="note">{H.esc(alt)}: not drawn ({H.esc(e)}).</p>'
        return H.figure(plots.figure_bytes(fig, self.fmt, dpi=self.dpi), self.fmt, alt=alt, caption=caption)


def _frames(run: RunLike) -> RunFrames:
    if isinstance(run, RunFrames):
        return run
    return RunFrames(requests=run.requests, attempts=run.attempts, timeline=run.timeline, events=run.events,
                     variant=str(getattr(run, "variant", None) or ""), seed=getattr(run, "seed", None),
                     warmup=getattr(run, "warmup", None))


# ---------------------------------------------------------------------------- scenario report


def scenario_report(scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str], *, reps: int = 5,
                    seed: int | None = None, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                    variants: Sequence[str] | None = None, reference: str | None = None,
                    figure_format: str = "png", dpi: int = 100, progress: bool = False, executor: Any = None,
                    generated: str | None = None, headline: str | os.PathLike[str] | None = None) -> str:
    """Run a scenario's variants and return the HTML report.

    ``reps`` replications per variant (seeds derived from ``seed``, default the scenario's)
    give the table and the verdict; one run per variant with ``seed`` itself gives the
    per-request figures. ``variants`` defaults to all of the scenario's (or the scenario as
    written when it has none); ``reference`` is the variant the verdict compares against
    (default: the worst on each metric). ``generated`` is printed in the footer as given.
    ``headline``, if given, is a path where the one-picture summary
    (:func:`simres.plots.headline_figure`) is saved too, for a README or a slide.
    """
    from simres.experiment import replicate
    from simres.runs import run

    if reps < 1:
        raise ReportError(f"reps: must be >= 1, got {reps}")
    sc = load_scenario(scenario, overrides=overrides)
    names: list[str | None] = list(variants) if variants else (list(sc.variants) or [None])
    for v in names:
        if v is not None and v not in sc.variants:
            raise ReportError(f"variants: unknown variant '{v}' (variants: {', '.join(sc.variants) or 'none'})")
    if reference is not None and reference not in [v or "" for v in names]:
        raise ReportError(f"reference: '{reference}' is not one of the compared variants")
    root = sc.seed if seed is None else int(seed)
    reps_df = replicate(sc, variants=names, reps=reps, seed=root, progress=progress, executor=executor)
    runs = {(v or ""): _frames(run(sc, seed=root, variant=v)) for v in names}
    if headline is not None:
        Path(headline).parent.mkdir(parents=True, exist_ok=True)
        plots.save_headline_figure(headline, requests={v: f.requests for v, f in runs.items()}, reps=reps_df,
                                   events=next(iter(runs.values())).events, title=sc.name)
    return render_scenario_report(sc, reps_df, runs, seed=root, reference=reference, figure_format=figure_format,
                                  dpi=dpi, generated=generated)


def render_scenario_report(scenario: Scenario, reps_df: pd.DataFrame, runs: Mapping[str, RunLike], *,
                           seed: int, reference: str | None = None, figure_format: str = "png", dpi: int = 100,
                           confidence: float = 0.95, generated: str | None = None) -> str:
    """The HTML of a scenario report from results already computed (nothing is simulated here).

    ``reps_df`` is :func:`simres.experiment.replicate`'s frame; ``runs`` maps each variant
    (``""`` for the scenario as written) to one run's frames, all with ``seed``.
    """
    figs = _Figures(figure_format, dpi)
    frames = {str(k): _frames(v) for k, v in runs.items()}
    df = reps_df.copy()
    df["variant"] = df["variant"].fillna("").astype(str)
    order = list(dict.fromkeys([*df["variant"], *frames]))
    pal = plots.Palette(order)
    n = replication_count(df)
    sc = scenario
    labels = ", ".join(variant_label(v) for v in order)
    subtitle = (f"{len(order)} variant(s): {labels}. {n} replication(s) per variant with common random numbers "
                f"(root seed {seed}); the figures show one run per variant, all with seed {seed}.")
    body = [f"<h1>{H.esc(sc.name)}</h1>", f'<p class="subtitle">{H.esc(subtitle)}</p>']
    body.append(H.section("Verdict", H.bullets([H.esc(s) for s in verdicts(df, reference=reference,
                                                                           confidence=confidence)],
                                               cls="verdict"), anchor="verdict"))
    body.append(H.section("Scenario", *_scenario_parts(sc), anchor="scenario"))
    body.append(H.section("Variants", _variants_table(sc, order), anchor="variants"))
    parts = _comparison_parts(df, confidence=confidence)
    body.append(H.section("Comparison", *parts, anchor="comparison"))
    body.append(H.section("Figures", *_scenario_figures(figs, df, frames, pal, sc, seed), anchor="figures"))
    return H.page(f"simres report: {sc.name}", body, footer=_footer(generated))


def _scenario_parts(sc: Scenario) -> list[str]:
    import yaml

    parts = []
    if sc.description.strip():
        parts.append(f'<p class="description">{H.esc(sc.description.strip())}</p>')
    facts = [("duration", f"{sc.duration:g} s"), ("warm-up (excluded)", f"{sc.warmup:g} s"),
             ("drain", f"{sc.drain:g} s"), ("timeline step", f"{sc.timeline_step:g} s")]
    if sc.slo is not None:
        facts.append(("latency objective (SLO)", f"{sc.slo * 1000:g} ms"))
    facts.append(("services", ", ".join(f"{n} ({s.instances}×{s.workers} workers)" for n, s in sc.services.items())))
    facts.append(("clients", ", ".join(f"{n} -> {c.target}" for n, c in sc.clients.items())))
    parts.append(H.text_table(["", ""], facts, text_columns=2))
    if sc.faults:
        rows = []
        for i, f in enumerate(sc.faults):
            name = f.name or f"{f.kind}#{i}"
            rows.append([name, f.kind, f"{f.at:g} s", "until the end" if f.duration is None else f"{f.duration:g} s"])
        parts += ["<h3>Faults</h3>", H.text_table(["fault", "kind", "at", "duration"], rows, text_columns=2)]
    text = yaml.safe_dump(resolved_dict(sc), sort_keys=False, default_flow_style=False)
    parts.append(H.details("The resolved scenario (every default filled in)", f"<pre><code>{H.esc(text)}</code></pre>"))
    return parts


def _variants_table(sc: Scenario, order: Sequence[str]) -> str:
    rows = []
    for v in order:
        ov = sc.variants.get(v, {}) if v else {}
        text = "<br>".join(f"<code>{H.esc(k)} = {H.esc(_yaml_value(val))}</code>" for k, val in ov.items())
        rows.append([H.esc(variant_label(v)), text or '<span class="note">the scenario as written</span>'])
    return H.table(["variant", "overrides"], rows, text_columns=2)


def _yaml_value(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list, bool)) or value is None else str(value)


def _over_time(figs: _Figures, requests: Mapping[str, pd.DataFrame], events: pd.DataFrame, pal: plots.Palette,
               window: float, one: str, shaded: str) -> list[str]:
    """Success rate and goodput per time window, one line per variant."""
    return [
        figs.html(lambda: plots.variants_over_time(requests, events=events, metric="success_rate",
                                                   window=window, palette=pal),
                  alt="success rate over time",
                  caption=f"Success rate of the requests started in each {window:g} s window ({one}){shaded}."),
        figs.html(lambda: plots.variants_over_time(requests, events=events, metric="goodput",
                                                   window=window, palette=pal),
                  alt="goodput over time",
                  caption=f"Goodput: successful requests started per second ({one}){shaded}."),
    ]


def _scenario_figures(figs: _Figures, df: pd.DataFrame, frames: Mapping[str, RunFrames], pal: plots.Palette,
                      sc: Scenario, seed: int) -> list[str]:
    requests = {v: f.requests for v, f in frames.items()}
    attempts = {v: f.attempts for v, f in frames.items()}
    events = next(iter(frames.values())).events
    one = f"one run per variant, seed {seed}"
    out = ["<h3>Latency</h3>",
           figs.html(lambda: plots.percentile_bars(df, palette=pal), alt="latency percentiles",
                     caption=f"Latency percentiles of successful requests per variant: mean over "
                             f"{replication_count(df)} replication(s) with 95 % confidence intervals."),
           figs.html(lambda: plots.latency_ccdf(requests, palette=pal), alt="latency CCDF",
                     caption=f"Latency tail: share of successful requests slower than x, log scales ({one})."),
           figs.html(lambda: plots.latency_cdf(requests, palette=pal), alt="latency CDF",
                     caption=f"Latency distribution of successful requests ({one}).")]
    window = sc.timeline_step
    faults = fault_intervals(events) if len(events) else None
    shaded = "; faults shaded" if faults is not None and len(faults) else ""
    starts = pd.concat([r["start"] for r in requests.values()]) if requests else pd.Series(dtype=float)
    # a burst that starts together (e.g. N contenders at t=0) has no time course to show
    spread = len(starts) > 0 and (starts.max() - starts.min()) >= 3 * window
    if spread:
        out.append("<h3>Over time</h3>")
        out += _over_time(figs, requests, events, pal, window, one, shaded)
    ended = [] if faults is None else [str(f) for f, e in zip(faults["fault"], faults["end"]) if math.isfinite(e)]
    if ended:
        out.append("<h3>Thundering herd</h3>")
        for fault in ended[:MAX_HERD_FIGURES]:
            out.append(figs.html(lambda fault=fault: plots.herd(attempts, events=events, fault=fault, palette=pal),
                                 alt=f"herd after {fault}",
                                 caption=f"Tries arriving at the burstiest service in 100 ms windows around the "
                                         f"end of {fault} ({one})."))
        if len(ended) > MAX_HERD_FIGURES:
            out.append(f'<p class="note">Herd figures of the first {MAX_HERD_FIGURES} of {len(ended)} faults.</p>')
    out.append("<h3>Timelines</h3>")
    for v, f in frames.items():
        extras = [shaded[2:]] if shaded else []
        if len(f.events) and (f.events["kind"].astype(str) == "breaker").any():
            extras.append("circuit breaker states as a band")
        if sc.warmup:
            extras.append("dotted line: end of warm-up")
        out.append(figs.html(
            lambda f=f, v=v: plots.timeline(requests=f.requests, timeline=f.timeline, events=f.events,
                                            window=window, warmup=sc.warmup, style=pal[v], title=variant_label(v)),
            alt=f"timeline of {variant_label(v)}",
            caption=f"{variant_label(v)}, seed {seed}: offered load and goodput, tries arriving at each service, "
                    "success rate and p99 latency of the requests started in each window"
                    + "".join(f"; {e}" for e in extras) + "."))
    return out


# ---------------------------------------------------------------------------- results report


def results_report(results: pd.DataFrame, *, title: str | None = None, reference: str | None = None,
                   figure_format: str = "png", dpi: int = 100, confidence: float = 0.95,
                   generated: str | None = None) -> str:
    """The HTML report of a results frame: a sweep (swept parameter columns) or replications.

    Replications (no parameter column) get the comparison table, verdict and percentile
    bars. A sweep gets its design points with intervals, one figure per parameter (one
    parameter) or heatmaps (two), the Pareto front, and a verdict naming the best points.
    """
    if not isinstance(results, pd.DataFrame) or results.empty:
        raise ReportError("results: expected a non-empty DataFrame")
    figs = _Figures(figure_format, dpi)
    df = results.copy()
    df["variant"] = df["variant"].fillna("").astype(str) if "variant" in df.columns else ""
    meta = results.attrs.get("sweep") or {}
    if title:
        name = title
    elif meta.get("scenario_name"):
        name = str(meta["scenario_name"])
    elif "scenario" in df.columns and df["scenario"].nunique() == 1:
        name = str(df["scenario"].iloc[0])
    else:
        name = "results"
    params = plots.sweep_parameters(df)
    failed = df.loc[df["error"].notna() & (df["error"].astype(str) != "")] if "error" in df.columns else df.iloc[:0]
    ok = df.drop(index=failed.index)
    if ok.empty:
        raise ReportError(f"results: every one of the {len(df)} runs failed; first error: {failed['error'].iloc[0]}")
    body = [f"<h1>{H.esc(name)}</h1>"]
    if not params:
        body += _replications_body(ok, figs, reference=reference, confidence=confidence)
    else:
        body += _sweep_body(ok, params, figs, confidence=confidence)
        if meta:
            body.append(H.section("Sweep settings", _sweep_settings(meta)))
    if len(failed):
        body.append(H.section("Failed runs", H.esc(f"{len(failed)} of {len(df)} runs failed and are left out; "
                                                   f"first error: {failed['error'].iloc[0]}")))
    return H.page(f"simres report: {name}", body, footer=_footer(generated))


def _replications_body(df: pd.DataFrame, figs: _Figures, *, reference: str | None, confidence: float) -> list[str]:
    n = replication_count(df)
    order = list(dict.fromkeys(df["variant"]))
    pal = plots.Palette(order)
    body = [f'<p class="subtitle">{H.esc(f"{len(order)} variant(s), {n} replication(s) each.")}</p>',
            H.section("Verdict", H.bullets([H.esc(s) for s in verdicts(df, reference=reference,
                                                                       confidence=confidence)], cls="verdict"))]
    parts = _comparison_parts(df, confidence=confidence)
    body.append(H.section("Comparison", *parts))
    body.append(H.section("Figures", figs.html(lambda: plots.percentile_bars(df, palette=pal),
                                               alt="latency percentiles",
                                               caption="Latency percentiles per variant (mean, 95 % CI).")))
    return body


def _sweep_body(df: pd.DataFrame, params: list[str], figs: _Figures, *, confidence: float) -> list[str]:
    metrics = sweep_metrics(df)
    varying = [p for p in params if df[p].nunique(dropna=False) > 1]
    keys = ["variant", *varying]
    points = df.groupby(keys, dropna=False).ngroups if keys else 1
    n = int(df.groupby(keys, dropna=False).size().min())
    order = list(dict.fromkeys(df["variant"]))
    pal = plots.Palette(order)
    subtitle = f"A sweep of {len(varying)} parameter(s): {points} design point(s), {n} replicate(s) each or more."
    body = [f'<p class="subtitle">{H.esc(subtitle)}</p>',
            H.section("Verdict", H.bullets([H.esc(s) for s in sweep_verdicts(df)], cls="verdict"))]
    ptab = [[p, ", ".join(map(str, sorted(df[p].dropna().unique().tolist(), key=_sort_key)))] for p in params]
    body.append(H.section("Swept parameters", H.text_table(["parameter", "values"], ptab, text_columns=2)))
    body.append(H.section("Design points", _points_table(df, keys, metrics, confidence)))
    out: list[str] = []
    show_variants = len(order) > 1
    if len(varying) == 1:
        for m in metrics:
            out.append(figs.html(lambda m=m: plots.amplification(df, x=varying[0], metric=m, palette=pal),
                                 alt=f"{m} against {varying[0]}",
                                 caption=f"{plots.metric_name(m)} against {varying[0]}: mean and {confidence:.0%} "
                                         "CI over replicates" + (", per variant." if show_variants else ".")))
    elif len(varying) == 2:
        for m in metrics:
            out.append(figs.html(lambda m=m: plots.heatmap(df, x=varying[0], y=varying[1], metric=m),
                                 alt=f"heatmap of {m}",
                                 caption=f"Mean {plots.metric_name(m)} over {varying[0]} and {varying[1]}."))
    elif len(varying) > 2:
        out.append('<p class="note">More than two parameters vary: draw heatmaps of two of them with the others '
                   "fixed, e.g. <code>simres plot RESULTS --kind heatmap --x A --y B --where C=VALUE</code>.</p>")
    if {"latency_p99", "success_rate"} <= set(metrics):
        out.append(figs.html(lambda: plots.pareto(df, palette=pal), alt="Pareto front",
                             caption="p99 latency against success rate per design point; filled points are on "
                                     "the Pareto front (no other point is better on both)."))
    if {"latency_p99", "tries_per_request"} <= set(metrics):
        out.append(figs.html(lambda: plots.pareto(df, other="tries_per_request", palette=pal),
                             alt="Pareto front against load",
                             caption="p99 latency against tries per request (extra load) per design point."))
    body.append(H.section("Figures", *out))
    return body


def _sweep_settings(meta: Mapping[str, Any]) -> str:
    """The sweep's recorded settings: scenario, fixed overrides, variants, seed and replicates."""
    rows = [["scenario", H.esc(meta.get("scenario", "-"))], ["root seed", H.esc(meta.get("seed", "-"))],
            ["replicates", H.esc(meta.get("reps", "-"))]]
    for key, value in (meta.get("overrides") or {}).items():
        rows.append(["fixed override", f"<code>{H.esc(key)} = {H.esc(_yaml_value(value))}</code>"])
    for v, ov in (meta.get("variant_overrides") or {}).items():
        text = "<br>".join(f"<code>{H.esc(k)} = {H.esc(_yaml_value(x))}</code>" for k, x in ov.items())
        rows.append([f"variant {H.esc(variant_label(v))}", text or "the scenario as written"])
    return H.table(["setting", "value"], rows, text_columns=2)


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, v) if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else (1, str(v))


def _points_table(df: pd.DataFrame, keys: list[str], metrics: list[str], confidence: float) -> str:
    from simres.metrics.stats import mean_ci

    show = [k for k in keys if k != "variant" or df["variant"].nunique() > 1]
    rows = []
    groups = df.groupby(keys, dropna=False, sort=True) if keys else [((), df)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        lookup = dict(zip(keys, key))
        row = [H.esc(variant_label(str(lookup[k])) if k == "variant" else lookup[k]) for k in show]
        row.append(str(len(part)))
        for m in metrics:
            ci = mean_ci(part[m].to_numpy(dtype=float), confidence=confidence)
            scale, _ = plots.metric_scale(m)
            text = plots.format_number(ci.mean * scale)
            if math.isfinite(ci.halfwidth):
                text += f" ± {plots.format_number(ci.halfwidth * scale)}"
            row.append(H.esc(text))
        rows.append(row)
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        note = f'<p class="note">First {MAX_TABLE_ROWS} of {len(rows)} design points.</p>'
        rows = rows[:MAX_TABLE_ROWS]
    header = [H.esc(k if k == "variant" else k.rsplit(".", 1)[-1]) for k in show] + ["runs"]
    header += [H.esc(plots.metric_scale(m)[1]) for m in metrics]
    return H.table(header, rows, text_columns=len(show)) + note


# ---------------------------------------------------------------------------- entry points


def _footer(generated: str | None) -> str:
    when = f" on {H.esc(generated)}" if generated else ""
    return f"Generated by simres {H.esc(__version__)}{when}. Self-contained: figures and styles are embedded."


def write_report(html_text: str, out: str | os.PathLike[str]) -> Path:
    """Write ``out/index.html`` (creating ``out``) and return its path."""
    d = Path(out)
    if d.suffix.lower() in (".html", ".htm"):
        raise ReportError(f"--out: expected a directory (the report is written to DIR/index.html), got {d}")
    d.mkdir(parents=True, exist_ok=True)
    p = d / "index.html"
    p.write_text(html_text, encoding="utf-8")
    return p


def build_report(source: pd.DataFrame | Scenario | Mapping[str, Any] | str | os.PathLike[str],
                 out: str | os.PathLike[str], *, reps: int = 5, seed: int | None = None,
                 overrides: Mapping[str, Any] | Sequence[str] | None = None, reference: str | None = None,
                 figure_format: str = "png", dpi: int = 100, progress: bool = False, executor: Any = None,
                 generated: str | None = None) -> Path:
    """Write the report of ``source`` to ``out/index.html`` and return the path.

    For a scenario, ``out/headline.png`` (the one-picture summary) is written as well.

    ``source`` is a results frame, a results file (``.parquet`` / ``.csv``, or a directory
    with ``replications.parquet``), or a scenario (Scenario, mapping, file or bundled
    name), which is run: see :func:`scenario_report`.
    """
    if figure_format not in FIGURE_FORMATS:  # checked before any simulation runs
        raise ReportError(f"figure_format: expected one of {', '.join(FIGURE_FORMATS)}, got {figure_format!r}")
    if isinstance(source, pd.DataFrame):
        text = results_report(source, reference=reference, figure_format=figure_format, dpi=dpi,
                              generated=generated)
    elif isinstance(source, (str, os.PathLike)) and is_results_source(source):
        if overrides:
            raise ReportError("--set: overrides apply to a scenario, not to a results file")
        text = results_report(load_results(source), reference=reference, figure_format=figure_format, dpi=dpi,
                              generated=generated)
    else:
        if Path(out).suffix.lower() in (".html", ".htm"):  # fail before simulating
            write_report("", out)
        text = scenario_report(source, reps=reps, seed=seed, overrides=overrides, reference=reference,
                               figure_format=figure_format, dpi=dpi, progress=progress, executor=executor,
                               generated=generated, headline=Path(out) / "headline.png")
    return write_report(text, out)
