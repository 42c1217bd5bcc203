"""k-means++ seeding: the initial centres of every mixture fit (GMM by gradient or EM, CAVI)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def kmeans_plus_plus(x: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k centres [k, D] by greedy k-means++ seeding (as scikit-learn seeds k-means).

    Each next centre is the best, by the resulting Σ_n min-distance², of 2 + ⌊log k⌋ candidates
    drawn ∝ squared distance to the nearest centre so far; plain k-means++ (one candidate)
    too often puts two seeds in one cluster, a local optimum neither EM nor gradient descent
    leaves. Points all equal to a centre give zero distances: the draw is then uniform.
    """
    trials = 2 + int(math.log(k))
    first = torch.randint(len(x), (1,), generator=generator, device=x.device)
    centres = [x[first]]
    nearest = (x - centres[0]).square().sum(-1)
    for _ in range(k - 1):  # a loop over components, not over points
        weights = nearest.clamp_min(0)
        if not bool(weights.sum() > 0):
            weights = torch.ones_like(weights)
        picks = torch.multinomial(weights, trials, True, generator=generator)
        candidate = torch.minimum(nearest, torch.cdist(x[picks], x).square())  # [T, N]
        best = candidate.sum(-1).argmin()
        centres.append(x[picks[best]].unsqueeze(0))
        nearest = candidate[best]
    return torch.cat(centres)


def subsample(x: Tensor, limit: int, seed: int) -> Tensor:
    """At most `limit` rows of x, a seeded choice without replacement (all of x, in order, when
    it is small enough): the same rows on every process, whatever the batch size."""
    if len(x) <= limit:
        return x
    generator = torch.Generator().manual_seed(seed)
    return x[torch.randperm(len(x), generator=generator)[:limit].sort().values.to(x.device)]
