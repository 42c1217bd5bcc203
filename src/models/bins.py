"""Checks where a discrete model meets its data: values must be bin indices {0, …, d−1}."""

from __future__ import annotations

import torch
from torch import Tensor

from src.errors import UserError
from src.utils.constraints import Integer

BINS = Integer(low=2)  # the number of bins a discrete model or data set has


def check_bins(x: Tensor, d: int) -> Tensor:
    """x as integer bin indices, or a one-line `UserError` naming the first bad value and d.

    Costs one host sync, so models call it on the train set and in evaluation, not per step.
    """
    if x.is_floating_point():
        bad = x[(x != x.round()) | ~torch.isfinite(x)]
        if bad.numel():
            raise UserError(
                f"data value {bad[0].item():g} is not an integer bin index "
                f"in {{0, …, {d - 1}}} (d={d})"
            )
    elif x.dtype == torch.bool or x.is_complex():
        raise UserError(f"data of dtype {x.dtype} are not bin indices {{0, …, {d - 1}}} (d={d})")
    x = x.long()
    if x.numel():
        low, high = x.min().item(), x.max().item()
        if low < 0 or high >= d:
            bad = low if low < 0 else high
            raise UserError(f"data value {bad} is outside the bins {{0, …, {d - 1}}} (d={d})")
    return x
