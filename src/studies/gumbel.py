"""Gumbel-softmax, straight-through and score-function gradients on a categorical objective
whose exact gradient is known by enumeration (`src.estimators.categorical`).

L(θ) = E_{z~Cat(softmax θ)}[(c_z − t)²]. Training optimises one copy of θ per estimator (row e of
`logits` follows estimator e only; same optimizer, lr and steps), logging the exact loss of each
row by enumeration every `log_every` steps (`train/loss_exact/<estimator>`). The test stage
compares the estimators at the initial θ from `repeats` independent estimates
(`test/bias/<estimator>`, `test/bias_se/<estimator>`, `test/variance/<estimator>`) and reports how
far each optimisation ended from the best category (`test/final_gap/<estimator>` = exact loss at
the end − min_k f_k).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from src.errors import ConfigError
from src.estimators.categorical import (
    QuadraticReadout,
    bias_and_variance,
    enumerated_loss,
    estimator_names,
    exact_gradient,
    surrogate,
)
from src.estimators.gradients import gradient_samples
from src.studies.base import EVERY, REPEATS, SamplingStudy
from src.utils.constraints import Constraint, Integer, ListOf, Nullable, Real

POSITIVE = Real(low=0, low_open=True)

log = logging.getLogger(__name__)


class GumbelSoftmaxStudy(SamplingStudy):
    monitor = "val/mean_gap"  # the metric best.ckpt follows
    constraints: ClassVar[dict[str, Constraint]] = {
        "c": ListOf(Real(), min_length=2),  # two categories at least
        "t": Real(),
        "temperatures": ListOf(POSITIVE),
        "straight_through_temperature": POSITIVE,
        "n_samples": Integer(low=2),  # score_baseline's leave-one-out mean needs another sample
        "init_logits": Nullable(ListOf(Real())),
        "repeats": REPEATS,
        "log_every": EVERY,
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """One initial logit per category."""
        c, init = settings.get("c"), settings.get("init_logits")
        if init is not None and len(init) != len(c):
            valid = f"a list of {len(c)} finite numbers, one per category in c"
            raise ConfigError("init_logits", list(init), valid)

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        c: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
        t: float = 0.45,
        temperatures: Sequence[float] = (0.1, 0.3, 0.5, 1.0, 2.0, 5.0),
        straight_through_temperature: float = 1.0,
        n_samples: int = 4,
        init_logits: Sequence[float] | None = None,
        repeats: int = 20_000,
        log_every: int | None = 20,
    ) -> None:
        super().__init__()
        c = [float(v) for v in c]
        self.f = QuadraticReadout(c, float(t))
        self.f_values = self.f.vertex_values().float()
        temps = [float(tau) for tau in temperatures]
        self.estimators = estimator_names(temps, float(straight_through_temperature))
        self.n_samples = n_samples
        init = [0.0] * len(c) if init_logits is None else [float(v) for v in init_logits]
        self.register_buffer("init", torch.tensor(init))
        self.logits = nn.Parameter(self.init.expand(len(self.estimators), -1).clone())
        self.repeats, self.log_every = repeats, log_every
        self.optimizer_factory = optimizer
        self.curves: list[tuple[int, list[float]]] = []  # (step, exact loss per estimator)
        self.table: dict[str, dict[str, float]] = {}  # estimator → bias, bias_se, variance

    def exact_losses(self) -> Tensor:
        return enumerated_loss(self.logits.detach(), self.f_values)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        losses = torch.stack(
            [
                surrogate(row, self.f, self.n_samples, kind, tau)
                for row, (kind, tau) in zip(self.logits, self.estimators.values())
            ]
        )
        if self.log_every is not None and self.global_step % self.log_every == 0:
            exact = self.exact_losses().tolist()
            self.curves.append((self.global_step, exact))
            self.log_now({f"train/loss_exact/{n}": v for n, v in zip(self.estimators, exact)})
        return losses.sum()  # rows are independent: each gets its own estimator's gradient

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log("val/mean_gap", (self.exact_losses() - self.f_values.min()).mean(), prog_bar=True)

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        exact = exact_gradient(self.init.double(), self.f.vertex_values())
        with torch.inference_mode(False), torch.enable_grad():
            for name, (kind, tau) in self.estimators.items():
                grads = gradient_samples(
                    lambda p, k=kind, s=tau: surrogate(p["logits"], self.f, self.n_samples, k, s),
                    {"logits": self.init.double()},
                    self.repeats,
                )["logits"]
                self.table[name] = {k: float(v) for k, v in bias_and_variance(grads, exact).items()}
        gaps = self.exact_losses() - self.f_values.min()
        for (name, row), gap in zip(self.table.items(), gaps):
            self.log_dict({f"test/{k}/{name}": v for k, v in row.items()})
            self.log(f"test/final_gap/{name}", gap)
        log.info(
            "at θ0 (%d samples per estimate, %d repeats), bias ± se / variance / final gap:\n%s",
            self.n_samples,
            self.repeats,
            "\n".join(
                f"  {n:>16}: {r['bias']:.3g} ± {r['bias_se']:.2g} / {r['variance']:.3g} / "
                f"{float(g):.3g}"
                for (n, r), g in zip(self.table.items(), gaps)
            ),
        )

    def figures(self) -> dict[str, Figure]:
        """The optimisation curves; after test also bias and variance against τ."""
        figures = {}
        if self.curves:
            figures["optimisation"] = self._curves_figure()
        if self.table:
            figures["bias_variance"] = self._table_figure()
        return figures

    def _curves_figure(self) -> Figure:
        steps = [s for s, _ in self.curves]
        losses = np.asarray([v for _, v in self.curves])
        best = float(self.f_values.min())
        fig = Figure(figsize=(7, 4.5), layout="constrained")
        ax = fig.subplots()
        for i, name in enumerate(self.estimators):
            ax.semilogy(steps, losses[:, i] - best + 1e-12, label=f"{name} ({losses[-1, i]:.4f})")
        ax.set(
            xlabel="step",
            ylabel="exact L(θ) − min_k f_k (enumerated)",
            title=f"optimisation, {self.n_samples} samples per step (final exact L)",
        )
        ax.legend(fontsize=7, ncol=2)
        return fig

    def _table_figure(self) -> Figure:
        gumbel = [(tau, self.table[n]) for n, (k, tau) in self.estimators.items() if k == "gumbel"]
        taus = [tau for tau, _ in gumbel]
        fig = Figure(figsize=(10, 4), layout="constrained")
        left, right = fig.subplots(1, 2)
        left.errorbar(
            taus,
            [r["bias"] for _, r in gumbel],
            yerr=[r["bias_se"] for _, r in gumbel],
            fmt="o-",
            label="Gumbel-softmax",
        )
        right.loglog(taus, [r["variance"] for _, r in gumbel], "o-", label="Gumbel-softmax")
        references = (("score", "k", "--"), ("score_baseline", "k", ":"))
        for name, colour, ls in (*references, ("straight_through", "r", "-.")):
            row = self.table[name]
            left.axhline(row["bias"], color=colour, ls=ls, label=f"{name} ({row['bias']:.2g})")
            right.axhline(
                row["variance"], color=colour, ls=ls, label=f"{name} ({row['variance']:.2g})"
            )
        left.set(
            xscale="log",
            yscale="log",
            xlabel="temperature τ",
            ylabel="‖mean estimate − exact gradient‖",
            title="bias (± noise floor √(Σ Var/R))",
        )
        right.set(xlabel="temperature τ", ylabel="mean per-component variance", title="variance")
        left.legend(fontsize=7)
        right.legend(fontsize=7)
        return fig

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())
