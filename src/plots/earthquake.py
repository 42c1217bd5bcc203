"""Earthquake mixture figures: the map of MAP clusters and the posterior of the rates λ_k."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.distributions import Gamma


@torch.no_grad()
def event_map(model, datamodule) -> Figure:
    """Training events coloured by MAP cluster, sized by strength; posterior means of μ_k with
    circles at 2 posterior standard deviations (solid) and at √τ, the cluster spread (dashed)."""
    events = datamodule.train_x
    x, s = events[:, :2], events[:, 2]
    labels = model.assign(events.to(model.m.device)).cpu().numpy()
    q = model.posterior
    m, sd = q.m.detach().cpu().numpy(), q.s.detach().sqrt().cpu().numpy()
    fig = Figure(figsize=(6, 5.5), layout="constrained")
    ax = fig.add_subplot()
    size = 4 + 36 * s.float().numpy() / max(1.0, float(s.max()))
    ax.scatter(*x.numpy().T, c=labels, s=size, cmap="tab10", vmin=0, vmax=9, alpha=0.5, lw=0)
    ax.scatter(*m.T, marker="x", c="k", s=60, label="E[μ_k]")
    angle = np.linspace(0, 2 * math.pi, 100)
    circle = np.stack([np.cos(angle), np.sin(angle)], 1)
    for k, (centre, radius) in enumerate(zip(m, sd)):
        ax.plot(
            *(centre + 2 * radius * circle).T,
            "k-",
            lw=1,
            label="2 sd of q(μ_k)" if k == 0 else None,
        )
        ax.plot(
            *(centre + math.sqrt(model.tau) * circle).T,
            "k--",
            lw=0.6,
            label="√τ" if k == 0 else None,
        )
    truth = getattr(datamodule, "truth", None)
    if truth is not None:
        ax.scatter(*truth.means.numpy().T, marker="+", c="r", s=80, label="true μ_k")
    ax.set(xlabel="x", ylabel="y", title="events by MAP cluster (size ∝ strength)", aspect="equal")
    ax.legend(fontsize="small")
    return fig


@torch.no_grad()
def rate_posteriors(model, datamodule) -> Figure:
    """q(λ_k) = Gamma(a_k, b_k) densities, with the true rates when known."""
    q = model.posterior
    a, b = q.a.detach().cpu(), q.b.detach().cpu()
    mean, sd = a / b, a.sqrt() / b
    grid = torch.linspace(
        max(1e-6, float((mean - 5 * sd).min())), float((mean + 5 * sd).max()), 800, dtype=a.dtype
    )
    density = Gamma(a, b).log_prob(grid[:, None]).exp()
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for k in range(len(a)):
        ax.plot(grid, density[:, k], color=f"C{k}", label=f"q(λ_{k})")
    truth = getattr(datamodule, "truth", None)
    if truth is not None:
        for rate in truth.rates.tolist():
            ax.axvline(rate, color="k", ls=":", lw=1)
    ax.set(xlabel="λ", ylabel="density", title="posterior of the rates (dotted: truth)")
    ax.legend(fontsize="small")
    return fig


def fit(model, datamodule) -> dict[str, Figure]:
    return {"map": event_map(model, datamodule)}


def samples(model, datamodule) -> dict[str, Figure]:
    return fit(model, datamodule) | {"rates": rate_posteriors(model, datamodule)}
