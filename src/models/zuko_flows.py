"""zuko's neural spline flow (`NSF`) and masked autoregressive flow (`MAF`) as density models.

A zuko flow is a lazy module: `flow()` builds the distribution p_z, with `log_prob` and
`sample`. The adapter standardises first, z = (x − m)/σ with the training data's mean and
std, so log p(x) = log p_z(z) + log |det ∂z/∂x| = log p_z(z) − Σ_d log σ_d, and samples are
x = m + σ·z. zuko's splines bend on [−5, 5] only and are the identity outside, so
standardising is what puts the data where the splines act.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import zuko
from torch import Tensor, nn

from src.errors import ConfigError
from src.models.realnvp import Standardize
from src.utils.checks import positive_int


class ZukoFlow(nn.Module):
    """Standardisation + a zuko flow on ℝ^dim, behind the density-model protocol."""

    support = "continuous"

    def __init__(self, dim: int, flow: zuko.flows.Flow) -> None:
        super().__init__()
        self.event_shape = torch.Size([dim])
        self.standardize = Standardize(dim)
        self.flow = flow

    def init_from_data(self, x: Tensor) -> None:
        self.standardize.fit(x)

    def log_prob(self, x: Tensor) -> Tensor:
        z, logabsdet = self.standardize(x)
        return self.flow().log_prob(z) + logabsdet

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.standardize.inverse(self.flow().sample((n,)))[0]


def _checked(dim: int, transforms: int, hidden_features: Sequence[int]) -> tuple[int, ...]:
    """Checks the settings both flows share; returns the hidden widths as a tuple."""
    if positive_int("dim", dim) < 2:
        raise ConfigError("dim", dim, "an integer >= 2 (a flow over one coordinate is flow1d)")
    positive_int("transforms", transforms)
    valid = "a non-empty list of integers >= 1"
    if isinstance(hidden_features, (str, bytes)) or not isinstance(hidden_features, Sequence):
        raise ConfigError("hidden_features", hidden_features, valid)
    widths = tuple(hidden_features)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise ConfigError("hidden_features", hidden_features, valid)
    return widths


class NSF(ZukoFlow):
    """Rational-quadratic spline couplings (Durkan et al. 2019): `transforms` layers, each
    transforming one half of the coordinates by monotone splines of `bins` bins whose knots
    an MLP (`hidden_features`) computes from the other half; the halves swap every layer."""

    def __init__(
        self,
        dim: int = 2,
        transforms: int = 4,
        hidden_features: Sequence[int] = (64, 64),
        bins: int = 8,
    ) -> None:
        widths = _checked(dim, transforms, hidden_features)
        flow = zuko.flows.NSF(
            dim,
            bins=positive_int("bins", bins),
            transforms=transforms,
            hidden_features=widths,
            passes=2,  # coupling: one half given the other
        )
        super().__init__(dim, flow)


class MAF(ZukoFlow):
    """Masked autoregressive flow (Papamakarios et al. 2017): `transforms` affine
    autoregressive layers, x_d scaled and shifted by a masked MLP (`hidden_features`) of the
    coordinates before it, the order reversed every layer. Sampling takes dim passes."""

    def __init__(
        self, dim: int = 2, transforms: int = 4, hidden_features: Sequence[int] = (64, 64)
    ) -> None:
        widths = _checked(dim, transforms, hidden_features)
        super().__init__(dim, zuko.flows.MAF(dim, transforms=transforms, hidden_features=widths))
