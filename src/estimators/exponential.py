"""∇λ E_{x~Exp(λ)}[(x − a)²] by the score function and by reparameterization, against the
closed form.

Closed form: E[x] = 1/λ and E[x²] = 2/λ², so L(λ) = 2/λ² − 2a/λ + a² and
dL/dλ = −4/λ³ + 2a/λ². For a > 0 it vanishes at λ* = 2/a, the minimum, with L(λ*) = a²/2.
- score:   log p(x) = log λ − λx, so ∇λ log p = 1/λ − x and (x − a)²(1/λ − x) is unbiased;
- reparam: x = −log(1 − u)/λ, u ~ U(0, 1), so dx/dλ = −x/λ and 2(x − a)(−x/λ) is unbiased
           (the derivative passes under E_u because (x − a)² is smooth in λ for every u).
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.errors import ConfigError
from src.estimators.samplers import exponential

KINDS = ("reparam", "score")


def loss(rate: Tensor, a: float) -> Tensor:
    """L(λ) = 2/λ² − 2a/λ + a²."""
    return 2 / rate**2 - 2 * a / rate + a**2


def gradient(rate: Tensor, a: float) -> Tensor:
    """dL/dλ = −4/λ³ + 2a/λ²."""
    return -4 / rate**3 + 2 * a / rate**2


def surrogate(rate: Tensor, a: float, n_samples: int, kind: str) -> Tensor:
    """Per element of `rate`: value = MC estimate of L from `n_samples` draws, gradient = the
    `kind` estimator's."""
    if kind == "reparam":
        return ((exponential(rate, n_samples) - a) ** 2).mean(0)
    if kind != "score":
        raise ConfigError("estimator", kind, "one of " + ", ".join(KINDS))
    x = torch.distributions.Exponential(rate).sample((n_samples,))
    gx = (x - a) ** 2
    log_p = rate.log() - rate * x
    return (gx + gx * (log_p - log_p.detach())).mean(0)
