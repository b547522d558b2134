"""The report of a scenario: replications of every variant for the table and the verdict, one run each for the figures.

All variants run with the same seeds (common random numbers); the representative run per
variant uses the first replication's seed, for the figures that need per-request data
(CDF, CCDF, timelines, herds).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from simres.metrics.faults import fault_intervals
from simres.reporting import html as H
from simres.reporting import plots
from simres.reporting._page import MAX_HERD_FIGURES, _Figures, _footer, _frames
from simres.reporting.plots import variant_label
from simres.reporting.sources import ReportError, RunFrames, RunLike
from simres.reporting.tables import _comparison_parts
from simres.reporting.verdicts import replication_count, verdicts
from simres.scenario.loading import load_scenario, resolved_dict
from simres.scenario.schema import Scenario

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
    (:func:`simres.reporting.plots.headline_figure`) is saved too, for a README or a slide.
    """
    from simres.experiments.replications import replicate

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
    base = load_scenario(scenario)  # variants apply to the scenario as written, then the overrides
    reps_df = replicate(base, variants=names, reps=reps, seed=root, progress=progress, executor=executor,
                        overrides=overrides)
    runs = {(v or ""): _frames(r) for v, r in zip(names, _representative_runs(base, names, root, overrides, executor))}
    if headline is not None:
        Path(headline).parent.mkdir(parents=True, exist_ok=True)
        plots.save_headline_figure(headline, requests={v: f.requests for v, f in runs.items()}, reps=reps_df,
                                   events=next(iter(runs.values())).events, title=sc.name)
        # the verdict as text beside the picture, for the terminal (simres report prints it)
        lines = scenario_verdicts(sc, reps_df, runs, reference=reference)
        Path(headline).with_name("verdict.txt").write_text("".join(f"- {s}\n" for s in lines), encoding="utf-8")
    return render_scenario_report(sc, reps_df, runs, seed=root, reference=reference, figure_format=figure_format,
                                  dpi=dpi, generated=generated)


def _representative_runs(base: Scenario, names: Sequence[str | None], seed: int,
                         overrides: Mapping[str, Any] | Sequence[str] | None, executor: Any) -> list[Any]:
    """One run per variant with ``seed``, for the figures: on ``executor`` (the one the replications
    used, so its workers are already warm) when it is a simres executor and there is more than one
    variant, else in this process. The frames come back pickled, so they are the same either way."""
    from simres.experiments.executors import Executor
    from simres.experiments.runs import run

    if not isinstance(executor, Executor) or len(names) < 2:
        return [run(base, seed=seed, variant=v, overrides=overrides) for v in names]
    ov = None if not overrides else dict(overrides) if isinstance(overrides, Mapping) else list(overrides)
    return list(executor.map(_representative_run, [(v, ov, seed) for v in names],
                             shared=base.model_dump(mode="json", by_alias=True)))


def _representative_run(data: dict[str, Any], task: tuple[str | None, Any, int]) -> Any:
    """In a worker: one full run (every frame) of variant ``task[0]`` of the scenario ``data``."""
    from simres.experiments.runs import run

    variant, overrides, seed = task
    return run(data, seed=seed, variant=variant, overrides=overrides)


def scenario_verdicts(scenario: Scenario, reps_df: pd.DataFrame, runs: Mapping[str, RunLike], *,
                      reference: str | None = None, confidence: float = 0.95) -> list[str]:
    """The verdict sentences of a scenario report (the page's first section, and ``verdict.txt``)."""
    frames = {str(k): _frames(v) for k, v in runs.items()}
    df = reps_df.copy()
    df["variant"] = df["variant"].fillna("").astype(str)
    order = list(dict.fromkeys([*df["variant"], *frames]))
    controls = [c for c in scenario.controls if c in order]
    reference = reference if reference is not None else scenario.reference
    if reference is not None and reference not in order:
        reference = None
    return verdicts(df, reference=reference, confidence=confidence, objective=scenario.objective, controls=controls,
                    events={v: f.events for v, f in frames.items()}, queues=_bounded_queues(scenario, order))


