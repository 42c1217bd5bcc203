"""Continuous data on ℝ^D: in 2-D the model's density next to the truth's, samples over data,
ellipses; for D > 2 a corner figure of every 1-D and 2-D marginal (src/plots/corner.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from src.plots.corner import DATA_COLOR, SAMPLE_COLOR, column_labels, corner, marker_size

GRID = 200


def plot_bounds(x: torch.Tensor) -> list[tuple[float, float]]:
    levels = torch.tensor([0.002, 0.998], dtype=x.dtype, device=x.device)
    out = []
    for column in x[:, :2].T:
        lo, hi = torch.quantile(column, levels).tolist()
        pad = 0.15 * (hi - lo) + 1e-3
        out.append((lo - pad, hi + pad))
    return out


def density_grid(log_prob, bounds, like: torch.Tensor) -> np.ndarray:
    axes = [torch.linspace(lo, hi, GRID, dtype=like.dtype, device=like.device) for lo, hi in bounds]
    gx, gy = torch.meshgrid(*axes, indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    return log_prob(points).exp().reshape(GRID, GRID).float().cpu().numpy()


def _ellipses(ax, model) -> None:
    """One 2-σ ellipse per mixture component, its line width ∝ its weight."""
    cov = model.covariance().detach().float().cpu()[:, :2, :2]
    loc = model.loc.detach().float().cpu()[:, :2]
    weights = torch.softmax(model.logits.detach().float().cpu(), -1)
    values, vectors = torch.linalg.eigh(cov)
    for mean, val, vec, w in zip(loc, values, vectors, weights):
        angle = math.degrees(math.atan2(vec[1, 1], vec[0, 1]))
        width, height = (4 * val.clamp_min(0).sqrt()).flip(0).tolist()
        ax.add_patch(
            Ellipse(
                mean.tolist(),
                width,
                height,
                angle=angle,
                fill=False,
                color="red",
                lw=0.5 + 8 * float(w),
            )
        )


@torch.no_grad()
def fit(model, datamodule, n: int = 5000) -> dict[str, Figure]:
    """2-D: model density | truth density (if known), on one colour scale so their heights
    compare, | training data with GMM ellipses. D > 2: the corner of model samples vs the
    training data."""
    x = datamodule.train_x
    names = column_labels(datamodule.column_names, x.shape[1])
    if x.shape[1] > 2:
        drawn = model.sample(n).float().cpu().numpy()
        return {"density": corner(drawn, x.float().cpu().numpy(), names, "train data")}
    bounds = plot_bounds(x)
    like = next(model.parameters())
    truth = getattr(datamodule, "truth", None)
    panels = [("model", lambda p: model.log_prob(p.to(like)))]
    if truth is not None:
        panels.append(("truth", lambda p: truth.log_prob(p.cpu().double())))
    grids = [density_grid(log_prob, bounds, like) for _, log_prob in panels]
    norm = Normalize(0, max(float(np.nanmax(g, initial=0)) for g in grids) or 1)
    fig = Figure(figsize=(4.2 * (len(panels) + 1), 4), layout="constrained")
    extent = [*bounds[0], *bounds[1]]
    labels = {"xlim": bounds[0], "ylim": bounds[1], "xlabel": names[0], "ylabel": names[1]}
    density_axes = []
    for i, ((title, _), grid) in enumerate(zip(panels, grids)):
        ax = fig.add_subplot(1, len(panels) + 1, i + 1)
        image = ax.imshow(grid, origin="lower", extent=extent, aspect="auto", norm=norm)
        ax.set(title=f"{title} density", **labels)
        density_axes.append(ax)
    fig.colorbar(image, ax=density_axes, label="density")
    ax = fig.add_subplot(1, len(panels) + 1, len(panels) + 1)
    shown = x[:5000].float().cpu().numpy()
    ax.scatter(shown[:, 0], shown[:, 1], s=1, alpha=0.3, color="grey")
    if hasattr(model, "covariance"):
        _ellipses(ax, model)
    ax.set(title="train data", **labels)
    return {"density": fig}


@torch.no_grad()
def samples(model, datamodule, n: int = 5000) -> dict[str, Figure]:
    """Model samples with the test data drawn over them (above, larger, in a contrasting
    colour), so a model that covers the data does not hide it; D > 2: their corner."""
    drawn = model.sample(n).float().cpu().numpy()
    x = datamodule.splits["test"]
    names = column_labels(datamodule.column_names, x.shape[1])
    if x.shape[1] > 2:
        return {"samples": corner(drawn, x.float().cpu().numpy(), names)}
    bounds = plot_bounds(x)
    shown = x[: n // 5].float().cpu().numpy()  # over all n samples, n test points hide them
    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(drawn[:, 0], drawn[:, 1], s=1, alpha=0.25, color=SAMPLE_COLOR, label="model samples")
    ax.scatter(
        shown[:, 0],
        shown[:, 1],
        s=marker_size(len(shown)),
        alpha=0.6,
        color=DATA_COLOR,
        zorder=3,
        label="test data",
    )
    ax.set(title="samples", xlim=bounds[0], ylim=bounds[1], xlabel=names[0], ylabel=names[1])
    ax.legend(markerscale=2)
    return {"samples": fig}
