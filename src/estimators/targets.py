"""2-D targets for the ELBO experiment: log-densities a diagonal Gaussian q is fitted to.

They are `nn.Module`s holding their constants as buffers, so they follow the run to its device.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from src.errors import ConfigError
from src.utils.checks import finite_list, positive, positive_list


class GaussianTarget(nn.Module):
    """Diagonal Gaussian: a diagonal Gaussian q can match it exactly (ELBO = 0 at the optimum)."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        mean = finite_list("mean", mean)
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(positive_list("std", std, len(mean))))

    @property
    def dim(self) -> int:
        return len(self.mean)

    def distribution(self) -> Distribution:
        return Independent(Normal(self.mean, self.std, validate_args=False), 1)

    def log_prob(self, z: Tensor) -> Tensor:
        return self.distribution().log_prob(z)


class BananaTarget(nn.Module):
    """z₁ ~ N(0, a²), z₂ | z₁ ~ N(b(z₁² − a²), 1): a normalized, curved, non-Gaussian density."""

    dim = 2

    def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
        super().__init__()
        self.a = positive("a", a)
        if isinstance(b, bool) or not isinstance(b, (int, float)) or b == 0:
            raise ConfigError("b", b, "a finite number != 0")
        self.b = float(b)

    def log_prob(self, z: Tensor) -> Tensor:
        z1, z2 = z[..., 0], z[..., 1]
        one = torch.ones((), dtype=z.dtype, device=z.device)
        centre = self.b * (z1**2 - self.a**2)
        return Normal(0.0, self.a * one).log_prob(z1) + Normal(centre, one).log_prob(z2)
