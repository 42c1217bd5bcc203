"""Corner figure of D-dimensional data: every 1-D and 2-D marginal of model samples vs data.

A density on ℝ^D, D > 2, has no image; its marginals do. The diagonal holds each column's
histogram (model samples filled, data outlined, same bins), the panels below it each pair's
2-D histogram of the samples with the data points drawn on top, so both stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from numpy.typing import ArrayLike

MAX_COLUMNS = 6  # beyond 6 the panels are too small to read; the figure says what it left out
MAX_POINTS = 500  # data points per pair panel, so the samples show between them; histograms: all
PAIR_BINS = 40  # 2-D histogram of the samples, per axis
SAMPLE_COLOR, DATA_COLOR = "C0", "C1"


def column_labels(names: Sequence[str] | None, d: int) -> list[str]:
    """A table's column names, else x₁, x₂, … (synthetic data have no names)."""
    if names is not None:
        return list(names)
    subscripts = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
    return [f"x{str(j + 1).translate(subscripts)}" for j in range(d)]


def marker_size(n: int) -> float:
    """Scatter marker area for n data points: a few stand out, thousands do not cover all."""
    return float(np.clip(100 / np.sqrt(max(n, 1)), 2, 10))


def corner(
    samples: ArrayLike, points: ArrayLike, names: Sequence[str], points_label: str = "test data"
) -> Figure:
    """Marginals of `samples` (model, [N, D]) against `points` (data, [M, D]) in the first
    MAX_COLUMNS columns, labelled by `names`; the plotting range is the data's."""
    samples, points = np.asarray(samples, np.float64), np.asarray(points, np.float64)
    samples = samples[np.isfinite(samples).all(1)]  # a diverged sample says nothing of shape
    d = points.shape[1]
    k = min(d, MAX_COLUMNS)
    edges = [_edges(points[:, j], _n_bins(len(points))) for j in range(k)]
    fine = [np.linspace(e[0], e[-1], PAIR_BINS + 1) for e in edges]
    shown = points[:MAX_POINTS]
    size = marker_size(len(shown))
    fig = Figure(figsize=(1.9 * k + 0.6,) * 2, layout="constrained")
    grid = fig.add_gridspec(k, k)
    for i in range(k):
        for j in range(i + 1):
            ax = fig.add_subplot(grid[i, j])
            if i == j:
                _marginal(ax, samples[:, j], points[:, j], edges[j])
                ax.tick_params(left=False, labelleft=False)
            else:
                counts = np.histogram2d(samples[:, j], samples[:, i], [fine[j], fine[i]])[0]
                ax.pcolormesh(
                    fine[j], fine[i], counts.T, cmap="Blues", norm=PowerNorm(0.5), zorder=1
                )
                ax.scatter(shown[:, j], shown[:, i], s=size, color=DATA_COLOR, alpha=0.6, zorder=2)
                ax.set_ylim(edges[i][0], edges[i][-1])
            ax.set_xlim(edges[j][0], edges[j][-1])
            ax.tick_params(labelsize="small", labelbottom=i == k - 1, labelleft=i > 0 and j == 0)
            if i == k - 1:
                ax.set_xlabel(names[j])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
    handles = [Patch(color=SAMPLE_COLOR, alpha=0.5), Line2D([], [], color=DATA_COLOR, marker="o")]
    note = f"first {k} of {d} columns" if k < d else None
    key = fig.add_subplot(grid[0, 1:])  # the empty upper triangle, below the figure's title
    key.set_axis_off()
    key.legend(handles, ["model samples", points_label], loc="upper right", title=note)
    return fig


def _n_bins(n: int) -> int:
    """Rice's rule, 2·n^⅓, within 8…40: a few test points get few, wide bins."""
    return int(np.clip(round(2 * n ** (1 / 3)), 8, 40))


def _edges(column: np.ndarray, bins: int) -> np.ndarray:
    lo, hi = np.quantile(column, [0.002, 0.998])
    pad = 0.15 * (hi - lo) + 1e-3
    return np.linspace(lo - pad, hi + pad, bins + 1)


def _marginal(ax: Axes, samples: np.ndarray, points: np.ndarray, edges: np.ndarray) -> None:
    """Both histograms as densities over all their values, so mass outside the range shows
    as a lower curve rather than being spread over the bins."""
    for values, style in (
        (samples, {"fill": True, "alpha": 0.5, "color": SAMPLE_COLOR}),
        (points, {"fill": False, "color": DATA_COLOR, "lw": 1.5}),
    ):
        counts = np.histogram(values, edges)[0]
        ax.stairs(counts / (max(len(values), 1) * np.diff(edges)), edges, **style)
