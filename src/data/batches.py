"""Mini-batches as slices of tensors that already live on the training device.

Replaces Dataset + DataLoader + collate: one permutation per epoch, then contiguous views.
The epoch counter is saved in checkpoints (Lightning restores stateful loaders), so a resumed
run shuffles exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor


class TensorBatches:
    def __init__(
        self, tensors: tuple[Tensor, ...], batch_size: int | None, shuffle: bool, seed: int = 0
    ) -> None:
        self.tensors, self.shuffle, self.seed = tensors, shuffle, seed
        self.n = len(tensors[0])
        self.batch_size = min(batch_size or self.n, self.n) or 1
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        tensors = self.tensors
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            perm = torch.randperm(self.n, generator=generator).to(tensors[0].device)
            tensors = tuple(t[perm] for t in tensors)
        self.epoch += 1
        for start in range(0, self.n, self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in tensors)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
