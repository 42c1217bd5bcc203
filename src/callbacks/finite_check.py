"""Stops training at the first non-finite loss or gradient, instead of a silent NaN curve."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch

from src.errors import UserError


class NonFiniteError(UserError):
    """Training diverged; the checkpoints written before it are kept as they were."""


class FiniteCheck(pl.Callback):
    """Checks each step's loss (one scalar read per step) and the gradients before each
    optimizer step; raises a one-line `NonFiniteError` naming the step and the last finite loss."""

    def __init__(self, metric: str = "train/nll") -> None:
        self.metric = metric
        self.last_finite: tuple[float, int] | None = None

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:  # manual optimisation modules return nothing
            return
        value = float(loss)
        if not math.isfinite(value):
            self._stop(trainer, f"the loss {self.metric} became {value}")
        self.last_finite = (value, trainer.global_step)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        sums = [g.sum() for g in grads if g is not None]
        if not sums or torch.isfinite(torch.stack(sums).sum()):
            return  # one cheap reduction per step: NaN and inf survive the sums
        for name, param in module.named_parameters():
            if param.grad is not None and not torch.isfinite(param.grad).all():
                self._stop(trainer, f"the gradient of {name} became non-finite")

    def _stop(self, trainer: pl.Trainer, what: str) -> None:
        last = "no finite value yet"
        if self.last_finite is not None:
            last = (
                f"last finite {self.metric} {self.last_finite[0]:.6g} at step {self.last_finite[1]}"
            )
        raise NonFiniteError(
            f"training stopped at step {trainer.global_step} (epoch {trainer.current_epoch}): "
            f"{what}; {last}; checkpoints are kept as of the last completed epoch"
        )
