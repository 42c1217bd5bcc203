"""ELBO gradients of a reparameterized diagonal Gaussian q: total derivative vs path derivative.

With z = μ + σ ε, the integrand h(z, φ) = log p(z) − log q_φ(z) has total derivative
    d/dφ h(t(ε, φ), φ) = ∇_z[log p(z) − log q_φ(z)] ∂t/∂φ  −  ∇_φ log q_φ(z)|_z fixed,
a path term and a score term. The score term has mean zero (E_q[∇_φ log q_φ] = 0), so dropping
it (`path`: evaluate log q with detached φ) keeps the estimator unbiased. When q equals the
target, log p − log q is constant in z, so the path gradient is exactly 0 for every ε ("sticking
the landing"), while the total derivative still carries the score term's noise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Independent, Normal

GRADIENTS = ("total", "path")


def elbo_surrogate(
    mean: Tensor,
    log_std: Tensor,
    log_p: Callable[[Tensor], Tensor],
    n_samples: int,
    gradient: str,
) -> Tensor:
    """MC estimate of the ELBO E_q[log p(z) − log q(z)] over the last dimension of (mean,
    log_std); leading dimensions are independent repeats. Gradient: total or path derivative."""
    std = log_std.exp()
    eps = torch.randn((n_samples, *mean.shape), dtype=mean.dtype, device=mean.device)
    z = mean + std * eps
    if gradient == "path":
        mean, std = mean.detach(), std.detach()
    log_q = Independent(Normal(mean, std, validate_args=False), 1).log_prob(z)
    return (log_p(z) - log_q).mean(0)
