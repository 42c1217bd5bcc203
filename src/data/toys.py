"""FFJORD's 2-D toy densities with closed-form log-densities: a checkerboard and blurred circles.

`Checkerboard`: uniform on the dark cells of a board, so log p = −log(dark area) on them and −∞
elsewhere. `BlurredCircles`: a mixture of circles, each a point uniform on the circle of radius
R plus N(0, σ²I) noise, whose density is a Bessel function (derived in `BlurredCircles`).
`rings` (four circles) and `circles` (scikit-learn's make_circles) are configs of it; the eight
Gaussians are `truths_2d.gaussian_mixture`. The curves (spirals, Swiss roll) are in
`toy_curves.py`, the pinwheel in `pinwheel.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from src.errors import ConfigError
from src.utils.constraints import Constraint, Integer, ListOf, Nullable, Probabilities, Real

_F64 = torch.float64


class Toy2d(Distribution):
    """A float64 distribution on ℝ²; `log_prob` takes any float dtype and answers in float64."""

    arg_constraints: ClassVar[dict] = {}  # no parameters for torch to validate
    support = constraints.independent(constraints.real, 1)

    def __init__(self) -> None:
        super().__init__(event_shape=torch.Size([2]), validate_args=False)

    def sample(self, sample_shape: tuple[int, ...] = ()) -> Tensor:
        shape = torch.Size(sample_shape)
        return self.draw(shape.numel()).reshape(*shape, 2)

    def draw(self, n: int) -> Tensor:
        """n points, [n, 2], from the global torch generator (the data modules seed it)."""
        raise NotImplementedError

    def log_prob(self, value: Tensor) -> Tensor:
        x = value.to(_F64)
        return self.log_density(x.reshape(-1, 2)).reshape(x.shape[:-1])

    def log_density(self, x: Tensor) -> Tensor:
        """log p of [N, 2] float64 points, [N]."""
        raise NotImplementedError


class Checkerboard(Toy2d):
    """Uniform on the dark cells of a `cells` × `cells` board of squares of side `width`,
    centred at the origin; cell (i, j) is dark when i + j is even. There are ⌈cells²/2⌉ dark
    cells, so log p = −log(⌈cells²/2⌉ · width²) on them. FFJORD's board: cells 4, width 2.

    A cell is closed: a point on an edge of a dark cell has the dark density. Edges have zero
    mass, and the data are stored in float32, whose rounding can move a point onto an edge,
    never across it."""

    constraints: ClassVar[dict[str, Constraint]] = {
        "cells": Integer(low=2),
        "width": Real(low=0, low_open=True),
    }

    def __init__(self, cells: int = 4, width: float = 2.0) -> None:
        super().__init__()
        self.cells, self.width = cells, float(width)
        i, j = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
        self.dark = torch.stack([i.reshape(-1), j.reshape(-1)], -1)[(i + j).reshape(-1) % 2 == 0]
        self.corner = -cells * self.width / 2
        self.log_mass = -math.log(len(self.dark) * self.width**2)

    def draw(self, n: int) -> Tensor:
        cell = self.dark[torch.randint(len(self.dark), (n,))]
        return self.corner + (cell + torch.rand(n, 2, dtype=_F64)) * self.width

    def log_density(self, x: Tensor) -> Tensor:
        u = (x - self.corner) / self.width
        # the indices of the closed cells holding each coordinate: one, or two on an edge
        first, last = u.ceil() - 1, u.floor()
        on_dark = torch.zeros(len(x), dtype=torch.bool)
        for i in (first[:, 0], last[:, 0]):
            for j in (first[:, 1], last[:, 1]):
                inside = (i >= 0) & (i < self.cells) & (j >= 0) & (j < self.cells)
                on_dark |= inside & ((i + j) % 2 == 0)
        return torch.where(on_dark, torch.tensor(self.log_mass, dtype=_F64), -math.inf)


class BlurredCircles(Toy2d):
    """Σ_k w_k p_k, p_k the law of R_k(cos θ, sin θ) + σε with θ ~ U(0, 2π), ε ~ N(0, I).

    In polar coordinates x = r(cos φ, sin φ),
        p_k(x) = (1/2π) ∫ N(x; R_k(cos θ, sin θ), σ²I) dθ
               = (1/(2πσ²)) e^{−(r² + R_k²)/(2σ²)} (1/2π) ∫ e^{r R_k cos(θ − φ)/σ²} dθ
               = (1/(2πσ²)) e^{−(r² + R_k²)/(2σ²)} I₀(r R_k/σ²),
    I₀ the modified Bessel function, (1/π)∫₀^π e^{z cos θ} dθ. With I₀(z) = i0e(z)·e^z,
        log p_k(x) = −log(2πσ²) − (r − R_k)²/(2σ²) + log i0e(r R_k/σ²),
    which neither overflows nor cancels: i0e(z) ∈ (0, 1] decays like 1/√(2πz).
    FFJORD's rings: radii 3, 2.25, 1.5, 0.75 and σ = 0.08 (it spaces the angles evenly; here
    they are uniform); make_circles(factor=0.5, noise=0.08) × 3: radii 3, 1.5 and σ = 0.24."""

    constraints: ClassVar[dict[str, Constraint]] = {
        "radii": ListOf(Real(low=0, low_open=True)),
        "noise": Real(low=0, low_open=True),
        "weights": Nullable(Probabilities()),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        radii, weights = settings["radii"], settings.get("weights")
        if weights is not None and len(weights) != len(radii):
            valid = f"a list of {len(radii)} non-negative weights that sum to 1 (one per radius)"
            raise ConfigError("weights", weights, valid)

    def __init__(
        self, radii: list[float], noise: float, weights: list[float] | None = None
    ) -> None:
        super().__init__()
        self.radii = torch.tensor([float(r) for r in radii], dtype=_F64)
        k = len(self.radii)
        probs = [1.0 / k] * k if weights is None else list(weights)
        self.probs = torch.tensor(probs, dtype=_F64)
        self.noise = float(noise)

    def draw(self, n: int) -> Tensor:
        radius = self.radii[torch.multinomial(self.probs, n, replacement=True)]
        angle = 2 * math.pi * torch.rand(n, dtype=_F64)
        circle = radius.unsqueeze(-1) * torch.stack([angle.cos(), angle.sin()], -1)
        return circle + self.noise * torch.randn(n, 2, dtype=_F64)

    def log_density(self, x: Tensor) -> Tensor:
        r, var = x.norm(dim=-1, keepdim=True), self.noise**2
        log_pk = (
            -(r - self.radii).square() / (2 * var)
            + torch.special.i0e(r * self.radii / var).log()
            - math.log(2 * math.pi * var)
        )
        return torch.logsumexp(log_pk + self.probs.log(), -1)
