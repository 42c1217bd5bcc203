"""What every fit of a density model shares: validation NLL and the test metrics.

Validation and test score the model against the truth's log-density of the same points (the batch
carries it as `oracle_log_prob`): `kl_gap` = mean(log p_truth − log p_model), a paired estimate
of KL(truth‖model) with its standard error. Sums are accumulated per batch and all-reduced once,
so the metrics do not depend on how the test set is chunked or sharded. Validation logs the
KL gap too (`val/kl_gap`) where its batches carry the truth: the learning curve of
`curve.csv` (src/callbacks/learning_curve.py).

Weighted rows (`data.weight_column`, weight w_n on row n) make every mean the weighted one,
v̄ = Σ w v / Σ w, a ratio estimator whose standard error is the linearised one,
se² = Σ w² (v − v̄)² / (Σ w)² × n_eff / (n_eff − 1), with n_eff = (Σ w)² / Σ w² the effective
sample size (logged as `test/ess`). With every w = 1 these are the plain mean, s/√n and n. The
sums Σ w, Σ w², Σ w v, Σ w² v, Σ w² v² are additive over batches and processes, and
Σ w² (v − v̄)² = Σ w² v² − 2 v̄ Σ w² v + v̄² Σ w².
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from src.data.batches import Batch
from src.fits.base import RunModule

SUMS = ("w", "w2", "wv", "w2v", "w2v2")  # the additive statistics of one weighted mean


class DensityFit(RunModule):
    monitor = "val/nll"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._sums_of: dict[str, dict[str, Tensor]] = {}
        self._weighted = False  # the test batches carried weights

    def on_validation_epoch_start(self) -> None:
        self._sums_of = {}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._score(batch)

    def on_validation_epoch_end(self) -> None:
        for name, key in (("nll", "val/nll"), ("gap", "val/kl_gap")):
            if name in self._sums_of:  # no validation batch (or no truth): nothing to log
                self.log(key, self._reduced(name)[0], sync_dist=True)

    def on_test_epoch_start(self) -> None:
        self._sums_of, self._weighted = {}, False

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._weighted |= batch.get("weight") is not None
        self._score(batch)

    def _score(self, batch: Batch) -> None:
        """Add the batch's NLL and, where it carries the truth, its KL gap to the sums."""
        log_p = self.model.log_prob(batch["x"]).double()
        weights = batch.get("weight")
        self._add("nll", -log_p, weights)
        oracle = batch.get("oracle_log_prob")
        if oracle is not None:
            self._add("gap", oracle.double() - log_p, weights)
            self._add("oracle_nll", -oracle.double(), weights)

    def on_test_epoch_end(self) -> None:
        nll, nll_se, ess = self._reduced("nll")
        metrics: dict[str, float | Tensor] = {"test/nll": nll, "test/nll_se": nll_se}
        metrics["n_parameters"] = float(self.parameter_count())
        if self._weighted:
            metrics["test/ess"] = ess
        if "gap" in self._sums_of:
            gap, gap_se, _ = self._reduced("gap")
            metrics |= {
                "test/oracle_nll": self._reduced("oracle_nll")[0],
                "test/kl_gap": gap,
                "test/kl_gap_se": gap_se,
            }
        if getattr(self.model, "support", None) == "discrete":
            dims = max(1, math.prod(self.model.event_shape))
            metrics["test/bits_per_dim"] = metrics["test/nll"] / (dims * math.log(2))
        metrics |= self.extra_test_metrics()
        for key, value in metrics.items():  # already reduced: every rank logs the same value
            self.log(key, torch.as_tensor(value, dtype=torch.float64), sync_dist=True)

    def _add(self, name: str, values: Tensor, weights: Tensor | None) -> None:
        """Add a batch's values (and their weights: None is 1 each) to the sums of `name`."""
        v = values.double()
        w = torch.ones_like(v) if weights is None else weights.to(v)
        w2 = w.square()
        batch = dict(zip(SUMS, (w.sum(), w2.sum(), (w * v).sum(), (w2 * v).sum(),
                                (w2 * v.square()).sum())))  # fmt: skip
        sums = self._sums_of.setdefault(name, {})
        for key, value in batch.items():
            sums[key] = sums.get(key, 0) + value

    def _reduced(self, name: str) -> tuple[Tensor, Tensor, Tensor]:
        """(weighted mean, its standard error, n_eff) of `name` over every process."""
        sums = self._sums_of[name]
        flat = torch.stack([torch.as_tensor(sums[k], dtype=torch.float64) for k in SUMS])
        s = dict(zip(SUMS, self.trainer.strategy.reduce(flat, reduce_op="sum")))
        mean = s["wv"] / s["w"]
        spread = (s["w2v2"] - 2 * mean * s["w2v"] + mean.square() * s["w2"]).clamp_min(0)
        ess = s["w"].square() / s["w2"]
        se = (spread / s["w"].square() * ess / (ess - 1).clamp_min(1e-12)).sqrt()
        return mean, se, ess

    def parameter_count(self) -> int:
        """The model's trained numbers (a comparison's cost column): every entry of a parameter
        that requires a gradient; a fit that knows the free count says it instead."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def extra_test_metrics(self) -> dict[str, float | Tensor]:
        """A fit's own test metrics beside the shared ones (e.g. cluster recovery)."""
        return {}
