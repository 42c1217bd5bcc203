"""Mini-batches as slices of tensors that already live on the training device.

Replaces Dataset + DataLoader + collate: one permutation per epoch, then contiguous views. A
batch is a dict of named tensors (`x`, and e.g. `oracle_log_prob` or `labels`), so a module
asks for what it needs by name. The permutation depends only on (seed, epoch), with the epoch
read from the trainer when one is given, so a run resumed from a checkpoint shuffles exactly as
an uninterrupted one.

`n_batches` fixes the number of batches: under DDP every rank must take the same number of
steps (each step all-reduces), while the shards of N points differ by one in size; a shorter
shard then ends with a short or empty batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

Batch = dict[str, Tensor]


class TensorBatches:
    def __init__(
        self,
        tensors: Batch,
        batch_size: int | None,
        shuffle: bool,
        seed: int = 0,
        epoch: Callable[[], int] | None = None,
        n_batches: int | None = None,
    ) -> None:
        self.tensors, self.shuffle, self.seed, self.epoch = tensors, shuffle, seed, epoch
        self.n = len(tensors["x"])
        self.batch_size = min(batch_size or self.n, self.n) or 1
        self.n_batches = n_batches or math.ceil(self.n / self.batch_size)
        self.passes = 0

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[Batch]:
        tensors = self.tensors
        if self.shuffle:
            epoch = self.epoch() if self.epoch else self.passes
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.n, generator=generator).to(tensors["x"].device)
            tensors = {name: t[perm] for name, t in tensors.items()}
        self.passes += 1
        for start in range(0, self.n_batches * self.batch_size, self.batch_size):
            yield {name: t[start : start + self.batch_size] for name, t in tensors.items()}
