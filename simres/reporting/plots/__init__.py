"""Figures from result frames: DataFrames in, a matplotlib ``Figure`` out; nothing simulates here.

Every function builds a fresh ``matplotlib.figure.Figure`` (no pyplot, so no global figure
is ever left open) and returns it; :func:`save_figure` writes it with its metadata removed,
so the same frames always give the same bytes.

Variants keep one style across every figure through a :class:`Palette`: a colour from the
Okabe-Ito colour-blind-safe set, plus a line style, a marker and a hatch, so a figure still
reads when printed in black and white. Build one palette from the ordered variant list and
pass it to every figure of a report.

Three kinds of input:

- per-request frames of several variants (CDF, CCDF, herd, success over time): a mapping
  ``{variant: frame}`` or one concatenated frame with a ``variant`` column;
- one run's frames (timeline): ``requests``, ``timeline``, ``events``;
- a replications frame (``simres.experiments.replications.replicate``) or a sweep frame (one row per run,
  one column per swept parameter named by its dotted path, one column per metric).
"""

from simres.reporting.plots._base import (
    DURATIONS,
    OKABE_ITO,
    Palette,
    PlotError,
    VariantStyle,
    figure_bytes,
    format_number,
    is_share,
    metric_name,
    metric_scale,
    save_figure,
    sweep_parameters,
    variant_label,
)
from simres.reporting.plots.explore import stuck_map
from simres.reporting.plots.headline import headline_figure, save_headline_figure
from simres.reporting.plots.latency import PERCENTILES, latency_ccdf, latency_cdf, percentile_bars
from simres.reporting.plots.sweeps import amplification, heatmap, pareto, pareto_front, pareto_points
from simres.reporting.plots.timeseries import TimelineScale, herd, timeline, timeline_scale, variants_over_time
from simres.reporting.plots.topology import policy_lines, topology

__all__ = [
    "DURATIONS",
    "OKABE_ITO",
    "PERCENTILES",
    "Palette",
    "PlotError",
    "TimelineScale",
    "VariantStyle",
    "amplification",
    "figure_bytes",
    "format_number",
    "headline_figure",
    "heatmap",
    "herd",
    "is_share",
    "latency_ccdf",
    "latency_cdf",
    "metric_name",
    "metric_scale",
    "pareto",
    "pareto_front",
    "pareto_points",
    "percentile_bars",
    "policy_lines",
    "save_figure",
    "save_headline_figure",
    "stuck_map",
    "sweep_parameters",
    "timeline",
    "timeline_scale",
    "topology",
    "variant_label",
    "variants_over_time",
]
