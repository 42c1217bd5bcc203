"""Reparameterized samplers: x = T(ε, θ) with noise ε free of θ, so ∇θ flows through x.

Each takes optional `generator` so a test can fix ε and treat the sampler as a deterministic,
differentiable function of θ (gradcheck).
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.errors import ConfigError


def exponential(rate: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """Inverse CDF: F(x) = 1 − e^{−λx}, so x = −log(1 − u)/λ with u ~ U(0, 1); shape (n, *rate)."""
    _check_positive("rate", rate)
    u = _uniform((n, *rate.shape), rate, generator)
    return -torch.log1p(-u) / rate


def gaussian(mean: Tensor, std: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """x = μ + σ ε with ε ~ N(0, 1); shape (n, *broadcast(mean, std))."""
    _check_positive("std", std)
    shape = (n, *torch.broadcast_shapes(mean.shape, std.shape))
    eps = torch.randn(shape, dtype=mean.dtype, device=mean.device, generator=generator)
    return mean + std * eps


def gumbel_softmax(
    logits: Tensor,
    n: int,
    temperature: float,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Relaxed one-hot samples softmax((logits + g)/τ), g ~ Gumbel(0, 1) i.i.d.; shape (n, *logits).

    argmax(logits + g) is an exact Categorical(softmax(logits)) draw (the Gumbel-max trick); the
    softmax relaxes it so gradients exist, biased towards uniform as τ grows. `hard` returns the
    exact one-hot in the forward pass with the relaxed sample's gradient (straight-through).
    """
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError("temperature", temperature, "a number > 0")
    u = _uniform((n, *logits.shape), logits, generator)
    gumbel = -torch.log(-torch.log(u))
    soft = torch.softmax((logits + gumbel) / temperature, dim=-1)
    if not hard:
        return soft
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return one_hot - soft.detach() + soft


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(0, 1) kept off both ends, where the log transforms above would return ±inf."""
    tiny = torch.finfo(like.dtype).tiny
    u = torch.rand(shape, dtype=like.dtype, device=like.device, generator=generator)
    return u.clamp(tiny, 1.0 - torch.finfo(like.dtype).eps)


def _check_positive(name: str, value: Tensor) -> None:
    if not bool((value > 0).all()):
        raise ConfigError(name, value.tolist(), "values > 0")
