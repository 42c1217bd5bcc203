"""Synthetic data on ℝ^D that declares its dimension, so a model config can read `${data.dim}`."""

from __future__ import annotations

from torch.distributions import Distribution

from src.data.synthetic import SyntheticDataModule
from src.errors import ConfigError
from src.utils.checks import positive_int


class VectorSyntheticDataModule(SyntheticDataModule):
    def __init__(
        self,
        truth: Distribution,
        dim: int = 2,
        n_train: int = 5000,
        n_val: int = 1000,
        n_test: int = 20000,
        batch_size: int | None = 256,
        seed: int = 0,
    ) -> None:
        positive_int("dim", dim)
        if tuple(truth.event_shape) != (dim,):
            raise ConfigError("dim", dim, f"the truth's dimension, {tuple(truth.event_shape)}")
        self.dim = dim
        super().__init__(truth, n_train, n_val, n_test, batch_size, seed)
