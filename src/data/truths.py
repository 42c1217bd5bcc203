"""Synthetic truths: distributions with exact `sample` and `log_prob`, checked on construction."""

from __future__ import annotations

import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from src.utils.checks import finite_list, positive_list, probability_vector


def mixture_of_gaussians_1d(
    means: list[float], stds: list[float], weights: list[float]
) -> MixtureSameFamily:
    """Σ_k w_k N(μ_k, σ_k²) on the real line."""
    means = finite_list("means", means)
    stds = positive_list("stds", stds, len(means))
    weights = probability_vector("weights", weights, len(means))
    return MixtureSameFamily(
        Categorical(probs=torch.tensor(weights, dtype=torch.float64)),
        Normal(torch.tensor(means, dtype=torch.float64), torch.tensor(stds, dtype=torch.float64)),
    )
