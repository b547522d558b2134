"""The metastability map of ``simres explore``: P(stuck) over two axes, small multiples for the rest.

One panel per variant (rows) and per value of a third axis (columns). Every lattice
position is coloured by the nearest cell that was run (a cell is a dot), so a coarse
region far from the boundary reads as one block and the refined boundary as small cells;
a cell whose interval contains 50 % is hatched (uncertain), and the line is the 50 %
boundary. The colour scale is fixed to 0-100 %, so maps of different variants compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from simres.reporting.plots._base import (
    _figure,
    _styled,
    format_number,
    set_suptitle,
    set_title,
    variant_label,
)

if TYPE_CHECKING:
    from simres.experiments.explore import ExploreResult

CMAP = "YlOrRd"
NOT_RUN = "0.88"
HATCH = "////"


REACH = 0.75
"""How far (in initial grid spacings) a cell's colour reaches; farther positions are blank (not run)."""


def _nearest(px: np.ndarray, py: np.ndarray, nx: int, ny: int, sx: float, sy: float) -> tuple[np.ndarray, np.ndarray]:
    """For every lattice position ``[iy, ix]``: the index of the nearest run cell (initial spacing = 1),
    and whether it is within :data:`REACH` (a panel at a refined value of a third axis holds few cells)."""
    gx, gy = np.meshgrid(np.arange(nx) / sx, np.arange(ny) / sy)
    d = (gx[..., None] - px / sx) ** 2 + (gy[..., None] - py / sy) ** 2
    near = np.argmin(d, axis=-1)  # ties: the cell listed first (cells are sorted by position)
    return near, np.take_along_axis(d, near[..., None], axis=-1)[..., 0] <= REACH**2 + 1e-9


def _ticks(ax: Any, which: str, axis: dict[str, Any]) -> None:
    """Ticks at the initial values (labelled), minor ticks at the positions refinement can add."""
    major = np.arange(0, axis["positions"], axis["scale"])
    labels = [format_number(v) if isinstance(v, int | float) else str(v) for v in axis["values"]]
    if which == "x":
        ax.set_xticks(major, labels)
        ax.set_xticks(np.arange(axis["positions"]), minor=True)
        ax.set_xlabel(axis["path"])
    else:
        ax.set_yticks(major, labels)
        ax.set_yticks(np.arange(axis["positions"]), minor=True)
        ax.set_ylabel(axis["path"])


@_styled
def stuck_map(result: ExploreResult, *, title: str | None = None) -> Figure:
    """The figure of an exploration: the probability of staying stuck, its uncertainty and the boundary."""
    cells, s = result.cells, result.summary
    axes = s["axes"]
    xa, ya, za = axes[0], (axes[1] if len(axes) > 1 else None), (axes[2] if len(axes) > 2 else None)
    variants = s["variants"]
    judged = cells[cells["judged"] > 0]
    facets: list[int | None] = sorted(int(p) for p in judged[f"pos:{za['path']}"].unique()) if za else [None]
    facets = facets or [None]
    nx, ny = xa["positions"], (ya["positions"] if ya else 1)
    ncols, nrows = len(facets), len(variants)
    width = min(max(3.2, 0.28 * nx + 1.6) * ncols + 1.6, 16.0)
    height = min(max(2.2, 0.24 * ny + 1.4) * nrows + 1.6, 20.0)
    fig = _figure(width, height)
    grid = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    image = None
    blank = False
    cmap = matplotlib.colormaps[CMAP].with_extremes(bad=NOT_RUN)
    for r, v in enumerate(variants):
        for c, f in enumerate(facets):
            ax = grid[r, c]
            part = judged[judged["variant"] == v]
            if za is not None:
                part = part[part[f"pos:{za['path']}"] == f]
            name = variant_label(v) if (v or len(variants) > 1) else ""
            if za is not None:
                here = judged.loc[judged[f"pos:{za['path']}"] == f, za["path"]]
                value = here.iloc[0] if len(here) else None
                shown = format_number(value) if isinstance(value, int | float) else str(value)
                name = ", ".join(t for t in (name, f"{za['path']} = {shown}") if t)
            if name:
                set_title(ax, name, fontsize=8)
            ax.grid(False)
            _ticks(ax, "x", xa)
            if ya is not None:
                _ticks(ax, "y", ya)
            else:
                ax.set_yticks([])
            if not len(part):
                ax.text(0.5, 0.5, "no judged runs", transform=ax.transAxes, ha="center", va="center", fontsize=8)
                continue
            px = part[f"pos:{xa['path']}"].to_numpy(dtype=float)
            py = part[f"pos:{ya['path']}"].to_numpy(dtype=float) if ya else np.zeros(len(part))
            near, reached = _nearest(px, py, nx, ny, float(xa["scale"]), float(ya["scale"]) if ya else 1.0)
            p = np.where(reached, part["p_stuck"].to_numpy(dtype=float)[near], np.nan)
            uncertain = (part["verdict"] == "uncertain").to_numpy()[near] & reached
            blank |= bool((~reached).any())
            image = ax.imshow(p, origin="lower", cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                              interpolation="nearest", extent=(-0.5, nx - 0.5, -0.5, ny - 0.5))
            for iy, ix in zip(*np.nonzero(uncertain), strict=True):
                ax.add_patch(Rectangle((ix - 0.5, iy - 0.5), 1, 1, fill=False, hatch=HATCH,
                                       edgecolor="0.35", linewidth=0))
            if ny > 1 and reached.all() and np.nanmin(p) < 0.5 < np.nanmax(p):
                ax.contour(np.arange(nx), np.arange(ny), p, levels=[0.5], colors="black", linewidths=1.3)
            ax.scatter(px, py, s=9, c="black", edgecolors="white", linewidths=0.4, zorder=3)
            ax.set_xlim(-0.5, nx - 0.5)
            ax.set_ylim(-0.5, ny - 0.5)
    if image is not None:
        bar = fig.colorbar(image, ax=grid.ravel().tolist(), shrink=0.9)
        bar.set_label("probability of staying stuck after the trigger")
        bar.set_ticks([0, 0.25, 0.5, 0.75, 1.0], labels=["0 %", "25 %", "50 %", "75 %", "100 %"])
    conf = f"{s['confidence']:.0%}"
    handles = [Line2D([], [], marker="o", linestyle="", markerfacecolor="black", markeredgecolor="white",
                      label=f"a cell that was run ({s['reps']}+ replications; the colour around it is its own)"),
               Patch(facecolor="white", edgecolor="0.35", hatch=HATCH,
                     label=f"uncertain: the {conf} interval includes 50 %"),
               Line2D([], [], color="black", linewidth=1.3, label="boundary: 50 % stuck")]
    if blank:
        handles.append(Patch(facecolor=NOT_RUN, label="no cell run nearby"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3 if width > 9 else 1, fontsize=7, frameon=False)
    text = title or (f"{s['scenario_name']}: where '{s['fault']}' leaves the system stuck "
                     f"({s['runs']} runs; a full grid at this resolution: {s['full_grid_runs']})")
    set_suptitle(fig, text)
    return fig
