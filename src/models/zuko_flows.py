"""zuko's neural spline flow (`NSF`) and masked autoregressive flow (`MAF`) as density models.

A zuko flow is a lazy module: `flow()` builds the distribution p_z, with `log_prob` and
`sample`. The adapter standardises first, z = (x − m)/σ with the training data's mean and
std, so log p(x) = log p_z(z) + log |det ∂z/∂x| = log p_z(z) − Σ_d log σ_d, and samples are
x = m + σ·z. zuko's splines bend on [−5, 5] only and are the identity outside, so
standardising is what puts the data where the splines act.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import zuko
from torch import Tensor, nn

from src.models.realnvp import Standardize
from src.utils.constraints import Constraint, Integer, ListOf


class ZukoFlow(nn.Module):
    """Standardisation + a zuko flow on ℝ^dim, behind the density-model protocol."""

    support = "continuous"

    def __init__(self, dim: int, flow: zuko.flows.Flow) -> None:
        super().__init__()
        self.event_shape = torch.Size([dim])
        self.standardize = Standardize(dim)
        self.flow = flow

    def init_from_data(self, x: Tensor, weights: Tensor | None = None) -> None:
        self.standardize.fit(x, weights)

    def log_prob(self, x: Tensor) -> Tensor:
        z, logabsdet = self.standardize(x)
        return self.flow().log_prob(z) + logabsdet

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.standardize.inverse(self.flow().sample((n,)))[0]


# the settings both flows share; a flow over one coordinate is flow1d
SHARED: dict[str, Constraint] = {
    "dim": Integer(low=2),
    "transforms": Integer(low=1),
    "hidden_features": ListOf(Integer(low=1)),
}


class NSF(ZukoFlow):
    """Rational-quadratic spline couplings (Durkan et al. 2019): `transforms` layers, each
    transforming one half of the coordinates by monotone splines of `bins` bins whose knots
    an MLP (`hidden_features`) computes from the other half; the halves swap every layer."""

    constraints: ClassVar[dict[str, Constraint]] = {**SHARED, "bins": Integer(low=1)}

    def __init__(
        self,
        dim: int = 2,
        transforms: int = 4,
        hidden_features: Sequence[int] = (64, 64),
        bins: int = 8,
    ) -> None:
        widths = tuple(hidden_features)
        flow = zuko.flows.NSF(
            dim,
            bins=bins,
            transforms=transforms,
            hidden_features=widths,
            passes=2,  # coupling: one half given the other
        )
        super().__init__(dim, flow)


class MAF(ZukoFlow):
    """Masked autoregressive flow (Papamakarios et al. 2017): `transforms` affine
    autoregressive layers, x_d scaled and shifted by a masked MLP (`hidden_features`) of the
    coordinates before it, the order reversed every layer. Sampling takes dim passes."""

    constraints: ClassVar[dict[str, Constraint]] = SHARED

    def __init__(
        self, dim: int = 2, transforms: int = 4, hidden_features: Sequence[int] = (64, 64)
    ) -> None:
        widths = tuple(hidden_features)
        super().__init__(dim, zuko.flows.MAF(dim, transforms=transforms, hidden_features=widths))
