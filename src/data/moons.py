"""scikit-learn's two interleaving half circles: the familiar 2-D picture, with no truth."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import make_moons

from src.data.tensor_datamodule import SPLITS, TensorDataModule
from src.errors import ConfigError
from src.utils.checks import positive_int


class MoonsDataModule(TensorDataModule):
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
        if dim != 2:
            raise ConfigError("dim", dim, "2 (the moons are 2-D)")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
            raise ConfigError("noise", noise, "a number >= 0")
        self.dim = dim
        sizes = [positive_int(f"n_{s}", n) for s, n in zip(SPLITS, (n_train, n_val, n_test))]
        seeds = np.random.SeedSequence(seed).generate_state(len(SPLITS))
        for split, n, split_seed in zip(SPLITS, sizes, seeds):
            x, _ = make_moons(n, noise=float(noise), random_state=int(split_seed))
            self.splits[split] = torch.from_numpy(x).float()
