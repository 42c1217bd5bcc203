"""The learning-curve figure: per data set, the validation KL gap against training seconds, one
line per run, one colour per model (its seeds share it), so a contender that gets there sooner
shows as a curve that falls sooner.

The gap is an estimate on the validation points and can dip below 0 near convergence, so the
y axis is symmetric-log: linear within ±0.01 nats, logarithmic above, where a goal such as
"within 0.02 nats of the truth" is read off.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

LINEAR_BELOW = 0.01  # nats


Line = tuple[str, Sequence[float], Sequence[float]]  # (model, seconds, values) of one run


def draw(panels: dict[str, list[Line]], path: Path, metric: str) -> Figure:
    """Draw one panel per data set and save the figure as a PNG at `path`."""
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).flatten()
    models = list(dict.fromkeys(model for lines in panels.values() for model, _, _ in lines))
    colours = {m: f"C{i % 10}" for i, m in enumerate(models)}
    for ax, (data, lines) in zip(axes, panels.items()):
        labelled: set[str] = set()
        for model, seconds, values in lines:
            label = None if model in labelled else model
            labelled.add(model)
            ax.plot(seconds, values, color=colours[model], lw=1, label=label)
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_yscale("symlog", linthresh=LINEAR_BELOW)
        ax.set_ylim(bottom=min(0.0, *(min(values) for _, _, values in lines)))
        ax.set(xlabel="training seconds", ylabel=metric, title=data)
        ax.legend(fontsize=8)
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    fig.savefig(path, dpi=90)
    return fig
