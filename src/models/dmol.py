"""A discretized mixture of K logistics on the bins {0, …, d−1}.

Bin x takes σ(a) − σ(b) of component k, a = (x + ½ − μ_k)/s_k, b = (x − ½ − μ_k)/s_k; bin 0 takes
all the mass below ½ (σ(a)) and bin d−1 all the mass above d − 3/2 (1 − σ(b) = σ(−b)), so the bins
tile the line and the masses telescope to exactly 1.

Log space without underflow. Since σ(a) − σ(b) = σ(a) σ(−b) (1 − e^{−(a−b)}) and a − b = 1/s,
    ℓ_k(x) = [x < d−1] log σ(a) + [x > 0] log σ(−b) + [0 < x < d−1] log(1 − e^{−1/s}),
a sum of log-sigmoids (softplus forms) and one term of s alone: every bin of every component has a
finite log-mass for any finite parameters, however far a bin lies in a tail, where the plain
difference σ(a) − σ(b) underflows to 0 (PixelCNN++ switches there to the mid-point density).
Our mid-point fallback is for the one remaining underflow, 1/s itself when s is huge: there
log(1 − e^{−1/s}) = −log s − 1/(2s) + O(s⁻²), i.e. the bin's mass becomes its mid-point density
times its width. Log-scales are floored at LOG_SCALE_MIN, so (x − μ)/s stays bounded.
log p(x) = logsumexp_k(log π_k + ℓ_k(x)) with π = softmax(w).

Gradients (derived here; `analytic_grad=True` uses them, tests/test_dmol.py proves them by
gradcheck). With ρ = log s, r_k(x) = π_k e^{ℓ_k(x)} / p(x) the responsibilities,
d log σ(u)/du = σ(−u), ∂a/∂μ = ∂b/∂μ = −1/s, ∂a/∂ρ = −a, ∂b/∂ρ = −b:
    ∂ℓ_k/∂μ_k = (1/s) ([x > 0] σ(b) − [x < d−1] σ(−a)),
    ∂ℓ_k/∂ρ_k = −[x < d−1] a σ(−a) + [x > 0] b σ(b) − [0 < x < d−1] (1/s) / (e^{1/s} − 1),
    ∂ log p/∂μ_k = r_k ∂ℓ_k/∂μ_k,   ∂ log p/∂ρ_k = r_k ∂ℓ_k/∂ρ_k,
    ∂ log p/∂w_k = r_k − π_k.
The last is the softmax VJP of ∂ log p/∂π_k = e^{ℓ_k}/p (products π ⊙ π̄ = r). The source notes'
∂/∂π_i treats the weights as free, which ignores Σ π = 1; through the softmax it becomes r − π,
whose components sum to zero.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical
from torch.special import logit

from src.models.bins import BINS, check_bins
from src.models.softmax_vjp import softmax_vjp_from_products
from src.utils import weighted
from src.utils.constraints import Constraint, Flag, Integer

LOG_SCALE_MIN = -7.0  # s ≥ 9e-4 bins: 1/s ≤ 1097, so a and b stay finite for finite μ
WIDE_LOG_SCALE = 15.0  # beyond, 1/s < 3.1e-7 and the width term takes its expansion


class Terms(NamedTuple):
    """Per point and component ([N, K]) pieces shared by log_prob and the hand-written backward."""

    a: Tensor
    b: Tensor
    upper: Tensor  # [x < d−1]: the bin has an upper edge
    lower: Tensor  # [x > 0]: the bin has a lower edge
    inv_s: Tensor  # [K]
    log_scale: Tensor  # [K], floored
    log_mass: Tensor  # ℓ_k(x)


def _width(log_scale: Tensor) -> tuple[Tensor, Tensor]:
    """log(1 − e^{−1/s}) and its derivative in ρ = log s, finite for every ρ ≥ LOG_SCALE_MIN."""
    wide = log_scale >= WIDE_LOG_SCALE
    delta = torch.exp(-log_scale.clamp(max=WIDE_LOG_SCALE))  # never 0 in the exact branch
    exact = torch.log(-torch.expm1(-delta))
    d_exact = -delta / torch.expm1(delta)
    inv_s = torch.exp(-log_scale)
    return (
        torch.where(wide, -log_scale - 0.5 * inv_s, exact),
        torch.where(wide, -1.0 + 0.5 * inv_s, d_exact),
    )


def terms(x: Tensor, loc: Tensor, log_scale: Tensor, d: int) -> Terms:
    log_scale = log_scale.clamp(min=LOG_SCALE_MIN)
    inv_s = torch.exp(-log_scale)
    xf = x.to(loc.dtype).unsqueeze(-1)
    a = (xf + 0.5 - loc) * inv_s
    b = (xf - 0.5 - loc) * inv_s
    upper = (x < d - 1).to(loc.dtype).unsqueeze(-1)
    lower = (x > 0).to(loc.dtype).unsqueeze(-1)
    width = _width(log_scale)[0]
    log_mass = upper * F.logsigmoid(a) + lower * F.logsigmoid(-b) + upper * lower * width
    return Terms(a, b, upper, lower, inv_s, log_scale, log_mass)


def dmol_log_prob(x: Tensor, loc: Tensor, log_scale: Tensor, logits: Tensor, d: int) -> Tensor:
    """log p(x) for integer x in {0, …, d−1}, by autograd-friendly operations."""
    t = terms(x, loc, log_scale, d)
    return torch.logsumexp(torch.log_softmax(logits, -1) + t.log_mass, -1)


class DMoLLogProb(torch.autograd.Function):
    """`dmol_log_prob` with the hand-derived backward of the module docstring."""

    @staticmethod
    def forward(ctx, x: Tensor, loc: Tensor, log_scale: Tensor, logits: Tensor, d: int) -> Tensor:
        log_p = dmol_log_prob(x, loc, log_scale, logits, d)
        ctx.save_for_backward(x, loc, log_scale, logits, log_p)
        ctx.d = d
        return log_p

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[None, Tensor, Tensor, Tensor, None]:
        x, loc, raw_log_scale, logits, log_p = ctx.saved_tensors
        t = terms(x, loc, raw_log_scale, ctx.d)
        log_pi = torch.log_softmax(logits, -1)
        g_r = g.unsqueeze(-1) * torch.exp(log_pi + t.log_mass - log_p.unsqueeze(-1))  # g_n r_nk
        sig_neg_a, sig_b = torch.sigmoid(-t.a), torch.sigmoid(t.b)
        d_loc = t.inv_s * (t.lower * sig_b - t.upper * sig_neg_a)
        d_width = _width(t.log_scale)[1]
        d_log_scale = (
            -t.upper * t.a * sig_neg_a + t.lower * t.b * sig_b + t.upper * t.lower * d_width
        )
        unclamped = (raw_log_scale >= LOG_SCALE_MIN).to(g.dtype)  # the floor passes no gradient
        return (
            None,
            (g_r * d_loc).sum(0),
            (g_r * d_log_scale).sum(0) * unclamped,
            softmax_vjp_from_products(log_pi.exp(), g_r.sum(0)),
            None,
        )


class DiscretizedLogisticMixture(nn.Module):
    support = "discrete"
    event_shape = torch.Size()
    constraints: ClassVar[dict[str, Constraint]] = {
        "d": BINS,
        "n_components": Integer(low=1),
        "analytic_grad": Flag(),
    }

    def __init__(self, d: int = 20, n_components: int = 4, analytic_grad: bool = False):
        super().__init__()
        self.d, k = d, n_components
        self.analytic_grad = bool(analytic_grad)
        # Means spread evenly over [−½, d − ½], scales half their spacing: works for any d.
        self.loc = nn.Parameter((torch.arange(k) + 0.5) * d / k - 0.5)
        self.log_scale = nn.Parameter(torch.full((k,), math.log(d / (2 * k))))
        self.logits = nn.Parameter(torch.zeros(k))

    @torch.no_grad()
    def init_from_data(self, x: Tensor, weights: Tensor | None = None) -> None:
        """Refuse train data outside the bins; put the means at the data's quantiles (with
        `weights`, the weighted empirical distribution's)."""
        x = check_bins(x, self.d).to(self.loc)
        k = self.loc.numel()
        levels = (torch.arange(k, device=x.device) + 0.5) / k
        if weights is None:
            x = x.sort().values  # torch.quantile caps the size
            loc, std = x[(levels * (len(x) - 1)).round().long()], x.std()
        else:
            loc, std = weighted.quantile(x, weights, levels), weighted.moments(x, weights)[1]
        self.loc.copy_(loc)
        self.log_scale.fill_(math.log(max(std.item() / k, 0.5)))

    def log_prob(self, x: Tensor) -> Tensor:
        if not self.training:  # one host sync: in evaluation only, never per training step
            x = check_bins(x, self.d)
        args = (x, self.loc, self.log_scale, self.logits, self.d)
        return DMoLLogProb.apply(*args) if self.analytic_grad else dmol_log_prob(*args)

    def pmf(self) -> Tensor:
        bins = torch.arange(self.d, device=self.loc.device)
        return dmol_log_prob(bins, self.loc, self.log_scale, self.logits, self.d).exp()

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """Component by weight, a logistic draw μ + s·logit(u), rounded to a bin, edges clipped."""
        k = Categorical(logits=self.logits).sample((n,))
        u = torch.rand(n, dtype=self.loc.dtype, device=self.loc.device)
        scale = self.log_scale.clamp(min=LOG_SCALE_MIN).exp()
        v = self.loc[k] + scale[k] * logit(u, eps=1e-7)
        return v.round().clamp(0, self.d - 1).long()
