"""scikit-learn's 8×8 digits (ships with the library, no download) as pixel intensities 0…16.

Images are split into train/val/test by a seeded permutation, then flattened: every pixel of a
split's images is one draw from a single shared 1-D pmf over d = 17 intensities (position and
the other pixels of the image are ignored), which is what a 1-D discrete model can fit.
No truth is known, so there is no oracle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from sklearn.datasets import load_digits

from src.data.tensor_datamodule import TensorDataModule
from src.utils.constraints import FRACTION, Constraint, OneOf, check_fractions

N_BINS = 17


class DigitsDataModule(TensorDataModule):
    constraints: ClassVar[dict[str, Constraint]] = {
        "n_bins": OneOf(N_BINS),  # intensities 0…16
        "val_fraction": FRACTION,
        "test_fraction": FRACTION,
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        check_fractions(settings)

    def __init__(
        self,
        n_bins: int = N_BINS,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, seed)
        self.n_bins = n_bins
        images = torch.from_numpy(load_digits().data).long()  # [1797, 64]
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        n_test, n_val = round(test_fraction * len(images)), round(val_fraction * len(images))
        parts = order.split([len(images) - n_val - n_test, n_val, n_test])
        for split, index in zip(("train", "val", "test"), parts, strict=True):
            self.splits[split] = images[index].flatten()