def render_scenario_report(scenario: Scenario, reps_df: pd.DataFrame, runs: Mapping[str, RunLike], *,
                           seed: int, reference: str | None = None, figure_format: str = "png", dpi: int = 100,
                           confidence: float = 0.95, generated: str | None = None) -> str:
    """The HTML of a scenario report from results already computed (nothing is simulated here).

    ``reps_df`` is :func:`simres.experiments.replications.replicate`'s frame; ``runs`` maps each variant
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
    subtitle = (f"{len(order)} variant(s): {labels} · {n} replication(s) each, common random numbers "
                f"(root seed {seed}) · figures: one run per variant, seed {seed}")
    body = [f"<h1>{H.esc(sc.name)}</h1>", f'<p class="subtitle">{H.esc(subtitle)}</p>']
    lines = scenario_verdicts(sc, reps_df, runs, reference=reference, confidence=confidence)
    events = next(iter(frames.values())).events
    headline = figs.html(lambda: plots.headline_figure(requests={v: f.requests for v, f in frames.items()}, reps=df,
                                                       events=events, palette=pal),
                         alt="headline: success over time and latency percentiles per variant", cls="headline",
                         caption="Left: success rate per second of requests by start time, faults shaded (one "
                                 f"run per variant, seed {seed}). Right: p50 / p99 / p99.9 per variant, mean "
                                 f"and 95 % CI over {n} replication(s).")
    topo = figs.html(lambda: plots.topology(sc), alt="topology: clients, services and calls with their policies",
                     caption="Calls with their policies; faults in red on their targets; the variants that "
                             "change a call or a service are named on it.")
    body.append(_first_screen(lines, topo, headline))
    controls = [c for c in sc.controls if c in order]
    parts = _comparison_parts(df, confidence=confidence, controls=controls)
    body.append(H.fold_section("Comparison", *parts, anchor="comparison", open=True))
    body.append(H.fold_section("Figures", *_scenario_figures(figs, df, frames, pal, sc, seed), anchor="figures"))
    body.append(H.fold_section("Variants", _variants_table(sc, order), anchor="variants"))
    body.append(H.fold_section("Scenario", *_scenario_parts(sc), anchor="scenario"))
    return H.page(f"simres report: {sc.name}", body, footer=_footer(generated))


def _first_screen(lines: Sequence[str], topology: str, headline: str) -> str:
    """The top of the page: the verdict's key sentences beside the topology, the headline figure below.

    Key sentences: the objective (as context), the best variant, the primary metric against the
    reference, and recovery after each fault; the others (the remaining metrics, controls,
    mechanisms) are one click away, in their original order.
    """
    key, rest = [], []
    primary_seen = False
    for s in lines:
        comparison = " against " in s.split(":", 1)[0] and not s.startswith("Objective:")
        if s.startswith(("Objective:", "Best on the objective", "After ")) or (comparison and not primary_seen):
            key.append(s)
            primary_seen = primary_seen or comparison
        else:
            rest.append(s)
    verdict = H.bullets([H.esc(s) for s in key], cls="verdict context" if key and key[0].startswith("Objective:")
                        else "verdict")
    if rest:
        verdict += "\n" + H.details(f"The rest of the verdict ({len(rest)} more: other metrics, controls, "
                                     "mechanisms)", H.bullets([H.esc(s) for s in rest], cls="verdict"), cls="more")
    links = H.nav([("comparison", "Comparison"), ("figures", "Figures"), ("variants", "Variants"),
                   ("scenario", "Scenario")])
    return "\n".join(['<section id="verdict">', '<div class="first">',
                      f"<div>\n<h2 hidden>Verdict</h2>\n{verdict}\n{links}\n</div>", f"<div>\n{topology}\n</div>",
                      headline, "</div>", "</section>"])


def _bounded_queues(sc: Scenario, variants: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per variant, its services with a bounded queue and the capacity (for the verdict's mechanisms)."""
    out = {}
    for v in variants:
        vs = load_scenario(sc, variant=v) if v in sc.variants else sc
        out[v] = {n: s.queue.capacity for n, s in vs.services.items() if s.queue.capacity is not None}
    return out


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
    parts.append(H.text_table(["", ""], facts, text_columns=2, sortable=False))
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
    scale = plots.timeline_scale(frames, window=window)  # one time axis and one y scale per panel for all
    for v, f in frames.items():
        extras = [shaded[2:]] if shaded else []
        if len(f.events) and (f.events["kind"].astype(str) == "breaker").any():
            extras.append("circuit breaker states as a band")
        if sc.warmup:
            extras.append("dotted line: end of warm-up")
        out.append(figs.html(
            lambda f=f, v=v: plots.timeline(requests=f.requests, timeline=f.timeline, events=f.events,
                                            window=window, warmup=sc.warmup, style=pal[v], scale=scale,
                                            title=variant_label(v)),
            alt=f"timeline of {variant_label(v)}",
            caption=f"{variant_label(v)}, seed {seed}: offered load and goodput, tries arriving at each service, "
                    "success rate and p99 latency of the requests started in each window"
                    + "".join(f"; {e}" for e in extras) + "; the same axes in every variant's timeline."))
    return out
