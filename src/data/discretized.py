"""Discrete truths from 1-D continuous ones: exact bin masses, and a synthetic datamodule on them.

A binned truth is a `Categorical` over {0, …, d−1} whose masses are differences of the base's
CDF, so `test/oracle_nll` and `test/kl_gap` are exact for discrete data too. Bin c covers
[t_c, t_{c+1}) with t_0 = −∞ and t_d = +∞: the tails beyond the outer boundaries fall into the
edge bins, as clipping the continuous value into range before binning would put them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import Categorical, Distribution

from src.data.synthetic import SyntheticDataModule
from src.errors import ConfigError
from src.models.bins import BINS
from src.utils.constraints import Constraint, Real


def binned_at(base: Distribution, boundaries: Tensor) -> Categorical:
    """Bins split at the d − 1 increasing `boundaries` (−∞ allowed: an empty bin 0)."""
    boundaries = boundaries.to(torch.float64)
    cdf = base.cdf(boundaries).to(torch.float64)
    cdf = torch.cat([cdf.new_zeros(1), cdf, cdf.new_ones(1)])
    return Categorical(probs=torch.diff(cdf).clamp_min(0))


def binned(base: Distribution, n_bins: int, low: float, high: float) -> Categorical:
    """d equal-width bins over [low, high]; the tails beyond go to the edge bins."""
    edges = torch.linspace(low, high, n_bins + 1, dtype=torch.float64)
    return binned_at(base, edges[1:-1])


class BinnedDataModule(SyntheticDataModule):
    """Seeded splits of integer bin indices (`torch.long`) drawn from `binned(base, …)`."""

    constraints: ClassVar[dict[str, Constraint]] = {"n_bins": BINS, "low": Real(), "high": Real()}

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        if not settings["high"] > settings["low"]:
            raise ConfigError("high", settings["high"], f"a number > low={settings['low']}")

    def __init__(
        self,
        base: Distribution,
        n_bins: int = 32,
        low: float = -4.0,
        high: float = 4.0,
        n_train: int = 5000,
        n_val: int = 1000,
        n_test: int = 20000,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        self.n_bins = n_bins
        truth = binned(base, n_bins, low, high)
        super().__init__(truth, n_train, n_val, n_test, batch_size, seed)
