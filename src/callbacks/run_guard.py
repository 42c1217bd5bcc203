"""Guards every run, whatever callbacks are configured: training stops at the first non-finite
loss or gradient (no silent NaN curves), every checkpoint carries the run's identity and the
metrics logged so far, and Ctrl+C saves the exact state as
`checkpoints/interrupted.ckpt`, leaving `last.ckpt` at the last completed epoch, from which
`resume=<run dir>` continues bit for bit. One callback for both: Lightning dispatches every
hook of every step to every callback, so each one costs time on these tiny models."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from src.errors import UserError
from src.utils.runs import METRICS, RANDOM_STATE


class NonFiniteError(UserError):
    """Training diverged; the checkpoints written before it are kept as they were."""


class RunGuard(pl.Callback):
    def __init__(
        self,
        checkpoint_dir: str | Path,
        identity: dict[str, Any] | None = None,
        metric: str = "train/nll",
    ) -> None:
        self.interrupted_path = Path(checkpoint_dir) / "interrupted.ckpt"
        self.identity = identity or {}  # saved into every checkpoint: what it was made of
        self.metric = metric
        self.last_finite: tuple[float, int] | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Every checkpoint says what run it is and what it had measured, so a resume that has
        no epoch left to train still reports the run's train and validation metrics."""
        checkpoint.update(self.identity)
        checkpoint[METRICS] = {
            k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1
        }
        checkpoint[RANDOM_STATE] = torch.get_rng_state()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """A study draws its samples from torch's global generator: a resume continues its
        stream where the checkpoint left it, so the resumed run draws what the uninterrupted
        one drew (data shuffles are seeded per epoch and need no state)."""
        if RANDOM_STATE in checkpoint:
            torch.set_rng_state(checkpoint[RANDOM_STATE])

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
        value = float(loss)  # one scalar read per step
        if not math.isfinite(value):
            self._stop(trainer, f"the loss {self.metric} became {value}")
        self.last_finite = (value, trainer.global_step)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        grads = [p.grad.reshape(-1) for p in params if p.grad is not None]
        if not grads or math.isfinite(torch.cat(grads).sum()):
            return  # NaN and inf survive the sum; an overflow of finite values is looked at below
        for name, param in module.named_parameters():
            if param.grad is not None and not torch.isfinite(param.grad).all():
                self._stop(trainer, f"the gradient of {name} became non-finite")

    def on_exception(
        self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(self.interrupted_path, weights_only=False)

    def _stop(self, trainer: pl.Trainer, what: str) -> None:
        last = "no finite value yet"
        if self.last_finite is not None:
            value, step = self.last_finite
            last = f"last finite {self.metric} {value:.6g} at step {step}"
        raise NonFiniteError(
            f"training stopped at step {trainer.global_step} (epoch {trainer.current_epoch}): "
            f"{what}; {last}; checkpoints are kept as of the last completed epoch"
        )
