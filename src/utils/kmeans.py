"""k-means++ seeding: the initial centres of every mixture fit (GMM by gradient or EM, CAVI)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def kmeans_plus_plus(
    x: Tensor, k: int, generator: torch.Generator, weights: Tensor | None = None
) -> Tensor:
    """k centres [k, D] by greedy k-means++ seeding (as scikit-learn seeds k-means).

    Each next centre is the best, by the resulting Σ_n min-distance², of 2 + ⌊log k⌋ candidates
    drawn ∝ squared distance to the nearest centre so far; plain k-means++ (one candidate)
    too often puts two seeds in one cluster, a local optimum neither EM nor gradient descent
    leaves. Points all equal to a centre give zero distances: the draw is then uniform.
    With `weights` [N] (≥ 0) a point counts w_n times: every draw is ∝ w_n (the first) or
    w_n × its squared distance, and the potential is Σ_n w_n min-distance².
    """
    trials = 2 + int(math.log(k))
    if weights is None:
        first = torch.randint(len(x), (1,), generator=generator, device=x.device)
        mass = torch.ones(len(x), dtype=x.dtype, device=x.device)
    else:
        mass = weights.to(x.dtype)
        first = torch.multinomial(mass, 1, generator=generator)
    centres = [x[first]]
    nearest = (x - centres[0]).square().sum(-1)
    for _ in range(k - 1):  # a loop over components, not over points
        odds = nearest.clamp_min(0) * mass  # × 1 is exact: unweighted draws are unchanged
        if not bool(odds.sum() > 0):
            odds = mass
        picks = torch.multinomial(odds, trials, True, generator=generator)
        candidate = torch.minimum(nearest, torch.cdist(x[picks], x).square())  # [T, N]
        best = (candidate * mass).sum(-1).argmin()
        centres.append(x[picks[best]].unsqueeze(0))
        nearest = candidate[best]
    return torch.cat(centres)


def subsample(
    x: Tensor, limit: int, seed: int, weights: Tensor | None = None
) -> tuple[Tensor, Tensor | None]:
    """At most `limit` rows of x and their weights, a seeded choice without replacement (all of
    x, in order, when it is small enough): the same rows on every process, whatever the batch
    size."""
    if len(x) <= limit:
        return x, weights
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(x), generator=generator)[:limit].sort().values
    return x[rows.to(x.device)], None if weights is None else weights[rows.to(weights.device)]
