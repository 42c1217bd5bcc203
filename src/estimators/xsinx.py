"""The notes' test problem: minimise J(θ) = E_{x~N(μ,σ²)}[x sin x] + ½(μ − 1)² + σ − log σ
over θ = (μ, log σ).

Closed form of the expectation (derived, checked by quadrature in the tests): with the
characteristic function E[e^{itx}] = e^{itμ − t²σ²/2}, E[x e^{ix}] = −i d/dt E[e^{itx}] at t = 1
= (μ + iσ²) e^{iμ − σ²/2}, whose imaginary part is E[x sin x] = e^{−σ²/2}(μ sin μ + σ² cos μ).
"""

from __future__ import annotations

import torch
from torch import Tensor


def f(x: Tensor) -> Tensor:
    return x * torch.sin(x)


def penalty(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """g(θ) = ½(μ − 1)² + σ − log σ, known exactly, so differentiated exactly."""
    return 0.5 * (mu - 1) ** 2 + log_sigma.exp() - log_sigma


def expected_f(mu: Tensor, sigma: Tensor) -> Tensor:
    return torch.exp(-0.5 * sigma**2) * (mu * torch.sin(mu) + sigma**2 * torch.cos(mu))


def objective(mu: Tensor, log_sigma: Tensor) -> Tensor:
    """J(θ) exactly."""
    return expected_f(mu, log_sigma.exp()) + penalty(mu, log_sigma)


def stationary_point(
    mu: float = 0.0, log_sigma: float = 0.0, lr: float = 0.05, steps: int = 4000
) -> tuple[float, float]:
    """Where deterministic gradient descent on the closed form goes from (μ, log σ) (float64)."""
    theta = torch.tensor([mu, log_sigma], dtype=torch.float64, requires_grad=True)
    for _ in range(steps):
        (grad,) = torch.autograd.grad(objective(theta[0], theta[1]), theta)
        with torch.no_grad():
            theta -= lr * grad
    return float(theta[0].detach()), float(theta[1].detach())
