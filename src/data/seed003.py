"""The source notes' 1-D generator (notes 003), reproduced exactly.

For `num`, the notes draw n = num // 3 points from N(−1, 0.25²), n from N(0.2, 0.25²) and
num − n from N(1.5, 0.25²): num + n points in all (num = 5000 gives 6 666), so the mixture
weights are 1/4, 1/4, 1/2, not 1/3 each. The truth scoring the oracle is that mixture. The
counts are fixed rather than drawn, which matches the mixture's weights within 1/(num + n).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from src.data.synthetic import SyntheticDataModule
from src.data.truths import mixture_of_gaussians_1d
from src.utils.constraints import Constraint, Integer

MEANS, STD = (-1.0, 0.2, 1.5), 0.25


class Seed003DataModule(SyntheticDataModule):
    constraints: ClassVar[dict[str, Constraint]] = {
        "num_train": Integer(low=1),
        "num_val": Integer(low=1),
        "num_test": Integer(low=1),
    }

    def __init__(
        self,
        num_train: int = 5000,
        num_val: int = 1000,
        num_test: int = 30000,
        batch_size: int | None = 128,
        seed: int = 0,
    ) -> None:
        truth = mixture_of_gaussians_1d(list(MEANS), [STD] * 3, [0.25, 0.25, 0.5])
        super().__init__(truth, num_train, num_val, num_test, batch_size, seed)

    def draw(self, num: int) -> Tensor:
        n = num // 3
        counts = (n, n, num - n)
        return torch.cat([m + STD * torch.randn(c) for m, c in zip(MEANS, counts, strict=True)])
