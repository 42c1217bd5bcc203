"""What every fit of a density model shares: validation NLL and the test metrics.

The test stage scores the model against the truth's log-density of the same points (the batch
carries it as `oracle_log_prob`): `kl_gap` = mean(log p_truth − log p_model), a paired estimate
of KL(truth‖model) with its standard error. Sums are accumulated per batch and all-reduced once,
so the metrics do not depend on how the test set is chunked or sharded.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from src.data.batches import Batch
from src.fits.base import RunModule


class DensityFit(RunModule):
    monitor = "val/nll"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._test_sums: dict[str, Tensor] = {}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        x = batch["x"]
        if len(x):  # a rank's shard may end with an empty batch (see TensorBatches)
            nll = -self.model.log_prob(x).mean()
            self.log("val/nll", nll, batch_size=len(x), sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self._test_sums = {}

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        log_p = self.model.log_prob(batch["x"]).double()
        stats = {"n": torch.tensor(float(len(log_p)), device=self.device), "log_p": log_p.sum()}
        oracle = batch.get("oracle_log_prob")
        if oracle is not None:
            gap = oracle.double() - log_p
            stats |= {
                "gap": gap.sum(),
                "gap_sq": gap.square().sum(),
                "log_q": oracle.double().sum(),
            }
        for key, value in stats.items():
            self._test_sums[key] = self._test_sums.get(key, 0) + value.double()

    def on_test_epoch_end(self) -> None:
        sums = self._test_sums
        s = {k: self.trainer.strategy.reduce(v, reduce_op="sum") for k, v in sums.items()}
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
        metrics |= self.extra_test_metrics()
        for key, value in metrics.items():  # already reduced: every rank logs the same value
            self.log(key, torch.as_tensor(value, dtype=torch.float64), sync_dist=True)

    def extra_test_metrics(self) -> dict[str, float | Tensor]:
        """A fit's own test metrics beside the shared ones (e.g. cluster recovery)."""
        return {}
