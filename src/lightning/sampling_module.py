"""What the sampling experiments (gradient estimators, ELBO gradients, importance sampling)
share: they draw their own samples, so they run on the empty data module only, and they write
their frequent curves straight to the loggers every few steps instead of a `self.log` per step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytorch_lightning as pl
import torch
from torch import Tensor

from src.data.empty import EmptyDataModule
from src.errors import ConfigError, UserError
from src.utils.checks import positive_int


class SamplingModule(pl.LightningModule):
    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if not isinstance(datamodule, EmptyDataModule):
            raise UserError(
                f"model={type(self).__name__} draws its own samples and takes no data set; "
                f"got {type(datamodule).__name__}: use data=none"
            )

    def log_now(self, metrics: Mapping[str, Tensor | float]) -> None:
        """Write to every logger at the current step (rank zero; converts to float, so call it
        only every few steps)."""
        if self.trainer.is_global_zero and self.loggers:
            values = {k: float(v) for k, v in metrics.items()}
            for logger in self.loggers:
                logger.log_metrics(values, step=self.global_step)


def check_every(key: str, value: int | None) -> int | None:
    """A logging period: None (never) or an integer >= 1."""
    return None if value is None else positive_int(key, value)


def check_repeats(key: str, value: int) -> int:
    """A number of repeated estimates a variance is computed from: at least 2."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ConfigError(key, value, "an integer >= 2 (a variance needs two estimates)")
    return value


def check_optimizer(
    factory: Callable[..., torch.optim.Optimizer], params: list[Tensor]
) -> Callable[..., torch.optim.Optimizer]:
    """Try the optimizer factory once so a bad setting fails at construction, in one line."""
    lr = getattr(factory, "keywords", {}).get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ConfigError("optimizer.lr", lr, "a number > 0")
    try:
        factory(params=params)
    except (ValueError, TypeError) as error:
        raise UserError(f"optimizer rejects its settings: {error}") from None
    return factory
