"""1-D continuous data: learned density over the data, the flow's x → z map, samples."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from src.plots.bars import histogram


def plot_grid(x: torch.Tensor, n: int = 800) -> torch.Tensor:
    lo, hi = torch.quantile(x.float(), torch.tensor([0.001, 0.999], device=x.device)).tolist()
    pad = 0.15 * (hi - lo) + 1e-3
    return torch.linspace(lo - pad, hi + pad, n, device=x.device)


@torch.no_grad()
def fit(model, datamodule) -> dict[str, Figure]:
    """Histogram of the training data, the learned density and (if known) the truth."""
    x = datamodule.train_x
    grid = plot_grid(x)
    param = next(model.parameters())
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    histogram(ax, x.cpu(), 80, density=True, alpha=0.35, color="grey", label="train data")
    density = model.log_prob(grid.to(param)).exp()
    ax.plot(grid.cpu(), density.cpu(), label="model", lw=2)
    truth = getattr(datamodule, "truth", None)
    if truth is not None:
        ax.plot(grid.cpu(), truth.log_prob(grid.cpu()).exp(), "--", label="truth", lw=1.5)
    ax.set(xlabel="x", ylabel="density", title="learned density")
    ax.legend()
    figures = {"density": fig}
    if hasattr(model, "cdf"):  # flows: the map x → z into the base space
        z, _ = model(grid.to(param))
        fig_z = Figure(figsize=(6, 4), layout="constrained")
        ax_z = fig_z.add_subplot()
        ax_z.plot(grid.cpu(), z.cpu())
        ax_z.set(xlabel="x", ylabel="z", title="x → z")
        figures["x_to_z"] = fig_z
    return figures


@torch.no_grad()
def samples(model, datamodule, n: int = 20000) -> dict[str, Figure]:
    """Histogram of model samples over the truth's density (or the test data)."""
    drawn = model.sample(n).float().cpu()
    x_test = datamodule.splits["test"]
    grid = plot_grid(x_test).cpu()
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    histogram(ax, drawn, 80, density=True, alpha=0.5, label="model samples")
    truth = getattr(datamodule, "truth", None)
    if truth is not None:
        ax.plot(grid, truth.log_prob(grid).exp(), "k--", label="truth")
    else:
        histogram(ax, x_test, 80, density=True, fill=False, color="k", label="test data")
    ax.set(xlabel="x", ylabel="density", title="samples")
    ax.legend()
    return {"samples": fig}
