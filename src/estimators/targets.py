"""2-D targets for the ELBO experiment: log-densities a diagonal Gaussian q is fitted to.

They are `nn.Module`s holding their constants as buffers, so they follow the run to its device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Distribution, Independent, Normal

from src.errors import ConfigError
from src.utils.constraints import Constraint, ListOf, Real

POSITIVE = Real(low=0, low_open=True)


class NonZero(Real):
    """A finite number other than 0."""

    def accepts(self, value: Any) -> bool:
        return super().accepts(value) and value != 0

    def _words(self, plural: bool) -> str:
        return ("finite numbers" if plural else "a finite number") + " != 0"


class GaussianTarget(nn.Module):
    """Diagonal Gaussian: a diagonal Gaussian q can match it exactly (ELBO = 0 at the optimum)."""

    constraints: ClassVar[dict[str, Constraint]] = {
        "mean": ListOf(Real()),
        "std": ListOf(POSITIVE),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """One standard deviation per mean."""
        mean, std = settings.get("mean"), settings.get("std")
        if mean is not None and std is not None and len(std) != len(mean):
            valid = f"a list of {len(mean)} finite numbers > 0, one per mean"
            raise ConfigError("std", list(std), valid)

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]))
        self.register_buffer("std", torch.tensor([float(s) for s in std]))

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
    constraints: ClassVar[dict[str, Constraint]] = {"a": POSITIVE, "b": NonZero()}

    def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
        super().__init__()
        self.a, self.b = float(a), float(b)

    def log_prob(self, z: Tensor) -> Tensor:
        z1, z2 = z[..., 0], z[..., 1]
        one = torch.ones((), dtype=z.dtype, device=z.device)
        centre = self.b * (z1**2 - self.a**2)
        return Normal(0.0, self.a * one).log_prob(z1) + Normal(centre, one).log_prob(z2)
