"""Importance sampling figures: the running estimate against the number of walks, and the
weights of the walks that won."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

from src.plots.bars import histogram


def importance_figures(y: torch.Tensor, log_w_won: torch.Tensor, exact: float, q: float) -> dict:
    """`y` = 1[win]·w per walk (in drawing order), the winners' log-weights, the exact P(win)."""
    y64 = y.double().numpy()
    n = np.arange(1, len(y64) + 1)
    mean = np.cumsum(y64) / n
    second = np.cumsum(y64**2) / n
    se = np.sqrt(np.clip(second - mean**2, 0, None) / np.maximum(n - 1, 1))
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(n, mean, label=f"estimate (q = {q:.3g})")
    ax.fill_between(n, mean - 2 * se, mean + 2 * se, alpha=0.3, label="± 2 se")
    ax.axhline(exact, color="k", ls="--", lw=1, label=f"exact {exact:.4g}")
    ax.set(xscale="log", xlabel="walks", ylabel="P(win)", title="importance-sampling estimate")
    ax.legend(fontsize="small")
    weights = Figure(figsize=(6.5, 4), layout="constrained")
    ax_w = weights.add_subplot()
    if len(log_w_won):
        histogram(ax_w, log_w_won.double() / math.log(10), 60, color="C1")
    ax_w.set(
        xlabel="log₁₀ w of a winning walk",
        ylabel="walks",
        title=f"weights of the {len(log_w_won)} winning walks",
    )
    return {"estimate": fig, "weights": weights}
