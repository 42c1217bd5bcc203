"""The choose-K figure: one row per group of runs, one panel per criterion (BIC, validation NLL)
against K, mean ± se over seeds, the chosen K marked.

The criteria live on different scales (BIC in nats over the whole training split, the NLL per
point), so each has its own panel and axis rather than one normalised plot. K from 1 to 8 or
more spreads on a log₂ axis, where a doubling sweep (1, 2, 4, 8) is evenly spaced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure


@dataclass
class Series:
    metric: str
    ks: list[int]
    means: list[float]
    ses: list[float]  # NaN where one seed ran
    chosen: int


def draw(rows: list[tuple[str, list[Series]]], path: Path) -> Figure:
    """Draw each (title, series) row and save the figure as a PNG at `path`."""
    ncols = max(len(series) for _, series in rows)
    fig = Figure(figsize=(4.6 * ncols, 3.4 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for (title, series), row in zip(rows, axes):
        for s, ax in zip(series, row):
            _panel(ax, s, title)
        for ax in row[len(series) :]:
            ax.set_axis_off()
    fig.savefig(path, dpi=90)
    return fig


def _panel(ax, s: Series, title: str) -> None:
    errors = [0.0 if math.isnan(e) else e for e in s.ses]
    ax.errorbar(s.ks, s.means, yerr=errors, fmt="o-", ms=4, capsize=3)
    best = s.means[s.ks.index(s.chosen)]
    ax.plot([s.chosen], [best], "*", ms=14, color="tab:red", label=f"chosen: K = {s.chosen}")
    if min(s.ks) > 0 and max(s.ks) >= 8 * min(s.ks):
        ax.set_xscale("log", base=2)
    ax.set_xticks(s.ks, [str(k) for k in s.ks])
    ax.minorticks_off()
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set(xlabel="K (model.n_components)", ylabel=s.metric, title=f"{title}\n{s.metric}")
    ax.title.set_fontsize(9)
    ax.legend(fontsize=8)
