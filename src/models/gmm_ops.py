"""Gaussian-mixture arithmetic shared by gradient MLE, EM and initialisation (one code path).

A mixture is (log_weights [K], loc [K, D], scale_tril [K, D, D]) with Σ_k = L_k L_kᵀ. Densities
stay in log space and use triangular solves: log N(x; μ, LLᵀ) = −½‖L⁻¹(x − μ)‖² − Σ_i log L_ii
− (D/2) log 2π, so no inverse and no determinant is ever formed. Intermediates are at most
K×D×N (never N×K×D×D), which keeps a full-batch EM step on 10⁶ points cheap.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.linalg import solve_triangular

from src.errors import UserError

CHUNK = 2**16  # points per E-step block in EM (see `em_statistics`)


def whiten(x: Tensor, loc: Tensor, scale_tril: Tensor) -> Tensor:
    """z_k = L_k⁻¹(x − μ_k) for every point and component: [K, D, N].

    The right-hand side is a column-major view of [K, N, D], which LAPACK takes without a copy.
    """
    centred = x.unsqueeze(0) - loc.unsqueeze(1)  # [K, N, D]
    return solve_triangular(scale_tril, centred.mT, upper=False)


def component_log_prob(x: Tensor, loc: Tensor, scale_tril: Tensor) -> tuple[Tensor, Tensor]:
    """(log N(x_n; μ_k, Σ_k) as [K, N], the whitened points z [K, D, N]).

    Component-major [K, N] layouts keep every reduction over N or K contiguous.
    """
    z = whiten(x, loc, scale_tril)
    half_log_det = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # [K]
    log_norm = half_log_det + 0.5 * x.shape[-1] * math.log(2 * math.pi)
    squared = z[:, 0].square()
    for d in range(1, z.shape[1]):  # over the D coordinates: far faster than a size-D sum
        squared = squared.addcmul(z[:, d], z[:, d])
    return torch.add(-log_norm.unsqueeze(-1), squared, alpha=-0.5), z


def e_step(
    x: Tensor, log_weights: Tensor, loc: Tensor, scale_tril: Tensor
) -> tuple[Tensor, Tensor]:
    """(log p(x_n) as [N], responsibilities r_nk = p(k | x_n) as [K, N])."""
    joint = component_log_prob(x, loc, scale_tril)[0] + log_weights.unsqueeze(-1)
    peak = joint.amax(0)  # log-sum-exp by hand, so its exponentials are the responsibilities
    scaled = (joint - peak).exp()
    total = scaled.sum(0)
    return peak + total.log(), scaled / total


def statistics(x: Tensor, resp: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Σ_n r_nk, Σ_n r_nk x_n, Σ_n r_nk x_n x_nᵀ for `resp` [K, N]: additive over chunks."""
    weighted = resp.unsqueeze(1) * x.T.contiguous()  # [K, D, N]
    return resp.sum(1), resp @ x, weighted @ x


def quadratic_features(y: Tensor) -> Tensor:
    """φ(y) = (1, y_1, …, y_D, y_i y_j for i ≤ j): [N, 1 + D + D(D+1)/2]."""
    rows, cols = torch.triu_indices(y.shape[1], y.shape[1], device=y.device)
    return torch.cat([torch.ones_like(y[:, :1]), y, y[:, rows] * y[:, cols]], 1)


def natural_weights(log_weights: Tensor, loc: Tensor, scale_tril: Tensor, shift: Tensor) -> Tensor:
    """W [1 + D + D(D+1)/2, K] with φ(x − shift) · W_k = log π_k N(x; μ_k, Σ_k).

    With y = x − shift, m_k = μ_k − shift and P_k = Σ_k⁻¹:
        log π_k N = log π_k − ½ log|2πΣ_k| − ½ m_kᵀP_k m_k + (P_k m_k)ᵀy − ½ Σ_ij P_k,ij y_i y_j,
    so the coefficient of y_i y_j (i ≤ j) is −½ P_ii on the diagonal and −P_ij off it."""
    d = loc.shape[1]
    precision = torch.cholesky_inverse(scale_tril)  # [K, D, D]
    m = loc - shift
    pm = (precision @ m.unsqueeze(-1)).squeeze(-1)  # [K, D]
    half_log_det = scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    const = log_weights - half_log_det - 0.5 * d * math.log(2 * math.pi) - 0.5 * (m * pm).sum(-1)
    rows, cols = torch.triu_indices(d, d, device=loc.device)
    quadratic = -precision[:, rows, cols] * torch.where(rows == cols, 0.5, 1.0).to(precision)
    return torch.cat([const.unsqueeze(-1), pm, quadratic], 1).T.contiguous()


