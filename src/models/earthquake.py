"""The Bayesian earthquake mixture and its mean-field CAVI (pure torch, no Lightning).

Model (π, τ, ν, ρ, α, β given): Z_n ~ Cat(π), X_n | Z_n=k ~ N(μ_k, τI₂), S_n | Z_n=k ~
Poisson(λ_k), μ_k ~ N(ν, ρI₂), λ_k ~ Gamma(α, β) (rate β). Variational family:
q(Z_n) = Cat(r_n), q(μ_k) = N(m_k, s_k I₂), q(λ_k) = Gamma(a_k, b_k).

Derived here (the source notes drop Σ_n r_nk from the precision, ν/ρ from the mean, and
write log λ_k where E[log λ_k] belongs):
    1/s_k = 1/ρ + N_k/τ,  m_k = s_k (ν/ρ + Σ_n r_nk X_n / τ),          N_k = Σ_n r_nk
    a_k = α + Σ_n r_nk S_n,  b_k = β + N_k
    log r_nk = log π_k − log 2πτ − (|X_n − m_k|² + 2 s_k)/2τ
               + S_n (ψ(a_k) − log b_k) − a_k/b_k − log S_n!  − log-sum-exp over k.
Everything that depends on (n, k) is one product F_n · W_k with F_n = (X_n, S_n, 1), so a
sweep is two [N, 4] × [4, K] products and one in-place log-sum-exp: O(N·K) time and memory.
The ELBO after the sweep follows exactly from T = rᵀF (sufficient statistics) and the
normalisers.
Every function broadcasts over leading restart dimensions of the posterior (R parallel fits).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.distributions import Gamma, NegativeBinomial, Normal, Poisson, kl_divergence

from src.errors import ConfigError
from src.utils.checks import finite_list, positive, positive_int, probability_vector


class Prior(NamedTuple):
    log_pi: Tensor  # [K]
    tau: float
    nu: Tensor  # [2]
    rho: float
    alpha: float
    beta: float


class Posterior(NamedTuple):
    m: Tensor  # [..., K, 2] means of q(μ_k)
    s: Tensor  # [..., K] variance (per coordinate) of q(μ_k)
    a: Tensor  # [..., K] shape of q(λ_k)
    b: Tensor  # [..., K] rate of q(λ_k)


def features(x: Tensor, counts: Tensor) -> Tensor:
    """F_n = (X_n, S_n, 1): [N, 4]."""
    return torch.cat([x, counts.to(x.dtype)[:, None], torch.ones_like(x[:, :1])], dim=1)


def weights(q: Posterior, prior: Prior) -> Tensor:
    """W [..., 4, K] such that F_n · W_k = E_q[log π_k p(X_n, S_n | μ_k, λ_k)] − c_n."""
    e_log_lam = torch.digamma(q.a) - q.b.log()
    const = (
        prior.log_pi
        - math.log(2 * math.pi * prior.tau)
        - (q.m.square().sum(-1) + 2 * q.s) / (2 * prior.tau)
        - q.a / q.b
    )
    return torch.cat(
        [q.m.transpose(-1, -2) / prior.tau, e_log_lam[..., None, :], const[..., None, :]], -2
    )


def data_constant(x: Tensor, counts: Tensor, prior: Prior) -> Tensor:
    """Σ_n c_n = Σ_n (−|X_n|²/2τ − log S_n!): the part of the likelihood free of k."""
    return -(x.square().sum() / (2 * prior.tau)) - torch.lgamma(counts.to(x.dtype) + 1).sum()


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


def sweep(f: Tensor, constant: Tensor, q: Posterior, prior: Prior) -> tuple[Posterior, Tensor]:
    """One CAVI sweep (r, then q(μ), then q(λ)); returns the new posterior and its ELBO [...].

    r is normalised by the log-sum-exp shift (max, then Σ exp) in place, so the sweep holds a
    single [..., N, K] array; log r itself is never needed, only T and Σ_n log-sum-exp_n."""
    w = weights(q, prior)
    r = f @ w  # the logits, normalised into r in place
    top = r.amax(-1, keepdim=True)
    total = r.sub_(top).exp_().sum(-1, keepdim=True)
    t = r.div_(total).transpose(-1, -2) @ f
    norm = (top + total.log()).sum((-1, -2))  # Σ_n log-sum-exp_n
    # H[q(Z)] = Σ_n log-sum-exp_n − Σ_nk r_nk logits_nk, the latter = ⟨T, Wᵀ⟩
    entropy = norm - (t * w.transpose(-1, -2)).sum((-1, -2))
    q = update_rates(t, prior, update_locations(t, prior, q))
    return q, elbo_from_statistics(t, entropy, constant, q, prior)


def kmeans_pp(x: Tensor, k: int, restarts: int, generator: torch.Generator) -> Tensor:
    """k-means++ seeds [restarts, k, 2]: each next seed drawn with probability ∝ squared
    distance to the nearest seed so far (loop over k only)."""
    n = len(x)
    first = torch.randint(n, (restarts,), generator=generator, device=x.device)
    seeds = [x[first]]
    d2 = (x - seeds[0][:, None]).square().sum(-1)
    for _ in range(k - 1):
        weights_ = d2 + 1e-12 * (d2.sum(-1, keepdim=True) == 0)
        pick = torch.multinomial(weights_, 1, generator=generator).squeeze(-1)
        seeds.append(x[pick])
        d2 = torch.minimum(d2, (x - seeds[-1][:, None]).square().sum(-1))
    return torch.stack(seeds, dim=-2)


def initial_posterior(f: Tensor, centres: Tensor, prior: Prior) -> Posterior:
    """q after one μ/λ update from soft assignments to the seeds by location alone."""
    ones = torch.ones(centres.shape[:-1], dtype=f.dtype, device=f.device)
    seeded = Posterior(m=centres.to(f.dtype), s=0 * ones, a=ones, b=ones)
    t = statistics(f, update_assignments(f, seeded, prior))
    return update_rates(t, prior, update_locations(t, prior, seeded))


def predictive_log_prob(x: Tensor, counts: Tensor, q: Posterior, prior: Prior) -> Tensor:
    """log p(X*, S* | data) [..., N] in closed form under q: Σ_k π_k N(X*; m_k, (τ + s_k)I)
    · NegBin(S*; a_k, p = 1/(1 + b_k)) (q factorises over k, so the mixture integrates
    component by component)."""
    loc = Normal(
        q.m[..., None, :, :], (prior.tau + q.s).sqrt()[..., None, :, None], validate_args=False
    )
    count = NegativeBinomial(
        q.a[..., None, :], probs=1 / (1 + q.b[..., None, :]), validate_args=False
    )
    per_k = loc.log_prob(x[:, None, :]).sum(-1) + count.log_prob(counts.to(x.dtype)[:, None])
    return (per_k + prior.log_pi).logsumexp(-1)


def make_prior(
    n_components: int,
    weights_: list[float] | None,
    tau: float,
    nu: list[float],
    rho: float,
    alpha: float,
    beta: float,
) -> Prior:
    """Validated hyper-parameters (float64); π = None means uniform."""
    k = positive_int("n_components", n_components)
    pi = [1.0 / k] * k if weights_ is None else probability_vector("weights", weights_, k)
    if min(pi) <= 0:
        raise ConfigError("weights", list(weights_), "weights > 0 (drop empty components)")
    return Prior(
        log_pi=torch.tensor(pi, dtype=torch.float64).log(),
        tau=positive("tau", tau),
        nu=torch.tensor(finite_list("nu", nu, 2), dtype=torch.float64),
        rho=positive("rho", rho),
        alpha=positive("alpha", alpha),
        beta=positive("beta", beta),
    )


def sample_events(
    n: int, log_pi: Tensor, means: Tensor, tau: float, rates: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(X [n, 2], S [n] long, Z [n]) from the mixture with fixed μ [K, 2] and λ [K]."""
    z = torch.distributions.Categorical(logits=log_pi).sample((n,))
    x = means[z] + math.sqrt(tau) * torch.randn(n, 2, dtype=means.dtype, device=means.device)
    return x, Poisson(rates[z]).sample().long(), z


