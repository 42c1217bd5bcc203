"""The datamodule every data set shares: splits held as tensors on the training device.

Subclasses fill `splits` (train/val/test tensors, first dimension = examples) and, when a truth
is known, `oracle_log_prob` (its log-density of each test point). Integer data is discrete,
floating-point data continuous. Under DDP each rank keeps its own shard of every split.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import Tensor

from src.data.batches import TensorBatches
from src.utils.checks import positive_int

SPLITS = ("train", "val", "test")


class TensorDataModule(pl.LightningDataModule):
    def __init__(self, batch_size: int | None, seed: int) -> None:
        super().__init__()
        if batch_size is not None:
            positive_int("batch_size", batch_size)
        self.batch_size, self.seed = batch_size, seed
        self.splits: dict[str, Tensor] = {}
        self.oracle_log_prob: Tensor | None = None
        self._shards: dict[str, tuple[Tensor, ...]] = {}

    @property
    def train_x(self) -> Tensor:
        return self.splits["train"]

    @property
    def support(self) -> str:
        return "continuous" if torch.is_floating_point(self.train_x) else "discrete"

    @property
    def event_shape(self) -> torch.Size:
        return self.train_x.shape[1:]

    def setup(self, stage: str | None = None) -> None:
        """Move this rank's shard of every split to the training device (once)."""
        if self._shards:
            return
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer else torch.device("cpu")
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        tensors = {s: (x,) for s, x in self.splits.items()}
        if self.oracle_log_prob is not None:
            tensors["test"] += (self.oracle_log_prob,)
        self._shards = {
            s: tuple(t[rank::world].to(device) for t in ts) for s, ts in tensors.items()
        }

    def train_dataloader(self) -> TensorBatches:
        epoch = (lambda: self.trainer.current_epoch) if self.trainer else None
        return TensorBatches(self._shards["train"], self.batch_size, True, self.seed, epoch)

    def val_dataloader(self) -> TensorBatches:
        return TensorBatches(self._shards["val"], None, shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(self._shards["test"], None, shuffle=False)