def em_statistics(
    x: Tensor,
    log_weights: Tensor,
    loc: Tensor,
    scale_tril: Tensor,
    shift: Tensor,
    row_weights: Tensor | None = None,
) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
    """Σ_n log p(x_n) and the E-step's statistics Σ_n r_nk, Σ_n r_nk y_n, Σ_n r_nk y_n y_nᵀ of
    y = x − shift (the statistics `from_statistics` takes); with `row_weights` [N] each term
    of the sums is times its row's weight w_n.

    The E-step in natural parameters: every log π_k N(x_n; μ_k, Σ_k) is φ(y_n) · W_k, so the
    joint log-densities of a block are one [B, P] × [P, K] product, and the statistics one
    [K, B] × [B, P] product of the responsibilities with the same features (P = 6 for D = 2):
    about 2P + 5 flops and one exp per point and component. CHUNK points at a time, so every
    intermediate stays in cache. The shift (the data's centre) keeps the expansion's
    cancellation small."""
    d = x.shape[1]
    weights = natural_weights(log_weights, loc, scale_tril, shift)
    total, moments = x.new_zeros(()), None
    row_chunks = [None] * len(x.split(CHUNK)) if row_weights is None else row_weights.split(CHUNK)
    for chunk, w in zip(x.split(CHUNK), row_chunks):
        phi = quadratic_features(chunk - shift)
        joint = phi @ weights  # [B, K], normalised into responsibilities in place
        top = joint.amax(1, keepdim=True)
        mass = joint.sub_(top).exp_().sum(1, keepdim=True)
        log_p = top + mass.log()
        resp = joint.div_(mass)
        if w is not None:
            log_p, resp = log_p * w[:, None], resp.mul_(w[:, None])
        total = total + log_p.sum()
        part = resp.T @ phi  # [K, P]
        moments = part if moments is None else moments + part
    rows, cols = torch.triu_indices(d, d, device=x.device)
    second = moments.new_zeros(len(moments), d, d)
    second[:, rows, cols] = moments[:, 1 + d :]
    second[:, cols, rows] = moments[:, 1 + d :]
    return total, (moments[:, 0], moments[:, 1 : 1 + d], second)


def m_step(
    x: Tensor, resp: Tensor, reg_covar: float, diagonal: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """The M-step for responsibilities `resp` [K, N] (see `from_statistics`)."""
    shift = x.mean(0)
    return from_statistics(*statistics(x - shift, resp), shift, reg_covar, diagonal)


def from_statistics(
    counts: Tensor, first: Tensor, second: Tensor, shift: Tensor, reg_covar: float, diagonal: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Maximise Σ_nk r_nk log(π_k N(x_n; μ_k, Σ_k)) over the simplex and the parameters.

    The Lagrangian of the weights gives π_k = N_k / N with N_k = Σ_n r_nk; then μ_k is the
    r-weighted mean and Σ_k = Σ_n r_nk x_n x_nᵀ / N_k − μ_k μ_kᵀ the r-weighted covariance,
    from statistics of x − shift (the data mean, so float32 keeps its digits), plus
    `reg_covar` on its diagonal (as scikit-learn does). An empty component keeps a tiny N_k,
    so nothing divides by zero (its mean goes to the shift, its covariance to reg_covar·I).
    """
    counts = counts.clamp_min(10 * torch.finfo(counts.dtype).eps)  # [K]
    loc = first / counts.unsqueeze(-1)  # [K, D]
    cov = second / counts.view(-1, 1, 1) - loc.unsqueeze(-1) * loc.unsqueeze(-2)
    cov = cov + reg_covar * torch.eye(len(shift), dtype=cov.dtype, device=cov.device)
    if diagonal:
        scale_tril = torch.diag_embed(cov.diagonal(dim1=-2, dim2=-1).sqrt())
    else:
        scale_tril, info = torch.linalg.cholesky_ex(cov)
        if info.any():
            raise UserError(
                f"model.reg_covar={reg_covar:g} is too small for these data: a component's "
                "covariance is singular (its points coincide, e.g. in float32 at a large "
                "magnitude); raise it or rescale the data"
            )
    return (counts / counts.sum()).log(), loc + shift, scale_tril


def hard_assignment(x: Tensor, centres: Tensor) -> Tensor:
    """One-hot responsibilities [K, N] of each point to its nearest centre."""
    labels = torch.cdist(x, centres).argmin(-1)
    return torch.nn.functional.one_hot(labels, len(centres)).to(x.dtype).T
