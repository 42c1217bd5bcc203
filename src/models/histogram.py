"""A histogram on {0, …, d−1}: p_θ = softmax(θ), θ ∈ ℝ^d.

Gradient (derived here, proven by gradcheck in tests/test_histogram.py): log p_θ(x) = θ_x − log Σ_j
e^{θ_j}, so ∂ log p_θ(x)/∂θ = e_x − p_θ and the mean NLL has ∇L = −(1/N) Σ_n (e_{x_n} − p_θ).
`analytic_grad=True` runs that backward (a softmax VJP) instead of autograd's.

`smoothing=α` is an add-α (Dirichlet(α + 1)) prior: the objective per train point is
−log p_θ(x) − (α/N) Σ_k log p_θ(k), whose minimiser is p_k = (n_k + α)/(N + dα). The framework's
loss is the mean of −log_prob, so the penalty rides on `log_prob` as a value-neutral term
(b − b.detach(), zero in value): `log_prob` stays the exact log-mass that test/nll reports while
its gradient is the penalised one. N is the train-set size recorded by `init_from_data`
(the batch size until then).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Categorical

from src.models.bins import BINS, check_bins
from src.models.softmax_vjp import softmax_vjp_from_products
from src.utils.constraints import Constraint, Flag, Real


class HistogramLogProb(torch.autograd.Function):
    """log softmax(θ)[x] + a Σ_k log softmax(θ)_k (the per-point prior) with the hand-derived
    backward; the model subtracts the prior's value again, keeping only its gradient. The prior
    is 0 when a = 0, even beside a bin at −inf (no 0·(−inf))."""

    @staticmethod
    def forward(ctx, logits: Tensor, x: Tensor, prior_weight: Tensor) -> Tensor:
        log_p = torch.log_softmax(logits, -1)
        ctx.save_for_backward(log_p.exp(), x, prior_weight)
        prior = torch.where(prior_weight == 0, 0.0, prior_weight * log_p.sum())
        return log_p[x] + prior

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor, None, None]:
        # ∂/∂θ Σ_n g_n log p(x_n) = Σ_n g_n (e_{x_n} − p): the softmax VJP with the products
        # p ⊙ p̄ = Σ_n g_n e_{x_n}. The prior a Σ_k log p_k adds a Σ_n g_n to every product.
        p, x, prior_weight = ctx.saved_tensors
        products = torch.zeros_like(p).index_add_(0, x, g) + prior_weight * g.sum()
        return softmax_vjp_from_products(p, products), None, None


class Histogram(nn.Module):
    support = "discrete"
    event_shape = torch.Size()
    constraints: ClassVar[dict[str, Constraint]] = {
        "d": BINS,
        "analytic_grad": Flag(),
        "smoothing": Real(low=0),
    }

    def __init__(self, d: int = 20, analytic_grad: bool = False, smoothing: float = 0.0):
        super().__init__()
        self.d = d
        self.analytic_grad, self.smoothing = bool(analytic_grad), float(smoothing)
        self.logits = nn.Parameter(torch.zeros(d))
        self.register_buffer("n_train", torch.zeros(()))  # 0 until init_from_data

    @torch.no_grad()
    def init_from_data(self, x: Tensor, weights: Tensor | None = None) -> None:
        """Refuse train data outside the bins; record N (with `weights`, Σ w: the number of
        rows they stand for) for the smoothing prior."""
        check_bins(x, self.d)
        self.n_train.fill_(len(x) if weights is None else float(weights.sum()))

    def probs(self) -> Tensor:
        return torch.softmax(self.logits, -1)

    def log_prob(self, x: Tensor) -> Tensor:
        if not self.training:  # one host sync: in evaluation only, never per training step
            x = check_bins(x, self.d)
        n = torch.where(self.n_train > 0, self.n_train, float(len(x)))
        prior_weight = self.smoothing / n
        log_p = torch.log_softmax(self.logits, -1)
        prior = prior_weight * log_p.sum() if self.smoothing else log_p.new_zeros(())
        if self.analytic_grad:
            return HistogramLogProb.apply(self.logits, x, prior_weight) - prior.detach()
        return log_p[x] + (prior - prior.detach())

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return Categorical(logits=self.logits).sample((n,))


def closed_form_probs(x: Tensor, d: int, smoothing: float = 0.0) -> Tensor:
    """The optimum p_k = (n_k + α)/(N + dα): the MLE (empirical frequencies) when α = 0."""
    counts = torch.bincount(x, minlength=d).double()
    return (counts + smoothing) / (len(x) + d * smoothing)
