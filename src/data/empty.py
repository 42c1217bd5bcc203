"""A data module without data, for runs whose "data" is their own sampling (estimator
experiments, importance sampling): it only paces the loops. Each training epoch yields
`steps_per_epoch` placeholder batches, validation and test one each, so `trainer.max_steps` (or
`max_epochs` × `steps_per_epoch`) is the number of updates. A placeholder is one zero, not an
empty tensor: Lightning weighs logged values by the batch size it infers, and 0 gives NaN.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor

from src.utils.constraints import Constraint, Integer


class PlaceholderBatches:
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Tensor]:
        return (torch.zeros(1) for _ in range(self.n))


class EmptyDataModule(pl.LightningDataModule):
    """`support` "none" (no events): a density model paired with it is refused by the
    framework's pairing check; the sampling modules refuse any other data module."""

    support = "none"
    event_shape = torch.Size([])
    truth = dim = n_bins = column_names = standardization = batch_size = train_x = None
    weight_column = train_weights = None
    eval_batch_size = 1

    constraints: ClassVar[dict[str, Constraint]] = {"steps_per_epoch": Integer(low=1)}

    def __init__(self, steps_per_epoch: int = 1000) -> None:
        super().__init__()
        self.steps_per_epoch = steps_per_epoch

    def train_dataloader(self) -> PlaceholderBatches:
        return PlaceholderBatches(self.steps_per_epoch)

    def val_dataloader(self) -> PlaceholderBatches:
        return PlaceholderBatches(1)

    def test_dataloader(self) -> PlaceholderBatches:
        return PlaceholderBatches(1)
