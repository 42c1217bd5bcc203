"""Earthquake mixture figures: the map of MAP clusters and the posterior of the rates λ_k.

A data set in geographic coordinates (`src.data.earthquake.GeoCatalogue`) has locations in km
about its projection's origin (`datamodule.origin` = (lat₀, lon₀)); the axes say so.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch.distributions import Gamma

CMAP = "tab10"


def _axis_labels(datamodule) -> tuple[str, str]:
    origin = getattr(datamodule, "origin", None)
    if origin is None:
        return "x", "y"
    lat0, lon0 = origin
    return (
        f"km east of lon₀ = {lon0:.3f}°  (x = R·Δlon·cos lat₀)",
        f"km north of lat₀ = {lat0:.3f}°  (y = R·Δlat)",
    )


@torch.no_grad()
def _score(model, datamodule) -> str:
    """The model's held-out NLL (nats per event), for titles."""
    test = datamodule.splits.get("test") if hasattr(datamodule, "splits") else None
    if test is None or not len(test):
        return ""
    nll = -float(model.log_prob(test.to(model.m.device)).mean())
    return f", test NLL {nll:.3f} nats/event"


def _colour(k: int, n: int) -> tuple:
    from matplotlib import colormaps

    return colormaps[CMAP](k % 10) if n <= 10 else colormaps["viridis"](k / max(1, n - 1))


@torch.no_grad()
def event_map(model, datamodule) -> Figure:
    """Training events coloured by MAP cluster, sized by strength; posterior means E[μ_k] with
    circles of radius 2√τ (dashed: the cluster's spread, 86 % of a cluster's events) and 2 sd of
    q(μ_k) (solid: the uncertainty of the centre)."""
    events = datamodule.train_x
    x, s = events[:, :2].double().numpy(), events[:, 2].double().numpy()
    labels = model.assign(events.to(model.m.device)).cpu().numpy()
    q = model.posterior
    m, sd = q.m.detach().cpu().numpy(), q.s.detach().sqrt().cpu().numpy()
    k_all = len(m)
    pi = model.log_pi.exp().cpu().numpy()
    rate = (q.a / q.b).detach().cpu().numpy()
    spread = 2 * math.sqrt(float(model.tau))
    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    ax = fig.add_subplot()
    s_max = max(1.0, float(s.max()))
    size = 4 + 60 * s / s_max
    colours = [_colour(int(k), k_all) for k in labels]
    ax.scatter(*x.T, c=colours, s=size, alpha=0.55, lw=0)
    angle = np.linspace(0, 2 * math.pi, 200)
    circle = np.stack([np.cos(angle), np.sin(angle)], 1)
    handles = []
    for k, (centre, radius) in enumerate(zip(m, sd)):
        colour = _colour(k, k_all)
        ax.plot(*(centre + spread * circle).T, "--", color=colour, lw=1.2)
        ax.plot(*(centre + 2 * radius * circle).T, "-", color="k", lw=0.8)
        ax.scatter(*centre, marker="x", c="k", s=50, zorder=3)
        label = f"{k}: π={pi[k]:.2f}, E[λ]={rate[k]:.1f}, n={int((labels == k).sum())}"
        handles.append(Line2D([], [], color=colour, marker="o", ls="", label=label))
    handles += [
        Line2D([], [], color="k", marker="x", ls="", label="E[μ_k]"),
        Line2D([], [], color="0.3", ls="--", label=f"2√τ = {spread:.0f}"),
        Line2D([], [], color="k", ls="-", lw=0.8, label="2 sd of q(μ_k)"),
    ]
    for value in (np.percentile(s, 10), np.median(s), s.max()):
        handles.append(
            Line2D(
                [], [], color="0.5", marker="o", ls="", alpha=0.6,
                markersize=math.sqrt(4 + 60 * value / s_max), label=f"S = {value:.0f}",
            )
        )  # fmt: skip
    truth = getattr(datamodule, "truth", None)
    if truth is not None:
        ax.scatter(*truth.means.numpy().T, marker="+", c="r", s=80)
        handles.append(Line2D([], [], color="r", marker="+", ls="", label="true μ_k"))
    xlabel, ylabel = _axis_labels(datamodule)
    title = (
        f"earthquake mixture, K = {k_all}, τ = {float(model.tau):.4g}{_score(model, datamodule)}"
        "\nevents by MAP cluster, size ∝ strength S"
    )
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, aspect="equal")
    ax.legend(handles=handles, fontsize="x-small", loc="best", framealpha=0.8)
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
        ax.plot(grid, density[:, k], color=_colour(k, len(a)), label=f"q(λ_{k})")
    truth = getattr(datamodule, "truth", None)
    if truth is not None:
        for rate in truth.rates.tolist():
            ax.axvline(rate, color="k", ls=":", lw=1)
    note = " (dotted: truth)" if truth is not None else ""
    ax.set(xlabel="λ", ylabel="density", title=f"posterior of the rates{note}")
    ax.legend(fontsize="small")
    return fig


@torch.no_grad()
def rate_intervals(model, datamodule) -> Figure:
    """Each cluster's rate: posterior mean of λ_k with its 95 % interval (Gamma quantiles),
    beside the mean strength of the training events assigned to it."""
    from scipy.stats import gamma

    q = model.posterior
    a, b = q.a.detach().cpu().double().numpy(), q.b.detach().cpu().double().numpy()
    low, high = gamma.ppf(0.025, a, scale=1 / b), gamma.ppf(0.975, a, scale=1 / b)
    mean = a / b
    events = datamodule.train_x
    labels = model.assign(events.to(model.m.device)).cpu().numpy()
    strength = events[:, 2].double().numpy()
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    k_all = len(a)
    for k in range(k_all):
        colour = _colour(k, k_all)
        ax.errorbar(
            k, mean[k], yerr=[[mean[k] - low[k]], [high[k] - mean[k]]], fmt="o",
            color=colour, capsize=4, label="E[λ_k], 95 % interval" if k == 0 else None,
        )  # fmt: skip
        assigned = strength[labels == k]
        if len(assigned):
            ax.scatter(
                k + 0.2, assigned.mean(), marker="_", s=120, color="k",
                label="mean S of its events" if k == 0 else None,
            )  # fmt: skip
    ax.set(
        xlabel="cluster k",
        ylabel="rate λ_k (S per event)",
        xticks=range(k_all),
        title=f"fitted rates λ_k, K = {k_all}{_score(model, datamodule)}",
    )
    ax.legend(fontsize="small")
    return fig


def fit(model, datamodule) -> dict[str, Figure]:
    return {"map": event_map(model, datamodule)}


def samples(model, datamodule) -> dict[str, Figure]:
    return fit(model, datamodule) | {
        "rates": rate_posteriors(model, datamodule),
        "rate_intervals": rate_intervals(model, datamodule),
    }
