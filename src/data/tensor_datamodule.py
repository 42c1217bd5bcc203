"""The datamodule every data set shares: splits held as tensors on the training device.

Subclasses fill `splits` (train/val/test tensors, first dimension = examples) and, per split,
optional named `extras` of the same length: the truth's log-density of each test point
(`oracle_log_prob`, set through `attach_truth_log_prob`), true cluster labels, the rows' weights
(`weight`, from `weight_column`), ... Batches carry them by name. Integer data is discrete,
floating-point data continuous. Under DDP each rank keeps its own shard of every split, and
every rank takes the same number of batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import Tensor

from src.data.batches import Batch, TensorBatches
from src.utils.constraints import Constraint, Integer, Nullable

SPLITS = ("train", "val", "test")
EVAL_BATCH_SIZE = 2**16  # validation and test in chunks: memory stays flat in the test size


class TensorDataModule(pl.LightningDataModule):
    """A `DataSource` (src/data/protocol.py); a subclass sets what applies to its data."""

    dim: int | None = None
    n_bins: int | None = None
    column_names: list[str] | None = None
    standardization: tuple[Tensor, Tensor] | None = None
    weight_column: str | None = None

    constraints: ClassVar[dict[str, Constraint]] = {
        "batch_size": Nullable(Integer(low=1)),  # null: full batch
        "seed": Integer(low=0),
    }

    def __init__(self, batch_size: int | None, seed: int) -> None:
        super().__init__()
        self.batch_size, self.seed = batch_size, seed
        self.splits: dict[str, Tensor] = {}
        self.extras: dict[str, dict[str, Tensor]] = {split: {} for split in SPLITS}
        self.truth = None
        self.eval_batch_size = EVAL_BATCH_SIZE  # the run assembly lowers it for a large model
        self._shards: dict[str, Batch] = {}

    @property
    def oracle_log_prob(self) -> Tensor | None:
        return self.extras["test"].get("oracle_log_prob")

    def attach_truth_log_prob(self, log_prob: Callable[[Tensor], Tensor]) -> None:
        """The truth's log-density of every validation and test point, carried by their batches:
        the KL gap is then scored during training (`val/kl_gap`, a learning curve) and at test."""
        for split in ("val", "test"):
            self.extras[split]["oracle_log_prob"] = log_prob(self.splits[split])

    @property
    def train_x(self) -> Tensor:
        return self.splits["train"]

    @property
    def train_weights(self) -> Tensor | None:
        return self.extras["train"].get("weight")

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
        self._world = world
        self._shards = {
            split: {
                name: t[rank::world].to(device)
                for name, t in ({"x": x} | self.extras[split]).items()
            }
            for split, x in self.splits.items()
        }

    def transfer_batch_to_device(
        self, batch: Batch, device: torch.device, dataloader_idx: int
    ) -> Batch:
        """`setup` placed every split on the training device, so a batch of it is returned as it
        is: Lightning's general walk over the batch took a twentieth of a flow1d step."""
        if all(t.device == device for t in batch.values()):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def _batches(self, split: str, batch_size: int | None, shuffle: bool, epoch=None):
        """Every rank takes as many batches as the largest shard needs."""
        largest = math.ceil(len(self.splits[split]) / getattr(self, "_world", 1))
        size = min(batch_size or largest, largest) or 1
        n_batches = math.ceil(largest / size)
        shard = self._shards[split]
        return TensorBatches(shard, size, shuffle, self.seed, epoch, n_batches)

    def train_dataloader(self) -> TensorBatches:
        epoch = (lambda: self.trainer.current_epoch) if self.trainer else None
        return self._batches("train", self.batch_size, True, epoch)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", self.eval_batch_size, False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", self.eval_batch_size, False)
