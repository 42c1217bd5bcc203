"""Truths on ℝ^D with exact `sample` and `log_prob`, validated on construction.

`gaussian_mixture`: K Gaussians, by default equal weights and isotropic components with means
on a ring in the first two coordinates. `banana`: a curved 2-D density, the Gaussian
N(0, diag(σ²)) pushed through the shear (u₁, u₂) ↦ (u₁, u₂ + b(u₁² − σ₁²)); the shear is
triangular with unit diagonal, so log p(x) = log N(T⁻¹(x)) exactly (log |det J| = 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
    constraints,
)
from torch.distributions.transforms import Transform

from src.errors import ConfigError
from src.utils.constraints import Integer, ListOf, Nullable, Probabilities, Real, declare

_F64 = torch.float64


def _shapes(settings: Mapping[str, Any]) -> None:
    """`means` K rows of D numbers, `covariances` K symmetric positive-definite D×D matrices
    (a singular one is refused), `weights` K of them."""
    k, d = settings["n_components"], settings["dim"]
    means, covariances, weights = settings["means"], settings["covariances"], settings["weights"]
    if means is not None and (len(means) != k or any(len(row) != d for row in means)):
        raise ConfigError("means", means, f"{k} rows of {d} numbers")
    if covariances is not None:
        valid = f"{k} symmetric positive-definite {d}x{d} matrices"
        shaped = len(covariances) == k and all(
            len(m) == d and all(len(row) == d for row in m) for m in covariances
        )
        if not shaped:
            raise ConfigError("covariances", covariances, valid)
        cov = torch.tensor(covariances, dtype=_F64)
        symmetric = torch.allclose(cov, cov.transpose(-1, -2))
        if not symmetric or torch.linalg.cholesky_ex(cov).info.any():
            raise ConfigError("covariances", covariances, valid)
    if weights is not None and len(weights) != k:
        valid = f"a list of {k} non-negative weights that sum to 1 (one per component)"
        raise ConfigError("weights", weights, valid)


@declare(
    {
        "n_components": Integer(low=1),
        "dim": Integer(low=2),
        "radius": Real(),
        "std": Real(low=0, low_open=True),
        "means": Nullable(ListOf(ListOf(Real()))),
        "covariances": Nullable(ListOf(ListOf(ListOf(Real())))),
        "weights": Nullable(Probabilities()),
    },
    _shapes,
)
def gaussian_mixture(
    n_components: int = 8,
    dim: int = 2,
    radius: float = 4.0,
    std: float = 0.5,
    means: list[list[float]] | None = None,
    covariances: list[list[list[float]]] | None = None,
    weights: list[float] | None = None,
) -> MixtureSameFamily:
    """Σ_k w_k N(μ_k, Σ_k); `means`, `covariances`, `weights` replace the ring defaults."""
    k, d = n_components, dim
    if means is None:
        angle = 2 * math.pi * torch.arange(k, dtype=_F64) / k
        loc = torch.zeros(k, d, dtype=_F64)
        loc[:, 0], loc[:, 1] = radius * angle.cos(), radius * angle.sin()
    else:
        loc = torch.tensor(means, dtype=_F64)
    if covariances is None:
        cov = std**2 * torch.eye(d, dtype=_F64).expand(k, d, d)
    else:
        cov = torch.tensor(covariances, dtype=_F64)
    probs = [1.0 / k] * k if weights is None else list(weights)
    return MixtureSameFamily(
        Categorical(probs=torch.tensor(probs, dtype=_F64)),
        MultivariateNormal(loc, covariance_matrix=cov),
    )


class _Shear(Transform):
    """(u₁, u₂) ↦ (u₁, u₂ + b(u₁² − c)): a bijection of ℝ² with unit Jacobian determinant."""

    domain = constraints.independent(constraints.real, 1)
    codomain = constraints.independent(constraints.real, 1)
    bijective = True

    def __init__(self, curvature: float, offset: float) -> None:
        super().__init__(cache_size=0)
        self.curvature, self.offset = curvature, offset

    def _bend(self, u1: Tensor) -> Tensor:
        return self.curvature * (u1.square() - self.offset)

    def _call(self, u: Tensor) -> Tensor:
        return torch.stack([u[..., 0], u[..., 1] + self._bend(u[..., 0])], -1)

    def _inverse(self, x: Tensor) -> Tensor:
        return torch.stack([x[..., 0], x[..., 1] - self._bend(x[..., 0])], -1)

    def log_abs_det_jacobian(self, u: Tensor, x: Tensor) -> Tensor:
        return torch.zeros(u.shape[:-1], dtype=u.dtype, device=u.device)


@declare({"scales": Nullable(ListOf(Real(low=0, low_open=True), length=2)), "curvature": Real()})
def banana(scales: list[float] | None = None, curvature: float = 1.0) -> TransformedDistribution:
    """x₁ ~ N(0, σ₁²), x₂ | x₁ ~ N(b(x₁² − σ₁²), σ₂²): a banana opening upwards."""
    scales = [1.0, 0.5] if scales is None else [float(s) for s in scales]
    curvature = float(curvature)
    base = Independent(Normal(torch.zeros(2, dtype=_F64), torch.tensor(scales, dtype=_F64)), 1)
    return TransformedDistribution(base, [_Shear(curvature, scales[0] ** 2)])
