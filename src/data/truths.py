"""Synthetic truths: distributions with exact `sample` and `log_prob`, checked on construction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.distributions import Categorical, MixtureSameFamily, Normal

from src.errors import ConfigError
from src.utils.constraints import ListOf, Probabilities, Real, declare


def one_per_mean(settings: Mapping[str, Any]) -> None:
    """As many stds and weights as means."""
    k = len(settings["means"])
    if len(settings["stds"]) != k:
        raise ConfigError("stds", settings["stds"], f"a list of {k} numbers > 0 (one per mean)")
    if len(settings["weights"]) != k:
        valid = f"a list of {k} non-negative weights that sum to 1 (one per mean)"
        raise ConfigError("weights", settings["weights"], valid)


@declare(
    {
        "means": ListOf(Real()),
        "stds": ListOf(Real(low=0, low_open=True)),
        "weights": Probabilities(),
    },
    one_per_mean,
)
def mixture_of_gaussians_1d(
    means: list[float], stds: list[float], weights: list[float]
) -> MixtureSameFamily:
    """Σ_k w_k N(μ_k, σ_k²) on the real line."""
    return MixtureSameFamily(
        Categorical(probs=torch.tensor(weights, dtype=torch.float64)),
        Normal(torch.tensor(means, dtype=torch.float64), torch.tensor(stds, dtype=torch.float64)),
    )
