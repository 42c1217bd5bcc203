"""Fit a diagonal Gaussian q to a target density by maximising the reparameterized ELBO, with
the total-derivative or the path-derivative gradient (`src.estimators.elbo`).

Logs `train/elbo` (MC) every `log_every` steps and `train/grad_var/<param>` every
`grad_var_every` steps; the test stage estimates the final ELBO with `n_eval` samples
(`test/elbo`, `test/elbo_se`; `test/kl` exactly when the target is Gaussian) and compares the
gradient variance of both estimators at the final q.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal, kl_divergence

from src.errors import ConfigError
from src.estimators.elbo import GRADIENTS, elbo_surrogate
from src.estimators.gradients import gradient_samples, gradient_variance
from src.studies.base import EVERY, REPEATS, SamplingStudy
from src.utils.constraints import Constraint, Integer, ListOf, Nullable, OneOf, Real

log = logging.getLogger(__name__)


class ElboStudy(SamplingStudy):
    monitor = "val/neg_elbo"  # the metric best.ckpt follows
    constraints: ClassVar[dict[str, Constraint]] = {
        "gradient": OneOf(*GRADIENTS),
        "n_samples": Integer(low=1),
        # as long as the target's dimension (checked with the target, once it is built)
        "init_mean": Nullable(ListOf(Real())),
        "init_std": Nullable(ListOf(Real(low=0, low_open=True))),
        "n_eval": Integer(low=2),  # a standard error needs two
        "log_every": EVERY,
        "grad_var_every": EVERY,
        "grad_var_repeats": REPEATS,
    }

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        target: nn.Module,
        gradient: str = "path",
        n_samples: int = 16,
        init_mean: list[float] | None = None,
        init_std: list[float] | None = None,
        n_eval: int = 100_000,
        log_every: int | None = 50,
        grad_var_every: int | None = 100,
        grad_var_repeats: int = 64,
    ) -> None:
        super().__init__()
        self.target = target
        dim = target.dim
        for key, values in (("init_mean", init_mean), ("init_std", init_std)):
            if values is not None and len(values) != dim:  # the built target's dimension
                raise ConfigError(key, list(values), f"a list of {dim} numbers, one per dimension")
        self.gradient, self.n_samples = gradient, n_samples
        mean = [0.0] * dim if init_mean is None else [float(m) for m in init_mean]
        std = [1.0] * dim if init_std is None else [float(s) for s in init_std]
        self.mean = nn.Parameter(torch.tensor(mean))
        self.log_std = nn.Parameter(torch.tensor([math.log(s) for s in std]))
        self.n_eval = n_eval
        self.log_every, self.grad_var_every = log_every, grad_var_every
        self.repeats = grad_var_repeats
        self.optimizer_factory = optimizer

    def params(self) -> dict[str, Tensor]:
        return {"mean": self.mean, "log_std": self.log_std}

    def elbo(self, params: dict[str, Tensor], gradient: str) -> Tensor:
        return elbo_surrogate(
            params["mean"], params["log_std"], self.target.log_prob, self.n_samples, gradient
        )

    def gradient_variance(self, gradient: str) -> dict[str, Tensor]:
        """Variance (summed over dimensions) of each parameter's gradient over repeats."""
        grads = gradient_samples(lambda p: self.elbo(p, gradient), self.params(), self.repeats)
        return gradient_variance(grads)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        step = self.global_step
        if self.grad_var_every is not None and step % self.grad_var_every == 0:
            variances = self.gradient_variance(self.gradient)
            self.log_now({f"train/grad_var/{k}": v for k, v in variances.items()})
        elbo = self.elbo(self.params(), self.gradient)
        if self.log_every is not None and step % self.log_every == 0:
            self.log_now({"train/elbo": elbo.detach()})
        return -elbo

    def evaluate(self) -> tuple[Tensor, Tensor]:
        """ELBO of the current q from `n_eval` fresh samples, and its standard error."""
        q = Independent(Normal(self.mean, self.log_std.exp()), 1)
        z = q.sample((self.n_eval,))
        terms = self.target.log_prob(z) - q.log_prob(z)
        return terms.mean(), terms.std() / math.sqrt(self.n_eval)

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        self.log("val/neg_elbo", -self.evaluate()[0], prog_bar=True)

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        elbo, se = self.evaluate()
        self.log_dict({"test/elbo": elbo, "test/elbo_se": se})
        if hasattr(self.target, "distribution"):
            q = Independent(Normal(self.mean, self.log_std.exp()), 1)
            self.log("test/kl", kl_divergence(q, self.target.distribution()))
        with torch.inference_mode(False), torch.enable_grad():
            variances = {name: self.gradient_variance(name) for name in GRADIENTS}
        for name, per_param in variances.items():
            for key, value in per_param.items():
                self.log(f"test/grad_var/{name}/{key}", value)
        log.info(
            "ELBO gradient variance at the final q (%d samples per estimate), total/path: %s",
            self.n_samples,
            " ".join(
                f"{k}={float(variances['total'][k] / variances['path'][k]):.3g}"
                for k in self.params()
            ),
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())
