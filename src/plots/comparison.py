"""The comparison figure: one row per data set, the truth first, then one column per model,
each model drawn from one seed's run: its density as an image on a 2-D grid, a curve for 1-D
data, a pmf for 1-D discrete data.

The caller rebuilds each run (src/compare.py, through the one run assembly) and hands over the
models, the truth and the data. A cell that cannot be drawn (a model that could not be rebuilt,
data of another kind) says why in the cell; one bad run never costs the whole figure.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.distributions import Distribution

from src.errors import first_line
from src.plots.bars import bars, histogram
from src.plots.continuous_1d import plot_grid
from src.plots.continuous_2d import density_grid, plot_bounds


@dataclass
class Cell:
    title: str  # empty: a blank cell (the model did not run on this data set)
    model: nn.Module | None = None  # the trained density model drawn here
    note: str = ""  # said in the cell when there is no model to draw


@dataclass
class Row:
    data: str
    truth: Distribution | None  # the data set's truth, None for real data
    points: Tensor | None  # the plotting range: truth samples, or the training split
    n_bins: int | None  # discrete data: the number of values
    cells: list[Cell]


def draw(rows: list[Row], path: Path) -> Figure:
    """Draw the grid (rows × (1 + models)) and save it as a PNG at `path`."""
    ncols = 1 + max(len(row.cells) for row in rows)
    fig = Figure(figsize=(4.2 * ncols, 3.6 * len(rows)), layout="constrained")
    grid = fig.add_gridspec(len(rows), ncols)
    for i, row in enumerate(rows):
        with torch.no_grad():
            _draw_row(fig, row, [fig.add_subplot(grid[i, j]) for j in range(ncols)])
    fig.savefig(path, dpi=90)
    return fig


@dataclass
class _Scope:
    """What every cell of a row shares: the kind of drawing, the truth, the plotting range."""

    kind: str  # image (2-D density), curve (1-D density) or pmf (1-D discrete)
    truth: Any  # a torch Distribution, or None
    points: Tensor  # truth samples or the training split
    n_bins: int  # pmf only


def _draw_row(fig: Figure, row: Row, axes: list[Axes]) -> None:
    models = [cell.model or cell.note for cell in row.cells]  # a model, or what to say instead
    drawable = [m for m in models if not isinstance(m, str) and _kind(m)]
    scope = None
    if not drawable or row.points is None:
        _note(axes[0], f"{row.data}: truth", "no model here can be drawn")
    else:
        scope = _scope(row, drawable[0])
        _draw_truth(fig, axes[0], row.data, scope)
    for ax, cell, model in zip(axes[1:], row.cells, models):
        if not cell.title:
            ax.set_axis_off()
        elif isinstance(model, str):
            _note(ax, cell.title, model)
        elif scope is None or _kind(model) != scope.kind:
            _note(ax, cell.title, f"not drawn: {_describe(model)}")
        else:
            try:
                _draw_model(fig, ax, cell.title, scope, model)
            except Exception as error:  # e.g. a log_prob that refuses the grid
                ax.clear()
                _note(ax, cell.title, f"cannot draw the model: {first_line(error)}")


def _kind(model: nn.Module) -> str | None:
    support, shape = model.support, tuple(model.event_shape)
    kinds = {("continuous", (2,)): "image", ("continuous", ()): "curve", ("discrete", ()): "pmf"}
    return kinds.get((support, shape))


def _describe(model: nn.Module) -> str:
    return f"{model.support} events of shape {tuple(model.event_shape)}"


def _scope(row: Row, model: nn.Module) -> _Scope:
    kind = _kind(model)
    n_bins = (row.n_bins or int(row.points.max()) + 1) if kind == "pmf" else 0
    return _Scope(kind, row.truth, row.points, n_bins)


def _draw_truth(fig: Figure, ax: Axes, data: str, scope: _Scope) -> None:
    """The truth's density, or the training data where there is no truth."""
    if scope.truth is not None:
        _draw_density(fig, ax, scope, scope.truth.log_prob, scope.points.dtype)
        ax.set_title(f"{data}: truth", fontsize=9)
        return
    x = scope.points
    if scope.kind == "image":
        shown = x[:5000].float().numpy()
        ax.scatter(shown[:, 0], shown[:, 1], s=1, alpha=0.3, color="grey")
        bounds = plot_bounds(x.float())
        ax.set(xlabel="x₁", ylabel="x₂", xlim=bounds[0], ylim=bounds[1])
    elif scope.kind == "curve":
        histogram(ax, x.float(), 80, density=True, color="grey", alpha=0.5)
        ax.set(xlabel="x", ylabel="density")
    else:
        frequencies = torch.bincount(x.long().flatten(), minlength=scope.n_bins) / x.numel()
        bars(ax, frequencies, color="grey")
        ax.set(xlabel="x", ylabel="frequency")
    ax.set_title(f"{data}: no truth (train data)", fontsize=9)


def _draw_model(fig: Figure, ax: Axes, title: str, scope: _Scope, model: Any) -> None:
    """The model's density; on 1-D data with the truth over it."""
    dtype = next(model.parameters(), torch.zeros(())).dtype
    _draw_density(fig, ax, scope, model.log_prob, dtype)
    if scope.truth is not None and scope.kind == "curve":
        grid = plot_grid(scope.points.float()).to(scope.points.dtype)
        ax.plot(grid, scope.truth.log_prob(grid).exp(), "k--", lw=1, label="truth")
        ax.legend(fontsize=8)
    elif scope.truth is not None and scope.kind == "pmf":
        bins = torch.arange(scope.n_bins)
        ax.plot(bins, scope.truth.log_prob(bins).exp(), "k.", ms=5, label="truth")
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)


def _draw_density(fig: Figure, ax: Axes, scope: _Scope, log_prob, dtype: torch.dtype) -> None:
    if scope.kind == "image":
        bounds = plot_bounds(scope.points.float())
        image = density_grid(log_prob, bounds, torch.zeros((), dtype=dtype))
        shown = ax.imshow(image, origin="lower", extent=[*bounds[0], *bounds[1]], aspect="auto")
        fig.colorbar(shown, ax=ax, label="density")
        ax.set(xlabel="x₁", ylabel="x₂")
    elif scope.kind == "curve":
        grid = plot_grid(scope.points.float()).to(dtype)
        ax.plot(grid.double(), log_prob(grid).exp().double(), lw=2)
        ax.set(xlabel="x", ylabel="density")
    else:
        bins = torch.arange(scope.n_bins)
        bars(ax, log_prob(bins).exp().double(), alpha=0.6)
        ax.set(xlabel="x", ylabel="probability")


def _note(ax: Axes, title: str, text: str) -> None:
    text = textwrap.fill(textwrap.shorten(text, 160), 38)
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set(xticks=[], yticks=[])
    ax.set_title(title, fontsize=9)
