"""Maximum-likelihood training of any density model (the protocol in `src.models`).

Kept lean because these models are tiny and the framework's per-step cost dominates: the
training NLL is summed into a device tensor and logged once per epoch (no `self.log` and no
GPU sync per step). The test stage scores the model against the truth's log-density of the
same points: `kl_gap` = mean(log p_truth − log p_model), a paired estimate of KL(truth‖model)
with its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn


class DensityModule(pl.LightningModule):
    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self._sums: dict[str, Tensor] = {}

    def nll(self, x: Tensor) -> Tensor:
        return -self.model.log_prob(x).mean()

    def on_train_epoch_start(self) -> None:
        self._sums = {"nll": torch.zeros((), dtype=torch.float64, device=self.device), "n": 0}

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        x = batch[0]
        loss = self.nll(x)
        self._sums["nll"] += loss.detach() * len(x)
        self._sums["n"] += len(x)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log("train/nll", self._sums["nll"] / self._sums["n"], sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        x = batch[0]
        self.log("val/nll", self.nll(x), batch_size=len(x), sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self._sums = {}

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        log_p = self.model.log_prob(batch[0]).double()
        stats = {"n": torch.tensor(float(len(log_p)), device=self.device), "log_p": log_p.sum()}
        if len(batch) > 1:  # the truth's log-density of the same points
            gap = batch[1].double() - log_p
            stats |= {
                "gap": gap.sum(),
                "gap_sq": gap.square().sum(),
                "log_q": batch[1].double().sum(),
            }
        for key, value in stats.items():
            self._sums[key] = self._sums.get(key, 0) + value.double()

    def on_test_epoch_end(self) -> None:
        s = {k: self.trainer.strategy.reduce(v, reduce_op="sum") for k, v in self._sums.items()}
        n = s["n"]
        metrics = {"test/nll": -s["log_p"] / n}
        if "gap" in s:
            mean = s["gap"] / n
            var = (s["gap_sq"] / n - mean.square()).clamp_min(0) * n / (n - 1).clamp_min(1)
            metrics |= {
                "test/oracle_nll": -s["log_q"] / n,
                "test/kl_gap": mean,
                "test/kl_gap_se": (var / n).sqrt(),
            }
        if getattr(self.model, "support", None) == "discrete":
            dims = max(1, math.prod(self.model.event_shape))
            metrics["test/bits_per_dim"] = metrics["test/nll"] / (dims * math.log(2))
        for key, value in metrics.items():  # already reduced: every rank logs the same value
            self.log(key, value, sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": "val/nll"},
        }
