"""Curves blurred by Gaussian noise (FFJORD's two spirals and Swiss roll), their log-density by
Gauss–Legendre quadrature to a relative 1e-10.

A point x = c(t) + σε, t ~ p(t) on [a, b], ε ~ N(0, I), has the density
    p(x) = ∫ p(t) N(x; c(t), σ²I) dt = (1/(2πσ²)) ∫ p(t) exp(−|x − c(t)|²/(2σ²)) dt,
a 1-D integral. Its integrand is a bump in t around the curve point nearest to x: expanding
|x − c(t)|² about that point t*, at a distance d on the convex side of a curve of curvature κ,
gives d² + (t − t*)² |c'|² (1 + dκ), so the bump is a Gaussian of width
    w = σ / √(|c'|² + d |c' × c''| / |c'|)              (κ = |c' × c''| / |c'|³).
The rule: panels of width h ≤ ρ_m · min_t w (with d = 8σ, so every point within 8σ of the curve
is covered), m = 16 Gauss–Legendre nodes each, ρ_m from the rule's error bound (`panel_ratio`).
The sampler draws t from the same p(t), so sampler and density agree exactly.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from src.data.toys import Toy2d
from src.errors import ConfigError
from src.utils.constraints import Constraint, Real

_F64 = torch.float64
NODES_PER_PANEL = 16
TOLERANCE = 1e-10  # relative error of one panel on a Gaussian bump, by the bound
REACH = 8.0  # the rule is sized for points up to REACH·σ from the curve
MAX_NODES = 2**17
_CRAMER = 1.086435  # |He_n(u)| e^{−u²/4} ≤ 1.086435 √(n!) for all u, n (Cramér's inequality)


def panel_ratio(nodes: int, tolerance: float) -> float:
    """The largest h/w for which `nodes`-point Gauss–Legendre on a panel of width h integrates
    the bump e^{−(t−t₀)²/(2w²)} to a relative error ≤ `tolerance`, by the rule's error bound.

    The m-node rule errs by h^{2m+1} (m!)⁴ / ((2m+1) ((2m)!)³) · f^{(2m)}(ξ). The bump's
    derivatives are f^{(n)}(t) = (−1/w)ⁿ Heₙ(u) e^{−u²/2}, u = (t − t₀)/w, so by Cramér's
    inequality |f^{(2m)}| ≤ 1.086435 √((2m)!) / w^{2m}. Divided by the bump's integral √(2π) w:
        error ≤ (h/w)^{2m+1} · 1.086435 (m!)⁴ / (√(2π) (2m+1) ((2m)!)^{5/2}) ≤ tolerance.
    m = 16 and 1e-10 give h/w = 6.65 (the measured error there is 2e-12)."""
    m = nodes
    log_bound = (
        math.log(_CRAMER)
        + 4 * math.lgamma(m + 1)
        - 0.5 * math.log(2 * math.pi)
        - math.log(2 * m + 1)
        - 2.5 * math.lgamma(2 * m + 1)
    )
    return math.exp((math.log(tolerance) - log_bound) / (2 * m + 1))


class BlurredCurve(Toy2d):
    """x = c(t) + σε with t ~ p(t) on the union of `pieces`, on each of which c is smooth.

    A subclass gives `pieces`, `curve(t)`, `log_density_t(t)` and `draw_t(n)`."""

    pieces: tuple[tuple[float, float], ...]
    constraints: ClassVar[dict[str, Constraint]] = {"noise": Real(low=0, low_open=True)}

    def __init__(self, noise: float) -> None:
        super().__init__()
        self.noise = float(noise)
        ratio = panel_ratio(NODES_PER_PANEL, TOLERANCE)
        self.points, self.log_weights = self.rule(NODES_PER_PANEL, ratio)
        if len(self.points) > MAX_NODES:
            smallest = self.noise * len(self.points) / MAX_NODES
            raise ConfigError(
                "noise", noise, f"a number >= {smallest:.3g} for this curve (or fewer turns)"
            )

    def curve(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def log_density_t(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def draw_t(self, n: int) -> Tensor:
        raise NotImplementedError

    def draw(self, n: int) -> Tensor:
        return self.curve(self.draw_t(n)) + self.noise * torch.randn(n, 2, dtype=_F64)

    def bump_width(self, t: Tensor) -> Tensor:
        """w(t) = σ/√(|c'|² + d|c' × c''|/|c'|) at d = REACH·σ, by autograd (also when the truth
        is built under no_grad or inference mode: a figure, an evaluation)."""
        with torch.inference_mode(False), torch.enable_grad():
            t = t.clone().requires_grad_()
            c = self.curve(t)
            d1 = [torch.autograd.grad(c[:, i].sum(), t, create_graph=True)[0] for i in range(2)]
            d2 = [torch.autograd.grad(d1[i].sum(), t, retain_graph=True)[0] for i in range(2)]
        speed = torch.hypot(d1[0], d1[1]).detach()
        cross = (d1[0] * d2[1] - d1[1] * d2[0]).abs().detach()
        return self.noise / (speed.square() + REACH * self.noise * cross / speed).sqrt()

    def rule(self, nodes: int, ratio: float) -> tuple[Tensor, Tensor]:
        """Composite Gauss–Legendre, `nodes` nodes per panel, each panel no wider than `ratio` ×
        the narrowest bump in it. Returns the curve at the nodes [J, 2] and log(weight · p(t))."""
        s, w = (torch.from_numpy(v) for v in np.polynomial.legendre.leggauss(nodes))
        edges = torch.cat([self._panel_edges(a, b, ratio) for a, b in self.pieces])
        lo, hi = edges[:, 0:1], edges[:, 1:2]
        t = ((lo + hi) / 2 + (hi - lo) / 2 * s).reshape(-1)
        log_w = ((hi - lo) / 2 * w).reshape(-1).log() + self.log_density_t(t)
        return self.curve(t), log_w

    def _panel_edges(self, a: float, b: float, ratio: float, fine: int = 2**15) -> Tensor:
        """[P, 2] panels covering [a, b], each no wider than `ratio` × the smallest bump width
        on it (read on `fine` cells), so the rule adapts to the curve's speed."""
        step = (b - a) / fine
        allowed = ratio * self.bump_width(a + (torch.arange(fine, dtype=_F64) + 0.5) * step)
        edges, start, width = [a], 0, math.inf
        for cell, cell_allowed in enumerate(allowed.tolist()):
            width = min(width, cell_allowed)
            if (cell + 1 - start) * step > width and cell > start:  # end the panel before it
                edges.append(a + cell * step)
                start, width = cell, cell_allowed
        edges = torch.tensor([*edges, b], dtype=_F64)
        return torch.stack([edges[:-1], edges[1:]], -1)

    def log_density(self, x: Tensor) -> Tensor:
        return self.log_density_by(x, self.points, self.log_weights)

    def log_density_by(self, x: Tensor, points: Tensor, log_weights: Tensor) -> Tensor:
        """log p(x) = logsumexp_j(log w_j p(t_j) − |x − c_j|²/(2σ²)) − log(2πσ²), with
        |x − c_j|² = |x|² − 2x·c_j + |c_j|² as one matrix product (cancellation ~1e-13)."""
        var = self.noise**2
        bias = log_weights - points.square().sum(-1) / (2 * var)
        chunk = max(1, 2**22 // len(points))
        out = [
            torch.logsumexp(torch.addmm(bias, part, points.T / var), -1) for part in x.split(chunk)
        ]
        log_p = torch.cat(out) if out else x.new_zeros(0)
        return log_p - x.square().sum(-1) / (2 * var) - math.log(2 * math.pi * var)


class TwoSpirals(BlurredCurve):
    """FFJORD's two spirals: |t| = T√U (U uniform, T = 2π·turns), c = ±|t|(−cos|t|, sin|t|)/3
    with either sign equally likely, plus N(0, σ²I). As one curve on [−T, T] through the
    origin: c(t) = sign(t)·|t|(−cos|t|, sin|t|)/3, p(t) = |t|/T² (∫ = 1; |t| = T√U has density
    2|t|/T² on [0, T]). c is smooth on each half, so each half is one piece. FFJORD also adds
    a U(0, 1/6)² offset to each point before the noise; it is left out, so that the noise is
    Gaussian and the density a 1-D integral."""

    constraints: ClassVar[dict[str, Constraint]] = {"turns": Real(low=0, low_open=True)}

    def __init__(self, noise: float = 0.1, turns: float = 1.5) -> None:
        self.length = 2 * math.pi * turns
        self.pieces = ((-self.length, 0.0), (0.0, self.length))
        super().__init__(noise)

    def curve(self, t: Tensor) -> Tensor:
        u = t.abs()
        return t.sign().unsqueeze(-1) * u.unsqueeze(-1) * torch.stack([-u.cos(), u.sin()], -1) / 3

    def log_density_t(self, t: Tensor) -> Tensor:
        return t.abs().log() - 2 * math.log(self.length)

    def draw_t(self, n: int) -> Tensor:
        sign = torch.randint(2, (n,)).to(_F64) * 2 - 1
        return sign * self.length * torch.rand(n, dtype=_F64).sqrt()


class SwissRoll(BlurredCurve):
    """scikit-learn's make_swiss_roll(noise=1) in its (x, z) plane, divided by 5 (FFJORD):
    t ~ U(1.5π, 4.5π), c(t) = t(cos t, sin t)/5, σ = 1/5 (the noise scales with the roll)."""

    pieces = ((1.5 * math.pi, 4.5 * math.pi),)

    def __init__(self, noise: float = 0.2) -> None:
        super().__init__(noise)

    def curve(self, t: Tensor) -> Tensor:
        return t.unsqueeze(-1) * torch.stack([t.cos(), t.sin()], -1) / 5

    def log_density_t(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -math.log(3 * math.pi))

    def draw_t(self, n: int) -> Tensor:
        return (1.5 + 3 * torch.rand(n, dtype=_F64)) * math.pi
