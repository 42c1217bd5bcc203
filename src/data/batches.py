"""Mini-batches as slices of tensors that already live on the training device.

Replaces Dataset + DataLoader + collate: one permutation per epoch, then contiguous views.
The permutation depends only on (seed, epoch), with the epoch read from the trainer when one
is given, so a run resumed from a checkpoint shuffles exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor


class TensorBatches:
    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int | None,
        shuffle: bool,
        seed: int = 0,
        epoch: Callable[[], int] | None = None,
    ) -> None:
        self.tensors, self.shuffle, self.seed, self.epoch = tensors, shuffle, seed, epoch
        self.n = len(tensors[0])
        self.batch_size = min(batch_size or self.n, self.n) or 1
        self.passes = 0

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        tensors = self.tensors
        if self.shuffle:
            epoch = self.epoch() if self.epoch else self.passes
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(self.n, generator=generator).to(tensors[0].device)
            tensors = tuple(t[perm] for t in tensors)
        self.passes += 1
        for start in range(0, self.n, self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in tensors)
