"""The hand-derived mixture backward (`src/models/gmm_grad.py`), written to kill the survivors of
`make mutation MODULE=gmm_grad`: its forward value against scipy's density (gradcheck only
compares the backward with the forward's own finite differences, so a wrong forward with a
matching backward would pass it), and its gradients against autograd of scipy-free code."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from src.models.gmm_grad import MixtureLogLikelihood

D64 = torch.float64


def _parameters(k: int, d: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Random logits [K], means [K, D] and lower-triangular scales [K, D, D] (diagonal > 0)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(k, generator=g, dtype=D64)
    loc = 2 * torch.randn(k, d, generator=g, dtype=D64)
    tril = torch.randn(k, d, d, generator=g, dtype=D64).tril(-1) + torch.diag_embed(
        torch.rand(k, d, generator=g, dtype=D64) + 0.5
    )
    return logits, loc, tril


def test_forward_is_scipys_mixture_log_density() -> None:
    """ℓ_n = log Σ_k π_k N(x_n; μ_k, L_k L_kᵀ) by scipy, for K ≠ D ≠ N (a swapped axis shows)."""
    logits, loc, tril = _parameters(4, 3, seed=0)
    x = 2 * torch.randn(9, 3, generator=torch.Generator().manual_seed(1), dtype=D64)
    out = MixtureLogLikelihood.apply(x, logits, loc, tril)
    log_pi = logits.numpy() - logsumexp(logits.numpy())
    cov = (tril @ tril.transpose(-1, -2)).numpy()
    expected = logsumexp(
        [
            log_pi[j] + multivariate_normal(loc[j].numpy(), cov[j]).logpdf(x.numpy())
            for j in range(4)
        ],
        axis=0,
    )
    assert out.shape == (9,)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_backward_equals_autograd_of_an_independent_log_density() -> None:
    """Under a non-uniform upstream gradient g, the three gradients of Σ_n g_n ℓ_n equal
    autograd's through a log-density written here (K = 2, D = 3, N = 5: every axis differs)."""
    logits, loc, tril = (t.requires_grad_(True) for t in _parameters(2, 3, seed=2))
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(3), dtype=D64)
    g = torch.tensor([0.5, -1.0, 2.0, 0.25, 1.5], dtype=D64)
    hand = torch.autograd.grad(
        g @ MixtureLogLikelihood.apply(x, logits, loc, tril), [logits, loc, tril]
    )
    resid = x.unsqueeze(1) - loc  # [N, K, D]
    lower = tril.tril()
    z = torch.linalg.solve_triangular(lower, resid.permute(1, 2, 0), upper=False)  # [K, D, N]
    log_det = lower.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # [K]
    log_comp = -0.5 * z.square().sum(1) - log_det[:, None] - 1.5 * np.log(2 * np.pi)  # [K, N]
    ll = torch.logsumexp(log_comp + (logits - logits.logsumexp(0))[:, None], 0)
    auto = torch.autograd.grad(g @ ll, [logits, loc, tril])
    for h, a in zip(hand, auto):
        torch.testing.assert_close(h, a, rtol=1e-10, atol=1e-12)