def mixture_log_prob(
    x: Tensor, counts: Tensor, log_pi: Tensor, means: Tensor, tau: float, rates: Tensor
) -> Tensor:
    """log Σ_k π_k N(X; μ_k, τI) Poisson(S; λ_k) [N] for fixed μ, λ (the truth's density)."""
    loc = Normal(means, math.sqrt(tau), validate_args=False).log_prob(x[:, None, :]).sum(-1)
    cnt = Poisson(rates, validate_args=False).log_prob(counts.to(means.dtype)[:, None])
    return (loc + cnt + log_pi).logsumexp(-1)


class EarthquakeMixture(nn.Module):
    """The prior and R restarts' posteriors as buffers; `log_prob` and `sample` use the best
    restart's posterior predictive. Events are rows (x, y, S), hence `event_shape` (3,)."""

    support = "earthquake"
    event_shape = torch.Size([3])

    def __init__(self, prior: Prior, restarts: int = 1, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        k = len(prior.log_pi)
        self.tau, self.rho, self.alpha, self.beta = prior.tau, prior.rho, prior.alpha, prior.beta
        self.register_buffer("log_pi", prior.log_pi.to(dtype))
        self.register_buffer("nu", prior.nu.to(dtype))
        ones = torch.ones(restarts, k, dtype=dtype)
        self.register_buffer("m", self.nu.expand(restarts, k, 2).clone())
        self.register_buffer("s", prior.rho * ones)
        self.register_buffer("a", prior.alpha * ones)
        self.register_buffer("b", prior.beta * ones)
        self.register_buffer("elbos", torch.full((restarts,), -math.inf, dtype=dtype))
        self.elbo_trace: list[float] = []  # best ELBO per point after each sweep, for figures

    @property
    def prior(self) -> Prior:
        return Prior(self.log_pi, self.tau, self.nu, self.rho, self.alpha, self.beta)

    @property
    def posterior(self) -> Posterior:
        """All restarts' posteriors (leading dimension R)."""
        return Posterior(self.m, self.s, self.a, self.b)

    def set_posterior(self, q: Posterior, elbos: Tensor) -> None:
        for name, value in zip(Posterior._fields, q):
            getattr(self, name).copy_(value)
        self.elbos.copy_(elbos)

    @property
    def fitted(self) -> Posterior:
        """The posterior of the restart with the highest ELBO."""
        best = self.elbos.argmax()
        return Posterior(*(v[best] for v in self.posterior))

    def log_prob(self, events: Tensor) -> Tensor:
        """Posterior predictive log-density (x, y) × log-mass (S) of rows (x, y, S) [N]."""
        events = events.to(self.m.dtype)
        return predictive_log_prob(events[:, :2], events[:, 2], self.fitted, self.prior)

    def assign(self, x: Tensor, counts: Tensor) -> Tensor:
        """MAP cluster of each event under q [N]."""
        f = features(x.to(self.m.dtype), counts)
        return assignment_logits(f, self.fitted, self.prior).argmax(-1)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n events (x, y, S) [n, 3] from the posterior predictive."""
        q = self.fitted
        z = torch.distributions.Categorical(logits=self.log_pi).sample((n,))
        mu = q.m[z] + q.s[z, None].sqrt() * torch.randn_like(q.m[z])
        lam = Gamma(q.a[z], q.b[z]).sample()
        x = mu + math.sqrt(self.tau) * torch.randn_like(mu)
        return torch.cat([x, Poisson(lam).sample()[:, None]], dim=1)
