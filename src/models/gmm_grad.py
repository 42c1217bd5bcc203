"""The mixture log-likelihood with a hand-derived backward pass (`analytic_grad: true`).

For ℓ_n = log Σ_k π_k N(x_n; μ_k, Σ_k), π = softmax(a), Σ_k = L_k L_kᵀ, r_nk = p(k | x_n) and
z_nk = L_k⁻¹(x_n − μ_k):
- ∂ℓ_n/∂a_j = r_nj − π_j. (The source notes' ∂ℓ/∂π_k = Σ_n r_nk drops a 1/π_k:
  ∂ℓ_n/∂π_k = N_k(x_n)/p(x_n) = r_nk/π_k; through the softmax Jacobian π_k(δ_kj − π_j) it
  becomes the line above.)
- ∂ℓ_n/∂μ_k = r_nk Σ_k⁻¹(x_n − μ_k) = r_nk L_k⁻ᵀ z_nk.
- ∂ℓ_n/∂L_k = r_nk tril(L_k⁻ᵀ z_nk z_nkᵀ − diag(1/L_k,ii)): from d(−½zᵀz) = zᵀL⁻¹ dL z and
  d log det L = Σ_i dL_ii / L_ii, kept on the lower triangle (the free entries).
tests/test_gmm.py proves all three against autograd with `torch.autograd.gradcheck`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.linalg import solve_triangular

from src.models.gmm_ops import component_log_prob


class MixtureLogLikelihood(torch.autograd.Function):
    """(x [N, D], logits [K], loc [K, D], scale_tril [K, D, D]) → ℓ_n as [N]."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, logits: Tensor, loc: Tensor, scale_tril: Tensor) -> Tensor:
        log_comp, z = component_log_prob(x, loc, scale_tril)
        joint = log_comp + torch.log_softmax(logits, -1).unsqueeze(-1)  # [K, N]
        log_p = torch.logsumexp(joint, 0)
        resp = (joint - log_p).exp()
        ctx.save_for_backward(logits, scale_tril, resp, z)
        return log_p

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, Tensor, Tensor]:
        logits, scale_tril, resp, z = ctx.saved_tensors
        w = resp * grad  # [K, N]: g_n r_nk
        total = w.sum(-1)  # [K]
        grad_logits = total - torch.softmax(logits, -1) * grad.sum()
        lt = scale_tril.transpose(-1, -2)
        grad_loc = solve_triangular(lt, (z @ w.unsqueeze(-1)), upper=True).squeeze(-1)
        scatter = (z * w.unsqueeze(1)) @ z.transpose(1, 2)  # Σ_n w_nk z_nk z_nkᵀ: [K, D, D]
        inv_diag = torch.diag_embed(total.unsqueeze(-1) / scale_tril.diagonal(dim1=-2, dim2=-1))
        grad_tril = (solve_triangular(lt, scatter, upper=True) - inv_diag).tril()
        return None, grad_logits, grad_loc, grad_tril
