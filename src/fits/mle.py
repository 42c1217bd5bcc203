"""Maximum-likelihood training of any density model by gradient descent (`fit=mle`).

Weighted rows (`data.weight_column`) make the objective the weighted mean NLL
Σ_n w_n ℓ_n / Σ_n w_n. A batch b of B rows estimates it without bias by Σ_b w ℓ / (B w̄), w̄ the
mean weight of the whole training split: E[Σ_b w ℓ] = B Σ_n w_n ℓ_n / N and N w̄ = Σ_n w_n. The
divisor is the same for every batch and every process, so the full batch gives the weighted
mean exactly, DDP's mean of the processes' gradients is the gradient of the whole, and a row
of integer weight w has the gradient of the row repeated w times.

Kept lean because these models are tiny and the framework's per-step cost dominates: the
training NLL is summed into a device tensor and logged once per epoch (no `self.log` and no
GPU sync per step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from src.data.batches import Batch
from src.fits.density_fit import DensityFit


class MLEFit(DensityFit):
    """Any density model; the optimizer and scheduler come from their config groups."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(model)
        self.optimizer_factory = optimizer  # its settings are checked where it is built
        self.scheduler_factory = scheduler
        self.mean_weight: float | None = None  # w̄ of the training split; None: unweighted
        self._sums: dict[str, Any] = {}

    @staticmethod
    def accepts(model: nn.Module) -> str | None:
        """Why this fit cannot fit `model`, or None: gradient descent needs parameters."""
        if not any(p.requires_grad for p in model.parameters()):
            return "maximum likelihood by gradient descent needs a model with parameters"
        return None

    def prepare(self, train_x: Tensor, resuming: bool, weights: Tensor | None = None) -> None:
        self.mean_weight = None if weights is None else float(weights.double().mean())
        if hasattr(self.model, "init_from_data") and not resuming:
            if weights is None:
                self.model.init_from_data(train_x)
            else:
                self.model.init_from_data(train_x, weights)

    def on_train_epoch_start(self) -> None:
        self._sums = {"nll": torch.zeros((), dtype=torch.float64, device=self.device), "n": 0}

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        x, w = batch["x"], batch.get("weight")
        log_p = self.model.log_prob(x)
        if w is None:
            loss = -log_p.sum() / max(len(x), 1)  # an empty batch adds nothing
        else:
            loss = -(w.to(log_p) * log_p).sum() / (max(len(x), 1) * self.mean_weight)
        self._sums["nll"] += loss.detach() * len(x)
        self._sums["n"] += len(x)
        return loss

    def on_train_epoch_end(self) -> None:
        self.log(
            "train/nll", self._sums["nll"] / max(self._sums["n"], 1), sync_dist=True, prog_bar=True
        )

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "monitor": "val/nll"},
        }
