"""zuko's neural spline flow (`NSF`) and masked autoregressive flow (`MAF`) as density models.

A zuko flow is a lazy module: `flow()` builds the distribution p_z, with `log_prob` and
`sample`. The adapter standardises first, z = (x − m)/σ with the training data's mean and
std, so log p(x) = log p_z(z) + log |det ∂z/∂x| = log p_z(z) − Σ_d log σ_d, and samples are
x = m + σ·z. A spline bends on [−B, B] only (zuko's B = 5) and is the identity outside, so
standardising is what puts the data where the splines act. It also maps [−B, B] onto itself,
so no spline moves a point by more than 2B: a conditional whose location travels far with the
other coordinate (the banana's x₂ | x₁, centred on x₁² − 1) needs B beyond that travel.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import ClassVar

import torch
import zuko
from torch import Tensor, nn
from zuko.transforms import MonotonicRQSTransform

from src.models.realnvp import Standardize
from src.utils.constraints import Constraint, Integer, ListOf, Real


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
    an MLP (`hidden_features`) computes from the other half; the halves swap every layer.
    Each spline acts on [−bound, bound] of the standardised data. zuko.flows.NSF is this MAF
    with the spline as its univariate transform, and fixes the bound at 5."""

    constraints: ClassVar[dict[str, Constraint]] = {
        **SHARED,
        "bins": Integer(low=1),
        "bound": Real(low=0, low_open=True),
    }

    def __init__(
        self,
        dim: int = 2,
        transforms: int = 4,
        hidden_features: Sequence[int] = (64, 64),
        bins: int = 8,
        bound: float = 5.0,
    ) -> None:
        widths = tuple(hidden_features)
        flow = zuko.flows.MAF(
            dim,
            transforms=transforms,
            hidden_features=widths,
            passes=2,  # coupling: one half given the other
            univariate=partial(MonotonicRQSTransform, bound=float(bound), slope=1e-3),
            shapes=[(bins,), (bins,), (bins - 1,)],  # widths, heights, inner derivatives
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
