"""FFJORD's pinwheel with its exact log-density, by finding every preimage of a point.

The sampler: k ~ U{0, …, K−1}, r ~ N(1, σ_r²), s ~ N(0, σ_t²), θ = 2πk/K + a·eʳ and
y = λ·Rot(−θ)(r, s), Rot(φ) the rotation by φ (FFJORD: K = 5, σ_r = 0.3, σ_t = 0.1, a = 0.25,
λ = 2; it draws the same number of points per arm, here the arm is drawn).

The density. For one arm, g(r, s) = λ Rot(−θ(r))(r, s) is smooth with
    ∂g/∂r = λ Rot(−θ)[(1, 0) − a eʳ J(r, s)],  ∂g/∂s = λ Rot(−θ)(0, 1),  J = [[0, −1], [1, 0]],
so |det ∂g/∂(r, s)| = λ² |1 + a eʳ s|, which vanishes on a fold (s = −e^{−r}/a): g is not one
to one, and p(y) = (1/K) Σ_k Σ_{g_k(r, s) = y} N(r; 1, σ_r²) N(s; 0, σ_t²) / (λ²|1 + a eʳ s|).
The preimages: in polar coordinates (r, s) = ρ(cos ψ, sin ψ), y = λρ(cos φ, sin φ) with
φ = ψ − θ_k − a e^{ρ cos ψ}, so ρ = |y|/λ and, θ_k running over multiples of 2π/K, the
preimages of y under all arms are the ψ ∈ (−π, π] with
    h(ψ) = ψ − a e^{ρ cos ψ} ≡ φ  (mod 2π/K),
and h'(ψ) = 1 + a eʳ s is the Jacobian factor. h is monotone but on one interval at most:
h' = 1 + aρ q(ψ), q(ψ) = sin ψ e^{ρ cos ψ}, and q' = (ρ cos²ψ + cos ψ − ρ) e^{ρ cos ψ} vanishes
only at cos ψ = c* = 2ρ/(1 + √(1 + 4ρ²)), so q has one minimum, at ψ_m = −arccos c*, and
h' < 0 exactly on an interval (ψ₁, ψ₂) ∋ ψ_m when 1 + aρ q(ψ_m) < 0. On each monotone piece the
roots of h = φ + m·2π/K, one per integer m in the piece's range, are found by bisection.
Roots with r > 1 + 12σ_r (N(r) < e^{−72} of its peak) are left out: there eʳ makes h wind
round the circle without bound. So log p is exact wherever p is not below e^{−72} of its peak;
points with no other preimage have log p = −∞.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from src.data.toys import Toy2d
from src.errors import ConfigError
from src.utils.constraints import Constraint, Integer, Real

_F64 = torch.float64
_RADIUS = 1.0  # mean of r
_REACH = 12.0  # preimages with r > 1 + 12 σ_r are left out
_BISECTIONS = 60  # an interval of 2π shrinks below 1e-17


class Pinwheel(Toy2d):
    """FFJORD's pinwheel (K = `arms`, σ_r, σ_t, a = `rate`, λ = `scale`); see the module."""

    constraints: ClassVar[dict[str, Constraint]] = {
        "arms": Integer(low=1),
        "radial_std": Real(low=0, low_open=True),
        "tangential_std": Real(low=0, low_open=True),
        "rate": Real(low=0, low_open=True),
        "scale": Real(low=0, low_open=True),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """h winds at most 2·100/(2π) more times than the arms' base spiral."""
        rate, radial_std = settings["rate"], settings["radial_std"]
        if math.log(rate) + _RADIUS + _REACH * radial_std > math.log(100):
            raise ConfigError("rate", rate, "a number with rate · e^(1 + 12·radial_std) <= 100")

    def __init__(
        self,
        arms: int = 5,
        radial_std: float = 0.3,
        tangential_std: float = 0.1,
        rate: float = 0.25,
        scale: float = 2.0,
    ) -> None:
        super().__init__()
        self.arms = arms
        self.radial_std, self.tangential_std = float(radial_std), float(tangential_std)
        self.rate, self.scale = float(rate), float(scale)
        self.r_max = _RADIUS + _REACH * self.radial_std

    def draw(self, n: int) -> Tensor:
        r = _RADIUS + self.radial_std * torch.randn(n, dtype=_F64)
        s = self.tangential_std * torch.randn(n, dtype=_F64)
        arm = torch.randint(self.arms, (n,)).to(_F64)
        theta = 2 * math.pi * arm / self.arms + self.rate * r.exp()
        c, si = theta.cos(), theta.sin()
        return self.scale * torch.stack([r * c + s * si, -r * si + s * c], -1)

    def _h(self, psi: Tensor, rho: Tensor) -> Tensor:
        return psi - self.rate * (rho * psi.cos()).exp()

    def _slope(self, psi: Tensor, rho: Tensor) -> Tensor:
        """h'(ψ) = 1 + aρ sin ψ e^{ρ cos ψ} = 1 + a eʳ s."""
        return 1 + self.rate * rho * psi.sin() * (rho * psi.cos()).exp()

    def _fold(self, rho: Tensor) -> tuple[Tensor, Tensor]:
        """(ψ₁, ψ₂), the interval where h decreases; ψ₁ = ψ₂ = ψ_m when h never does."""
        c_star = 2 * rho / (1 + (1 + 4 * rho.square()).sqrt())
        psi_m = -c_star.acos()
        folds = self._slope(psi_m, rho) < 0
        ends = []  # h' falls from 1 to below 0 on (−π, ψ_m), rises back to 1 on (ψ_m, 0)
        left_half, right_half = (torch.full_like(rho, -math.pi), psi_m), (psi_m, 0 * rho)
        for (lo, hi), falling in ((left_half, True), (right_half, False)):
            for _ in range(_BISECTIONS):
                mid = (lo + hi) / 2
                right = (self._slope(mid, rho) > 0) == falling
                lo, hi = torch.where(right, mid, lo), torch.where(right, hi, mid)
            ends.append(torch.where(folds, (lo + hi) / 2, psi_m))
        return ends[0], ends[1]

    def log_density(self, y: Tensor) -> Tensor:
        rho, phi = y.norm(dim=-1) / self.scale, torch.atan2(y[:, 1], y[:, 0])
        psi1, psi2 = self._fold(rho)
        alpha = (self.r_max / rho).clamp(max=1.0).acos()  # r > r_max on |ψ| < α
        pi = torch.full_like(rho, math.pi)
        bounds = torch.stack([-pi, psi1, psi2, -alpha, alpha, pi], -1).sort(-1).values
        lo, hi = bounds[:, :-1], bounds[:, 1:]  # [N, 5] pieces on which h is monotone
        h_lo, h_hi = self._h(lo, rho[:, None]), self._h(hi, rho[:, None])
        step = 2 * math.pi / self.arms
        first = ((torch.minimum(h_lo, h_hi) - phi[:, None]) / step).ceil()
        count = ((torch.maximum(h_lo, h_hi) - phi[:, None]) / step).ceil() - first
        count[((lo + hi) / 2).abs() < alpha[:, None]] = 0  # the left-out arc
        # one bracket per root: its point, piece and target φ + m·step
        point, piece = torch.nonzero(count > 0, as_tuple=True)
        n_roots = count[point, piece].long()
        point, piece = point.repeat_interleave(n_roots), piece.repeat_interleave(n_roots)
        offset = torch.arange(len(point)) - (n_roots.cumsum(0) - n_roots).repeat_interleave(n_roots)
        target = phi[point] + (first[point, piece] + offset) * step
        rising = (h_hi > h_lo)[point, piece]
        left, right, r_rho = lo[point, piece], hi[point, piece], rho[point]
        for _ in range(_BISECTIONS):
            mid = (left + right) / 2
            go_right = (self._h(mid, r_rho) < target) == rising
            left, right = torch.where(go_right, mid, left), torch.where(go_right, right, mid)
        psi = (left + right) / 2
        r, s = r_rho * psi.cos(), r_rho * psi.sin()
        log_terms = (
            -((r - _RADIUS) / self.radial_std).square() / 2
            - (s / self.tangential_std).square() / 2
            - (1 + self.rate * r.exp() * s).abs().log()
        )
        return _group_logsumexp(log_terms, point, len(y)) - math.log(
            2 * math.pi * self.radial_std * self.tangential_std * self.arms * self.scale**2
        )


def _group_logsumexp(values: Tensor, group: Tensor, n_groups: int) -> Tensor:
    """log Σ_{i: group_i = g} exp(values_i) for each g; −∞ for an empty group."""
    top = torch.full((n_groups,), -math.inf, dtype=values.dtype)
    top = top.scatter_reduce(0, group, values, "amax")
    shift = torch.where(torch.isfinite(top), top, 0.0)
    total = torch.zeros(n_groups, dtype=values.dtype).index_add(
        0, group, (values - shift[group]).exp()
    )
    return total.log() + shift
