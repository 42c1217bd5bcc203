"""Stochastic optimisation of a Monte Carlo objective with a choice of gradient estimator.

The parameters θ = (μ, log σ) are those of the sampling distribution q_θ = N(μ, σ²); the loss
is J(θ) = E_{x~q_θ}[f(x)] + g(θ) for the notes' problem (`src.estimators.xsinx`), whose
closed form is logged beside the Monte Carlo value. Every `grad_var_every` steps,
`grad_var_repeats` independent gradient estimates at the current θ give the estimator's
variance per component (`train/grad_var/<param>`); the test stage compares all estimators at
the final θ and logs this one's variance relative to reparameterization.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Normal

from src.errors import ConfigError
from src.estimators import xsinx
from src.estimators.gradients import (
    BASELINES,
    ESTIMATORS,
    gradient_samples,
    gradient_variance,
    surrogate,
)
from src.studies.base import EVERY, REPEATS, SamplingStudy
from src.utils.constraints import Constraint, Integer, OneOf, Real

log = logging.getLogger(__name__)


class EstimatorStudy(SamplingStudy):
    monitor = "val/objective_exact"  # the metric best.ckpt follows
    constraints: ClassVar[dict[str, Constraint]] = {
        "estimator": OneOf(*ESTIMATORS),
        "n_samples": Integer(low=1),
        "baseline": OneOf(*BASELINES),
        "baseline_decay": Real(0, 1, high_open=True),
        "init_mu": Real(),
        "init_sigma": Real(low=0, low_open=True),
        "log_every": EVERY,
        "grad_var_every": EVERY,
        "grad_var_repeats": REPEATS,
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """A leave-one-out baseline is the mean of the other samples: there must be one."""
        n = settings.get("n_samples")
        leave_one_out = settings.get("baseline") == "leave_one_out"
        if settings.get("estimator") == "score_baseline" and leave_one_out and n < 2:
            raise ConfigError("n_samples", n, "an integer >= 2 for a leave-one-out baseline")

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        estimator: str = "reparam",
        n_samples: int = 10_000,
        baseline: str = "leave_one_out",
        baseline_decay: float = 0.9,
        init_mu: float = 0.0,
        init_sigma: float = 1.0,
        log_every: int | None = 50,
        grad_var_every: int | None = 100,
        grad_var_repeats: int = 32,
    ) -> None:
        super().__init__()
        self.estimator, self.baseline = estimator, baseline
        self.n_samples = n_samples
        self.decay = float(baseline_decay)
        self.mu = nn.Parameter(torch.tensor(float(init_mu)))
        self.log_sigma = nn.Parameter(torch.tensor(math.log(init_sigma)))
        self.log_every, self.grad_var_every = log_every, grad_var_every
        self.repeats = grad_var_repeats
        self.optimizer_factory = optimizer
        # running mean of f over earlier steps (bias-corrected exponential average)
        self.register_buffer("f_average", torch.zeros(()))
        self.register_buffer("f_steps", torch.zeros(()))

    def params(self) -> dict[str, Tensor]:
        return {"mu": self.mu, "log_sigma": self.log_sigma}

    def objective(self, params: dict[str, Tensor], estimator: str) -> tuple[Tensor, Tensor]:
        """(MC estimate of E_q[f], MC objective); gradients follow `estimator`."""
        mu, log_sigma = params["mu"], params["log_sigma"]
        q = Normal(mu, log_sigma.exp(), validate_args=False)
        baseline = self.running_baseline() if self.baseline == "running_mean" else None
        mean_f = surrogate(q, xsinx.f, self.n_samples, estimator, baseline)
        return mean_f, mean_f + xsinx.penalty(mu, log_sigma)

    def running_baseline(self) -> Tensor:
        """0 before the first step, then the bias-corrected average of earlier steps' mean f."""
        correction = 1 - self.decay**self.f_steps
        return torch.where(self.f_steps > 0, self.f_average / correction.clamp_min(1e-12), 0.0)

    def exact(self) -> Tensor:
        return xsinx.objective(self.mu.detach(), self.log_sigma.detach())

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        step = self.global_step
        if _due(step, self.grad_var_every):
            variances = self.gradient_variance(self.estimator)
            self.log_now({f"train/grad_var/{k}": v for k, v in variances.items()})
        mean_f, loss = self.objective(self.params(), self.estimator)
        with torch.no_grad():
            self.f_average.mul_(self.decay).add_((1 - self.decay) * mean_f.detach())
            self.f_steps.add_(1)
        if _due(step, self.log_every):
            self.log_now(
                {
                    "train/objective": loss.detach(),
                    "train/objective_exact": self.exact(),
                    "train/mu": self.mu.detach(),
                    "train/sigma": self.log_sigma.detach().exp(),
                }
            )
        return loss

    def gradient_variance(self, estimator: str) -> dict[str, Tensor]:
        """Variance of each gradient component over `grad_var_repeats` independent estimates."""
        grads = gradient_samples(
            lambda p: self.objective(p, estimator)[1], self.params(), self.repeats
        )
        return gradient_variance(grads)

    @property
    def run_labels(self) -> dict[str, str]:
        """Text that `train` writes into metrics.json beside the numbers."""
        return {"estimator": self.estimator}

    def on_train_epoch_end(self) -> None:
        self._log_final("train/objective_exact")

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log("val/objective_exact", self.exact(), prog_bar=True)

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        self._log_final("objective_exact")
        with torch.inference_mode(False), torch.enable_grad():
            variances = {name: self.gradient_variance(name) for name in ESTIMATORS}
        for name, per_param in variances.items():
            for key, value in per_param.items():
                self.log(f"test/grad_var/{name}/{key}", value)
        ratios = {
            key: variances[self.estimator][key] / variances["reparam"][key] for key in self.params()
        }
        for key, ratio in ratios.items():
            self.log(f"test/grad_var_ratio/{key}", ratio)
        lines = ", ".join(
            f"{name}: " + " ".join(f"{k}={float(v):.3g}" for k, v in per.items())
            for name, per in variances.items()
        )
        log.info(
            "gradient variance at the final θ (%d samples per estimate): %s; %s/reparam ratio: %s",
            self.n_samples,
            lines,
            self.estimator,
            " ".join(f"{k}={float(r):.3g}" for k, r in ratios.items()),
        )

    def _log_final(self, exact_key: str) -> None:
        self.log("mu", self.mu.detach())
        self.log("sigma", self.log_sigma.detach().exp())
        self.log(exact_key, self.exact())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())


def _due(step: int, every: int | None) -> bool:
    return every is not None and step % every == 0
