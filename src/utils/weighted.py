"""Weighted summaries of data: what a data-driven start (`init_from_data`) and the metrics take
from rows that carry weights (`data.weight_column`).

A weight w_n ≥ 0 counts row n w_n times: the empirical distribution puts mass w_n / Σ w on it.
Each function here is the summary of that distribution, so a row of integer weight w and the
same row repeated w times give the same value (up to rounding), and weights that are all equal
give the unweighted one.
"""

from __future__ import annotations

import torch
from torch import Tensor


def moments(x: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation over the first dimension, Σ w x / Σ w and
    (Σ w (x − mean)² / Σ w)^½: the population moments of the weighted empirical distribution."""
    w = weights.to(x.dtype).reshape(-1, *[1] * (x.dim() - 1))
    total = w.sum()
    mean = (w * x).sum(0) / total
    return mean, ((w * (x - mean).square()).sum(0) / total).sqrt()


def quantile(x: Tensor, weights: Tensor, levels: Tensor) -> Tensor:
    """The quantiles of a 1-D sample at `levels` ∈ [0, 1]: the smallest x whose cumulative
    weight reaches level · Σ w (the inverse of the weighted empirical CDF)."""
    order = x.argsort()
    cumulative = weights.to(torch.float64)[order].cumsum(0)
    targets = levels.to(torch.float64) * cumulative[-1]
    index = torch.searchsorted(cumulative, targets).clamp_max(len(x) - 1)
    return x[order][index]


def merged(x: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The weighted empirical distribution of the rows of `x`: identical rows merged into one
    whose weight is the sum of theirs (1 each without `weights`), in the order of their first
    occurrence; rows of weight 0 dropped. What a seeded initialisation draws from, so that a
    row of weight w and the row repeated w times draw alike. Distinct unweighted rows are
    returned as they are, with None."""
    flat = x.reshape(len(x), -1)
    unique, inverse = torch.unique(flat, dim=0, return_inverse=True)
    if weights is None and len(unique) == len(x):
        return x, None
    positions = torch.arange(len(x), device=x.device)
    first = torch.full((len(unique),), len(x), device=x.device)
    first = first.scatter_reduce(0, inverse, positions, "amin")
    mass = torch.ones(len(x), dtype=torch.float64, device=x.device)
    if weights is not None:
        mass = weights.to(mass)
    total = torch.zeros(len(unique), dtype=torch.float64, device=x.device).index_add(
        0, inverse, mass
    )
    order = first.argsort()
    keep = order[total[order] > 0]
    return x[first[keep]], total[keep]
