"""2-D continuous data: the model's density next to the truth's, samples over data, ellipses.

Data of any dimension D ≥ 2 are drawn in their first two coordinates; densities need D = 2.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

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
def fit(model, datamodule) -> dict[str, Figure]:
    """Model density | truth density (if known) | training data, with GMM ellipses."""
    x = datamodule.train_x
    bounds = plot_bounds(x)
    like = next(model.parameters())
    truth = getattr(datamodule, "truth", None)
    panels = [("model", lambda p: model.log_prob(p.to(like)))]
    if truth is not None:
        panels.append(("truth", lambda p: truth.log_prob(p.cpu().double())))
    fig = Figure(figsize=(4.2 * (len(panels) + 1), 4), layout="constrained")
    extent = [*bounds[0], *bounds[1]]
    for i, (title, log_prob) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels) + 1, i + 1)
        if x.shape[1] == 2:
            image = ax.imshow(
                density_grid(log_prob, bounds, like), origin="lower", extent=extent, aspect="auto"
            )
            fig.colorbar(image, ax=ax, label="density")
        ax.set(title=f"{title} density", xlim=bounds[0], ylim=bounds[1], xlabel="x₁", ylabel="x₂")
    ax = fig.add_subplot(1, len(panels) + 1, len(panels) + 1)
    shown = x[:5000].float().cpu().numpy()
    ax.scatter(shown[:, 0], shown[:, 1], s=1, alpha=0.3, color="grey")
    if hasattr(model, "covariance"):
        _ellipses(ax, model)
    ax.set(title="train data", xlim=bounds[0], ylim=bounds[1], xlabel="x₁", ylabel="x₂")
    return {"density": fig}


@torch.no_grad()
def samples(model, datamodule, n: int = 5000) -> dict[str, Figure]:
    """Model samples over the test data."""
    drawn = model.sample(n).float().cpu().numpy()
    x = datamodule.splits["test"]
    bounds = plot_bounds(x)
    shown = x[:n].float().cpu().numpy()
    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(shown[:, 0], shown[:, 1], s=1, alpha=0.3, color="grey", label="test data")
    ax.scatter(drawn[:, 0], drawn[:, 1], s=1, alpha=0.3, color="C0", label="model samples")
    ax.set(title="samples", xlim=bounds[0], ylim=bounds[1], xlabel="x₁", ylabel="x₂")
    ax.legend(markerscale=8)
    return {"samples": fig}
