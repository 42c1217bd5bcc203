"""Mean-field CAVI for the earthquake mixture (src/models/earthquake.py): the coordinate updates.

Variational family q(Z_n) = Cat(r_n), q(μ_k) = N(m_k, s_k I₂), q(λ_k) = Gamma(a_k, b_k). Each
update maximises the ELBO in one factor with the others fixed (derived here; the source notes
drop Σ_n r_nk from the precision, ν/ρ from the mean, and write log λ_k where E[log λ_k] belongs):
    1/s_k = 1/ρ + N_k/τ,  m_k = s_k (ν/ρ + Σ_n r_nk X_n / τ),          N_k = Σ_n r_nk
    a_k = α + Σ_n r_nk S_n,  b_k = β + N_k
    log r_nk = F_n · W_k − log-sum-exp over k     (W from `src.models.earthquake.weights`)
q(μ) and q(λ) depend on the data only through T = rᵀF = (Σ r X, Σ r S, N_k) per component,
and the ELBO after the sweep only through T, the entropy of q(Z) and Σ_n c_n: sums over
events, which is what lets a sweep run over mini-batches and processes exactly.
Every function broadcasts over leading dimensions of the posterior.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Gamma, Normal, kl_divergence

from src.models.earthquake import Posterior, Prior, data_constant, features, weights


def assignment_logits(f: Tensor, q: Posterior, prior: Prior) -> Tensor:
    """Unnormalised log r [..., N, K]."""
    return f @ weights(q, prior)


def update_assignments(f: Tensor, q: Posterior, prior: Prior) -> Tensor:
    """The optimal log r [..., N, K] given q(μ), q(λ), normalised by log-sum-exp."""
    logits = assignment_logits(f, q, prior)
    return logits - logits.logsumexp(-1, keepdim=True)


def statistics(f: Tensor, log_r: Tensor) -> Tensor:
    """T = rᵀF [..., K, 4]: (Σ r X, Σ r S, N_k) per component."""
    return log_r.exp().transpose(-1, -2) @ f


def update_locations(t: Tensor, prior: Prior, q: Posterior) -> Posterior:
    """Optimal q(μ_k) given r: precision 1/ρ + N_k/τ."""
    s = 1.0 / (1.0 / prior.rho + t[..., 3] / prior.tau)
    m = s[..., None] * (prior.nu / prior.rho + t[..., :2] / prior.tau)
    return q._replace(m=m, s=s)


def update_rates(t: Tensor, prior: Prior, q: Posterior) -> Posterior:
    """Optimal q(λ_k) given r: Gamma(α + Σ r S, β + N_k)."""
    return q._replace(a=prior.alpha + t[..., 2], b=prior.beta + t[..., 3])


def kl_to_prior(q: Posterior, prior: Prior) -> Tensor:
    """Σ_k KL(q(μ_k)‖p(μ_k)) + KL(q(λ_k)‖p(λ_k)) [...]."""
    kl_mu = kl_divergence(
        Normal(q.m, q.s.sqrt()[..., None], validate_args=False),
        Normal(prior.nu, math.sqrt(prior.rho), validate_args=False),
    ).sum((-1, -2))
    full = torch.full_like(q.a, 1.0)
    kl_lam = kl_divergence(
        Gamma(q.a, q.b, validate_args=False),
        Gamma(prior.alpha * full, prior.beta * full, validate_args=False),
    ).sum(-1)
    return kl_mu + kl_lam


def elbo_from_statistics(
    t: Tensor, entropy: Tensor, constant: Tensor, q: Posterior, prior: Prior
) -> Tensor:
    """The exact ELBO (nats, summed over n) [...]: E_q[log p(X, S, Z | μ, λ)] + H[q(Z)] − KL,
    where the expected complete-data term is ⟨T, Wᵀ⟩ + Σ_n c_n because Σ_k r_nk = 1."""
    return (
        (t * weights(q, prior).transpose(-1, -2)).sum((-1, -2))
        + constant
        + entropy
        - kl_to_prior(q, prior)
    )


def elbo(x: Tensor, counts: Tensor, log_r: Tensor, q: Posterior, prior: Prior) -> Tensor:
    """The exact ELBO (nats, summed over n) of any (r, q(μ), q(λ)) [...]."""
    f = features(x, counts)
    entropy = -(log_r.exp() * log_r).nan_to_num().sum((-1, -2))
    return elbo_from_statistics(
        statistics(f, log_r), entropy, data_constant(x, counts, prior), q, prior
    )


def local_statistics(f: Tensor, q: Posterior, prior: Prior) -> dict[str, Tensor]:
    """What a batch of events contributes to a sweep, given q(μ), q(λ): the optimal r of its
    events and from them T = rᵀF [..., K, 4], the entropy H[q(Z)] of its events and the number
    of events. All three are sums over events, so batches and processes add them up.

    r is normalised by the log-sum-exp shift (max, then Σ exp) in place, so the step holds a
    single [..., B, K] array; log r itself is never needed, only T and Σ_n log-sum-exp_n:
    H = Σ_n log-sum-exp_n − Σ_nk r_nk logits_nk, and the latter is ⟨T, Wᵀ⟩."""
    w = weights(q, prior)
    r = f @ w  # the logits, normalised into r in place
    top = r.amax(-1, keepdim=True)
    total = r.sub_(top).exp_().sum(-1, keepdim=True)
    t = r.div_(total).transpose(-1, -2) @ f
    norm = (top + total.log()).sum((-1, -2))
    entropy = norm - (t * w.transpose(-1, -2)).sum((-1, -2))
    return {"t": t, "entropy": entropy}


def global_update(
    t: Tensor, entropy: Tensor, constant: Tensor, q: Posterior, prior: Prior
) -> tuple[Posterior, Tensor]:
    """q(μ), then q(λ), from the summed statistics; returns them and the exact ELBO of
    (r, q(μ), q(λ)) after the sweep [...]."""
    q = update_rates(t, prior, update_locations(t, prior, q))
    return q, elbo_from_statistics(t, entropy, constant, q, prior)


def sweep(f: Tensor, constant: Tensor, q: Posterior, prior: Prior) -> tuple[Posterior, Tensor]:
    """One CAVI sweep over all events at once (r, then q(μ), then q(λ))."""
    local = local_statistics(f, q, prior)
    return global_update(local["t"], local["entropy"], constant, q, prior)


def initial_posterior(f: Tensor, centres: Tensor, prior: Prior) -> Posterior:
    """q after one μ/λ update from soft assignments to the seeds by location alone."""
    ones = torch.ones(centres.shape[:-1], dtype=f.dtype, device=f.device)
    seeded = Posterior(m=centres.to(f.dtype), s=0 * ones, a=ones, b=ones)
    t = statistics(f, update_assignments(f, seeded, prior))
    return update_rates(t, prior, update_locations(t, prior, seeded))


# Natural parameters (stochastic variational inference, src/fits/svi.py) ----------------------
# q(μ_k) = N(m_k, s_k I₂) has natural parameters (m_k/s_k, −1/(2 s_k)); q(λ_k) = Gamma(a_k, b_k)
# has (a_k − 1, −b_k). The coordinates used here, η = (1/s, m/s, a, b), are a fixed affine image
# of those, which preserves the convex combinations an SVI step takes.
NATURAL = ("precision", "precision_mean", "a", "b")


def natural_parameters(q: Posterior) -> dict[str, Tensor]:
    """η(q) = (1/s_k, m_k/s_k, a_k, b_k)."""
    return {"precision": 1.0 / q.s, "precision_mean": q.m / q.s[..., None], "a": q.a, "b": q.b}


def natural_optimum(t: Tensor, prior: Prior) -> dict[str, Tensor]:
    """η of the optimal q(μ), q(λ) given T (the CAVI updates, written in η): prior + T terms."""
    return {
        "precision": 1.0 / prior.rho + t[..., 3] / prior.tau,
        "precision_mean": prior.nu / prior.rho + t[..., :2] / prior.tau,
        "a": prior.alpha + t[..., 2],
        "b": prior.beta + t[..., 3],
    }


def from_natural(eta: dict[str, Tensor], q: Posterior) -> Posterior:
    """q from η, in the same operations as `update_locations`/`update_rates` (so q from
    `natural_optimum(t)` is theirs bit for bit)."""
    s = 1.0 / eta["precision"]
    return q._replace(m=s[..., None] * eta["precision_mean"], s=s, a=eta["a"], b=eta["b"])
