"""Score function vs reparameterization for L(λ) = E_{x~Exp(λ)}[(x − a)²], against the closed
form (`src.estimators.exponential`).

Training minimises L over log λ once per estimator (row e of `log_rate` follows estimator e
only; same optimizer, lr and steps) and logs the exact loss of each (`train/loss_exact/<est>`);
the optimum is λ* = 2/a with L* = a²/2. The test stage estimates dL/dλ `repeats` times at each
λ of `rates`: `test/bias/<est>/rate_<λ>` (mean estimate − exact, signed), `test/bias_se/...`,
`test/variance/...`, `test/variance_ratio/rate_<λ>` (score/reparam), and `test/final_gap/<est>`
= L(λ_end) − L*.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from src.estimators.exponential import KINDS, gradient, loss, surrogate
from src.estimators.gradients import gradient_samples
from src.studies.base import EVERY, REPEATS, SamplingStudy
from src.utils.constraints import Constraint, Integer, ListOf, Real

POSITIVE = Real(low=0, low_open=True)

log = logging.getLogger(__name__)


class ExponentialReparamStudy(SamplingStudy):
    monitor = "val/mean_gap"  # the metric best.ckpt follows
    constraints: ClassVar[dict[str, Constraint]] = {
        "a": POSITIVE,  # a > 0: otherwise L decreases in λ forever, no optimum
        "init_rate": POSITIVE,
        "rates": ListOf(POSITIVE),
        "n_samples": Integer(low=1),
        "repeats": REPEATS,
        "log_every": EVERY,
    }

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        a: float = 1.0,
        init_rate: float = 0.5,
        rates: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
        n_samples: int = 16,
        repeats: int = 20_000,
        log_every: int | None = 20,
    ) -> None:
        super().__init__()
        self.a = float(a)
        self.rates = [float(r) for r in rates]
        self.n_samples = n_samples
        self.log_rate = nn.Parameter(torch.full((len(KINDS),), math.log(init_rate)))
        self.repeats, self.log_every = repeats, log_every
        self.optimizer_factory = optimizer
        self.table: dict[str, dict[str, np.ndarray]] = {}  # estimator → statistic → per rate

    def exact_losses(self) -> Tensor:
        return loss(self.log_rate.detach().exp(), self.a)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        rate = self.log_rate.exp()
        losses = torch.stack(
            [surrogate(rate[i], self.a, self.n_samples, kind) for i, kind in enumerate(KINDS)]
        )
        if self.log_every is not None and self.global_step % self.log_every == 0:
            exact = self.exact_losses()
            self.log_now({f"train/loss_exact/{k}": v for k, v in zip(KINDS, exact)})
        return losses.sum()  # rows are independent: each gets its own estimator's gradient

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log("val/mean_gap", (self.exact_losses() - self.a**2 / 2).mean(), prog_bar=True)

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        rates = torch.tensor(self.rates, dtype=torch.float64)
        exact = gradient(rates, self.a)
        with torch.inference_mode(False), torch.enable_grad():
            for kind in KINDS:
                grads = gradient_samples(
                    lambda p, k=kind: surrogate(p["rate"], self.a, self.n_samples, k),
                    {"rate": rates},
                    self.repeats,
                )["rate"]
                self.table[kind] = {
                    "estimate": grads.mean(0).numpy(),
                    "bias": (grads.mean(0) - exact).numpy(),
                    "bias_se": (grads.std(0) / math.sqrt(self.repeats)).numpy(),
                    "variance": grads.var(0).numpy(),
                }
        for kind, stats in self.table.items():
            for stat, values in stats.items():
                if stat != "estimate":
                    self.log_dict(
                        {
                            f"test/{stat}/{kind}/rate_{r:g}": float(v)
                            for r, v in zip(self.rates, values)
                        }
                    )
        ratio = self.table["score"]["variance"] / self.table["reparam"]["variance"]
        self.log_dict(
            {f"test/variance_ratio/rate_{r:g}": float(v) for r, v in zip(self.rates, ratio)}
        )
        gaps = self.exact_losses() - self.a**2 / 2
        for i, kind in enumerate(KINDS):
            self.log(f"test/final_rate/{kind}", self.log_rate[i].detach().exp())
            self.log(f"test/final_gap/{kind}", gaps[i])
        log.info(
            "dL/dλ variance score/reparam (%d samples per estimate) at λ = %s: %s",
            self.n_samples,
            self.rates,
            " ".join(f"{v:.3g}" for v in ratio),
        )

    def figures(self) -> dict[str, Figure]:
        """After test: each estimator's bias in standard errors, and its variance, against λ."""
        if not self.table:
            return {}
        fig = Figure(figsize=(10, 4), layout="constrained")
        left, right = fig.subplots(1, 2)
        for kind, stats in self.table.items():
            left.plot(self.rates, stats["bias"] / stats["bias_se"], "o-", label=kind)
            right.loglog(self.rates, stats["variance"], "o-", label=kind)
        for bound in (-4, 0, 4):
            left.axhline(bound, color="k", ls=":" if bound else "-", lw=0.8)
        left.set(
            xscale="log",
            xlabel="rate λ",
            ylabel="(mean estimate − exact dL/dλ) / se",
            title=f"bias in standard errors ({self.repeats} estimates), a = {self.a:g}",
        )
        ratio = self.table["score"]["variance"] / self.table["reparam"]["variance"]
        right.set(
            xlabel="rate λ",
            ylabel=f"variance of one estimate ({self.n_samples} samples)",
            title=f"variance; score/reparam from {ratio.min():.2g} to {ratio.max():.2g}",
        )
        for ax in (left, right):
            ax.set_xticks(self.rates, labels=[f"{r:g}" for r in self.rates])
            ax.minorticks_off()
            ax.legend(fontsize=8)
        return {"gradients": fig}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())
