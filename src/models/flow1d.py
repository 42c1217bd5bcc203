"""A 1-D flow whose transform is a mixture of Gaussian CDFs.

Normalized form (default): z = F(x) = Σ_k π_k Φ((x − μ_k)/σ_k), π = softmax(w), with a
Uniform(0, 1) base. F is a CDF, so p(x) = F'(x) = Σ_k π_k N(x; μ_k, σ_k²): a proper density.
`base="normal"` composes with Φ⁻¹ (z = Φ⁻¹(F(x)), base N(0, 1)); by the chain rule
N(z) · dz/dx = N(z) · F'(x) / N(z) = F'(x), so the density is unchanged, only the latent differs.

`normalized=False` is the source notes' flow: G(x) = Σ_k e^{w_k} (Φ_k(x) − ½) with a N(0, 1)
base. G maps ℝ onto (−S/2, S/2), S = Σ e^{w_k}, so the density integrates to
P(|Z| < S/2) = 2Φ(S/2) − 1 < 1, reported by `integral()`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.special import ndtr, ndtri

from src.errors import ConfigError
from src.utils import weighted
from src.utils.constraints import Constraint, Flag, Integer, OneOf

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class MixtureCDFFlow1d(nn.Module):
    support = "continuous"
    event_shape = torch.Size()

    constraints: ClassVar[dict[str, Constraint]] = {
        "n_components": Integer(low=1),
        "base": OneOf("uniform", "normal"),
        "normalized": Flag(),
    }

    @classmethod
    def check_together(cls, settings: dict) -> None:
        """The notes' unnormalized flow (normalized false) is defined on a normal base only."""
        if settings["normalized"] is False and settings["base"] != "normal":
            raise ConfigError("base", settings["base"], "one of normal (with normalized false)")

    def __init__(self, n_components: int = 5, base: str = "uniform", normalized: bool = True):
        super().__init__()
        self.base, self.normalized = base, normalized
        self.loc = nn.Parameter(torch.randn(n_components))
        self.log_scale = nn.Parameter(torch.zeros(n_components))
        self.weight_logits = nn.Parameter(torch.zeros(n_components))

    @torch.no_grad()
    def init_from_data(self, x: Tensor, weights: Tensor | None = None) -> None:
        """Spread the components over the data's quantiles, so any scale of data trains (with
        `weights`, the weighted empirical distribution's)."""
        k = self.loc.numel()
        levels = (torch.arange(k, dtype=x.dtype, device=x.device) + 0.5) / k
        if weights is None:
            loc, std = torch.quantile(x, levels), x.std()
        else:
            loc, std = weighted.quantile(x, weights, levels), weighted.moments(x, weights)[1]
        self.loc.copy_(loc)
        self.log_scale.fill_(math.log(std.clamp_min(1e-6).item() / math.sqrt(k)))

    def _log_weights(self) -> Tensor:
        w = self.weight_logits
        return torch.log_softmax(w, dim=0) if self.normalized else w

    def _standardize(self, x: Tensor) -> Tensor:
        return (x.unsqueeze(-1) - self.loc) / self.log_scale.exp()

    def cdf(self, x: Tensor) -> Tensor:
        """F(x) in (0, 1), or the notes' G(x) in (−S/2, S/2) when not normalized."""
        phi = ndtr(self._standardize(x))
        if not self.normalized:
            phi = phi - 0.5
        return (phi * self._log_weights().exp()).sum(-1)

    def log_derivative(self, x: Tensor) -> Tensor:
        """log F'(x) (or log G'(x)) by log-sum-exp over the weighted component densities."""
        u = self._standardize(x)
        log_pdf = -0.5 * u.square() - self.log_scale - _HALF_LOG_2PI
        return torch.logsumexp(self._log_weights() + log_pdf, dim=-1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The map x → z into the base space and log |dz/dx|."""
        z, log_dz = self.cdf(x), self.log_derivative(x)
        if self.normalized and self.base == "normal":
            z = ndtri(z.clamp(1e-12, 1 - 1e-12))
            log_dz = log_dz + 0.5 * z.square() + _HALF_LOG_2PI
        return z, log_dz

    def log_prob(self, x: Tensor) -> Tensor:
        log_dz = self.log_derivative(x)
        if self.normalized:  # p(x) = F'(x) for either base (see the module docstring)
            return log_dz
        z = self.cdf(x)
        return log_dz - 0.5 * z.square() - _HALF_LOG_2PI

    def integral(self) -> float:
        """∫ p(x) dx: 1 when normalized, 2Φ(S/2) − 1 for the notes' flow."""
        if self.normalized:
            return 1.0
        half_span = self.weight_logits.detach().double().exp().sum() / 2
        return float(2 * ndtr(half_span) - 1)

    @torch.no_grad()
    def invert(self, target: Tensor, tol: float = 1e-7, max_iter: int = 200) -> Tensor:
        """Solve cdf(x) = target by vectorised bisection (cdf is strictly increasing)."""
        loc, scale = self.loc.double(), self.log_scale.double().exp()
        lo = torch.full_like(target, (loc - 12 * scale).min().item())
        hi = torch.full_like(target, (loc + 12 * scale).max().item())
        steps = min(max_iter, math.ceil(math.log2((hi[0] - lo[0]).item() / tol)) + 1)
        for _ in range(steps):  # float64 midpoints promote the whole cdf to float64
            mid = (lo + hi) / 2
            below = self.cdf(mid) < target
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return (lo + hi) / 2

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        dtype, device = self.loc.dtype, self.loc.device
        u = torch.rand(n, dtype=torch.float64, device=device)
        if self.normalized:
            target = u  # Φ(z) of a normal base is uniform too, so both bases invert F at u
        else:  # the notes' flow: a N(0, 1) draw truncated to the range (−S/2, S/2) of G
            half = self.weight_logits.double().exp().sum() / 2
            lo, hi = ndtr(-half), ndtr(half)
            target = ndtri(lo + (hi - lo) * u)
        return self.invert(target).to(dtype)
