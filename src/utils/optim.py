"""The optimizer a run configures (`optimizer=`), checked once before any training."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from src.errors import ConfigError, UserError


def check_optimizer(
    factory: Callable[..., torch.optim.Optimizer], params: list[Tensor]
) -> Callable[..., torch.optim.Optimizer]:
    """Try the optimizer factory once, so a bad setting fails at construction, in one line."""
    keywords = getattr(factory, "keywords", {})
    lr = keywords.get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ConfigError("optimizer.lr", lr, "a number > 0").at_top_level()
    for key, value in keywords.items():  # no optimizer takes an infinite or NaN setting
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"optimizer.{key}", value, "a finite number").at_top_level()
    try:
        factory(params=params or [nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as error:
        raise UserError(f"optimizer rejects its settings: {error}") from None
    return factory
