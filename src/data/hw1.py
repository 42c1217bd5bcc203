"""The 2020 homework data sets for histograms and discretized logistics, reproduced exactly.

Set 1 (d = 20): `numpy.random.RandomState(0)`, 1000 draws of 0.4 + 0.1·randn.
Set 2 (d = 100): a fresh `RandomState(0)`; 10 000 draws a = 0.3 + 0.1·randn, then 10 000 draws
b = 0.8 + 0.05·randn, then 10 000 uniforms u; the point is a where u < 0.5, else b; clipped to
[0, 1]. Both are binned with `np.digitize(s, np.linspace(0, 1, d))`, whose output is the class
index (as in the homework): s < 0 → 0, edges[i−1] ≤ s < edges[i] → i, s ≥ 1 → d. So a clipped 0
lands in bin 1 and bin 0 is empty for set 2; the value d (s ≥ 1, never drawn with this seed) is
merged into bin d − 1, the only departure needed to stay in {0, …, d−1}. The first 80 % is train,
the rest test, in order. The samples are fixed by the recipe: `seed` only shuffles batches.

The exact truth bins the generating density at the same boundaries: bin 0 = (−∞, 0) (empty for
set 2, whose clipping moves that mass to 0, i.e. bin 1), bin i = [edges[i−1], edges[i]) and
bin d − 1 = [edges[d−2], ∞).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch.distributions import Categorical

from src.data.discretized import binned_at
from src.data.tensor_datamodule import TensorDataModule
from src.data.truths import mixture_of_gaussians_1d
from src.utils.constraints import Constraint, OneOf, Real

SETS = {20: 1000, 100: 10_000}  # n_bins → number of draws
TRAIN_FRACTION = 0.8


def recipe_samples(n_bins: int) -> np.ndarray:
    """The continuous draws of the set with `n_bins` bins, before binning."""
    count = SETS[n_bins]
    rng = np.random.RandomState(0)
    if n_bins == 20:
        return 0.4 + 0.1 * rng.randn(count)
    a = 0.3 + 0.1 * rng.randn(count)
    b = 0.8 + 0.05 * rng.randn(count)
    mask = rng.rand(count) < 0.5
    return np.clip(np.where(mask, a, b), 0.0, 1.0)


def recipe_classes(n_bins: int) -> np.ndarray:
    """np.digitize's indices as classes, d (s ≥ 1) merged into d − 1."""
    classes = np.digitize(recipe_samples(n_bins), np.linspace(0.0, 1.0, n_bins))
    return np.minimum(classes, n_bins - 1)


def hw1_truth(n_bins: int) -> Categorical:
    """The exact bin masses of the recipe's generating process."""
    edges = torch.linspace(0.0, 1.0, n_bins, dtype=torch.float64)
    if n_bins == 20:
        return binned_at(torch.distributions.Normal(0.4, 0.1), edges[:-1])
    base = mixture_of_gaussians_1d([0.3, 0.8], [0.1, 0.05], [0.5, 0.5])
    return binned_at(base, torch.cat([torch.tensor([-math.inf]), edges[1:-1]]))


class HW1DataModule(TensorDataModule):
    """`val_fraction` > 0 carves the last part of the 80 % train block (in order) as val;
    0 validates on the test split (monitoring only: the final metrics use the final weights).
    The test split is the recipe's last 20 %, so val_fraction alone is a fraction here, and 0 is
    a choice (no carve), not an empty split."""

    constraints: ClassVar[dict[str, Constraint]] = {
        "n_bins": OneOf(*SETS),
        "val_fraction": Real(0, 1, high_open=True),
    }

    def __init__(
        self,
        n_bins: int = 20,
        val_fraction: float = 0.0,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        self.n_bins = n_bins
        classes = torch.from_numpy(recipe_classes(n_bins)).long()
        split = int(TRAIN_FRACTION * len(classes))
        n_fit = split - round(val_fraction * split)
        self.splits["train"] = classes[:n_fit]
        self.splits["test"] = classes[split:]
        self.splits["val"] = classes[n_fit:split] if n_fit < split else self.splits["test"]
        self.truth = hw1_truth(n_bins)
        self.attach_truth_log_prob(lambda x: self.truth.log_prob(x).float())
