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

Empirical Bayes: π and τ by maximising the ELBO (`fit=cavi learn_weights/learn_tau`), each its
own coordinate step after q(λ), from the same summed statistics. The ELBO's terms in π and τ are
    Σ_nk r_nk log π_k = Σ_k N_k log π_k,
    Σ_nk r_nk E_q[log N(X_n; μ_k, τI₂)] = −N log 2πτ − D/2τ,   N = Σ_k N_k,
    D = E_q Σ_nk r_nk |X_n − μ_k|² = Σ_n |X_n|² − 2 Σ_k m_kᵀ Σ_n r_nk X_n + Σ_k N_k (|m_k|² + 2 s_k)
(E_q|X − μ_k|² = |X − m_k|² + 2 s_k in two dimensions; Σ_k r_nk = 1 turns Σ_nk r_nk |X_n|² into
Σ_n |X_n|², so the one new statistic is Σ_n |X_n|², a sum over events like T). The priors of μ
and λ hold neither π nor τ. Hence
    π: maximise Σ_k N_k log π_k subject to Σ_k π_k = 1 (Lagrange): π_k = N_k / N;
    τ: ∂/∂τ (−N log τ − D/2τ) = −N/τ + D/2τ² = 0:  τ = D / 2N,
the unique maximiser (the function → −∞ at τ → 0 and τ → ∞; in 1/τ it is concave). A dead
component (N_k = 0 to machine precision) keeps π_k at the smallest positive float, not 0, so
log π_k stays finite and 0 · log π_k = 0 in the ELBO; its value equals the supremum's.
τ changes the data constant too: c_n = −|X_n|²/2τ − log S_n!, so the ELBO after a τ step adds
Σ_n |X_n|² (1/2τ_old − 1/2τ_new) to the Σ_n c_n the batches summed under τ_old.
Why a point estimate of τ rather than a conjugate Gamma prior on 1/τ with its own factor q(1/τ):
the coordinate step stays one closed form, the posterior predictive stays Gaussian in location
(a q(1/τ) makes it Student-t and brings E[1/τ], E[log τ] into every other update), and one τ
shared by all N events is pinned down by them (relative posterior sd ≈ 1/√N, 3 % at N = 1000),
so the Bayesian factor would change little. τ is one number: no leading dimensions.
A τ_k per component is not implemented: it needs |X_n|² among the features (its coefficient
−1/2τ_k depends on k) and τ_k = D_k / 2N_k from the per-component D_k.
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


def local_statistics(
    f: Tensor, q: Posterior, prior: Prior, event_weights: Tensor | None = None
) -> dict[str, Tensor]:
    """What a batch of events contributes to a sweep, given q(μ), q(λ): the optimal r of its
    events and from them T = rᵀF [..., K, 4], the entropy H[q(Z)] of its events and the number
    of events. All three are sums over events, so batches and processes add them up. With
    `event_weights` [N] each event's terms are times its weight w_n: T = (w ⊙ r)ᵀF and
    H = Σ_n w_n H[r_n] = Σ_n w_n log-sum-exp_n − ⟨T, Wᵀ⟩, the sums of an event repeated w_n
    times.

    r is normalised by the log-sum-exp shift (max, then Σ exp) in place, so the step holds a
    single [..., B, K] array; log r itself is never needed, only T and Σ_n log-sum-exp_n:
    H = Σ_n log-sum-exp_n − Σ_nk r_nk logits_nk, and the latter is ⟨T, Wᵀ⟩."""
    w = weights(q, prior)
    r = f @ w  # the logits, normalised into r in place
    top = r.amax(-1, keepdim=True)
    total = r.sub_(top).exp_().sum(-1, keepdim=True)
    norm = top + total.log()
    r.div_(total)
    if event_weights is not None:
        r.mul_(event_weights[:, None])
        norm = norm * event_weights[:, None]
    t = r.transpose(-1, -2) @ f
    norm = norm.sum((-1, -2))
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


def initial_posterior(
    f: Tensor, centres: Tensor, prior: Prior, event_weights: Tensor | None = None
) -> Posterior:
    """q after one μ/λ update from soft assignments to the seeds by location alone (each event's
    assignment times its weight)."""
    ones = torch.ones(centres.shape[:-1], dtype=f.dtype, device=f.device)
    seeded = Posterior(m=centres.to(f.dtype), s=0 * ones, a=ones, b=ones)
    r = update_assignments(f, seeded, prior).exp()
    if event_weights is not None:
        r = r * event_weights[:, None]
    t = r.transpose(-1, -2) @ f  # (w ⊙ r)ᵀF
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


# Empirical Bayes: π and τ (derived in the module docstring) ------------------------------------
def update_weights(t: Tensor, prior: Prior) -> Prior:
    """The π maximising the ELBO given r: π_k = N_k / N (floored at the smallest float)."""
    n_k = t[..., 3]
    pi = n_k / n_k.sum(-1, keepdim=True)
    return prior._replace(log_pi=pi.clamp_min(torch.finfo(pi.dtype).tiny).log())


def expected_sq_distance(t: Tensor, sq_norm: Tensor, q: Posterior) -> Tensor:
    """D = E_q Σ_nk r_nk |X_n − μ_k|² [...] from T, Σ_n |X_n|² and q(μ)."""
    n_k = t[..., 3]
    spread = (n_k * (q.m.square().sum(-1) + 2 * q.s)).sum(-1)
    return sq_norm - 2 * (q.m * t[..., :2]).sum((-1, -2)) + spread


def update_tau(t: Tensor, sq_norm: Tensor, q: Posterior, prior: Prior) -> Prior:
    """The τ maximising the ELBO given r and q(μ): τ = D / 2N."""
    n = t[..., 3].sum(-1)
    return prior._replace(tau=expected_sq_distance(t, sq_norm, q) / (2 * n))


def empirical_bayes_update(
    t: Tensor,
    entropy: Tensor,
    constant: Tensor,
    sq_norm: Tensor,
    q: Posterior,
    prior: Prior,
    learn_weights: bool,
    learn_tau: bool,
) -> tuple[Posterior, Prior, Tensor]:
    """`global_update`, then π (if `learn_weights`), then τ (if `learn_tau`): each a coordinate
    step from the summed statistics. `constant` is Σ_n c_n under the incoming τ. Returns q, the
    prior and the exact ELBO of (r, q, π, τ) after the sweep."""
    q = update_rates(t, prior, update_locations(t, prior, q))
    if learn_weights:
        prior = update_weights(t, prior)
    if learn_tau:
        new = update_tau(t, sq_norm, q, prior)
        constant = constant + sq_norm / 2 * (1 / prior.tau - 1 / new.tau)
        prior = new
    return q, prior, elbo_from_statistics(t, entropy, constant, q, prior)
