"""scikit-learn's two interleaving half circles: the familiar 2-D picture, with no truth."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from sklearn.datasets import make_moons

from src.data.tensor_datamodule import SPLITS, TensorDataModule
from src.utils.constraints import Constraint, Integer, OneOf, Real


class MoonsDataModule(TensorDataModule):
    constraints: ClassVar[dict[str, Constraint]] = {
        "n_train": Integer(low=1),
        "n_val": Integer(low=1),
        "n_test": Integer(low=1),
        "noise": Real(low=0),
        "dim": OneOf(2),  # the moons are 2-D
    }

    def __init__(
        self,
        n_train: int = 5000,
        n_val: int = 1000,
        n_test: int = 5000,
        noise: float = 0.05,
        dim: int = 2,
        batch_size: int | None = 256,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        self.dim = dim
        sizes = (n_train, n_val, n_test)
        seeds = np.random.SeedSequence(seed).generate_state(len(SPLITS))
        for split, n, split_seed in zip(SPLITS, sizes, seeds):
            x, _ = make_moons(n, noise=float(noise), random_state=int(split_seed))
            self.splits[split] = torch.from_numpy(x).float()
