"""The Bayesian earthquake mixture as a density model (pure torch, no Lightning).

Model (π, τ, ν, ρ, α, β given; π and τ may be learned by the fit): Z_n ~ Cat(π),
X_n | Z_n=k ~ N(μ_k, τI₂), S_n | Z_n=k ~ Poisson(λ_k), μ_k ~ N(ν, ρI₂), λ_k ~ Gamma(α, β)
(rate β). Its state is a mean-field posterior q(μ_k) = N(m_k, s_k I₂), q(λ_k) = Gamma(a_k, b_k),
fitted by `fit=cavi` (src/fits/cavi_updates.py derives the updates); `log_prob` is the
posterior predictive.

The expected log joint of event n in component k is one product F_n · W_k + c_n with
F_n = (X_n, S_n, 1) and c_n = −|X_n|²/2τ − log S_n! (free of k):
    E_q[log π_k N(X_n; μ_k, τI) Poisson(S_n; λ_k)]
      = log π_k − log 2πτ − (|X_n − m_k|² + 2 s_k)/2τ + S_n (ψ(a_k) − log b_k) − a_k/b_k − log S_n!
so the assignment logits of N events are one [N, 4] × [4, K] product.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn
from torch.distributions import Gamma, NegativeBinomial, Normal, Poisson

from src.errors import ConfigError
from src.utils.constraints import Constraint, Integer, ListOf, Nullable, Probabilities, Real


class Prior(NamedTuple):
    log_pi: Tensor  # [K]
    tau: float | Tensor  # a float, or a 0-dim tensor (the model's buffer, learnable by the fit)
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
        - torch.as_tensor(2 * math.pi * prior.tau, dtype=q.m.dtype, device=q.m.device).log()
        - (q.m.square().sum(-1) + 2 * q.s) / (2 * prior.tau)
        - q.a / q.b
    )
    return torch.cat(
        [q.m.transpose(-1, -2) / prior.tau, e_log_lam[..., None, :], const[..., None, :]], -2
    )


def data_constant(x: Tensor, counts: Tensor, prior: Prior, weights: Tensor | None = None) -> Tensor:
    """Σ_n c_n = Σ_n (−|X_n|²/2τ − log S_n!): the part of the likelihood free of k (Σ_n w_n c_n
    for weighted events)."""
    if weights is None:
        return -(x.square().sum() / (2 * prior.tau)) - torch.lgamma(counts.to(x.dtype) + 1).sum()
    c = -(x.square().sum(-1) / (2 * prior.tau)) - torch.lgamma(counts.to(x.dtype) + 1)
    return (weights.to(c) * c).sum()


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
    """The hyper-parameters (float64), as `PRIOR` and `check_prior` accept them; π = None means
    uniform."""
    k = n_components
    pi = [1.0 / k] * k if weights_ is None else [float(w) for w in weights_]
    return Prior(
        log_pi=torch.tensor(pi, dtype=torch.float64).log(),
        tau=float(tau),
        nu=torch.tensor([float(v) for v in nu], dtype=torch.float64),
        rho=float(rho),
        alpha=float(alpha),
        beta=float(beta),
    )


POSITIVE = Real(low=0, low_open=True)
# the prior's settings, declared by the model and by the data set that draws from it
PRIOR: dict[str, Constraint] = {
    "n_components": Integer(low=1),
    "weights": Nullable(Probabilities()),
    "tau": POSITIVE,
    "nu": ListOf(Real(), length=2),
    "rho": POSITIVE,
    "alpha": POSITIVE,
    "beta": POSITIVE,
}


def check_prior(settings: Mapping[str, Any]) -> None:
    """One weight per component, none of them 0 (an empty component: drop it)."""
    weights, k = settings.get("weights"), settings.get("n_components")
    if weights is None:
        return
    if len(weights) != k:
        valid = f"a list of {k} non-negative weights that sum to 1 (one per component)"
        raise ConfigError("weights", list(weights), valid)
    if min(weights) <= 0:
        raise ConfigError("weights", list(weights), "weights > 0 (drop empty components)")


class EarthquakeMixture(nn.Module):
    """The prior's hyper-parameters and the posterior q as the model's parameters; `log_prob`
    and `sample` use the posterior predictive. Events are rows (x, y, S): `event_shape` (3,).

    q's (m, s, a, b) are the module's parameters, set in closed form by `fit=cavi`."""

    support = "earthquake"
    event_shape = torch.Size([3])
    constraints: ClassVar[dict[str, Constraint]] = PRIOR

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        check_prior(settings)

    def __init__(
        self,
        n_components: int = 4,
        weights: list[float] | None = None,
        tau: float = 1.0,
        nu: tuple[float, float] = (0.0, 0.0),
        rho: float = 100.0,
        alpha: float = 4.0,
        beta: float = 0.4,
    ) -> None:
        super().__init__()
        prior = make_prior(n_components, weights, tau, nu, rho, alpha, beta)
        self.rho, self.alpha, self.beta = prior.rho, prior.alpha, prior.beta
        # π and τ are state (buffers): a fit may learn them (fit=cavi learn_weights/learn_tau),
        # and checkpoints and kept restarts carry them
        self.register_buffer("log_pi", prior.log_pi)
        self.register_buffer("tau", torch.tensor(prior.tau, dtype=torch.float64))
        self.register_buffer("nu", prior.nu)
        k = len(prior.log_pi)
        ones = torch.ones(k, dtype=torch.float64)
        self.m = nn.Parameter(self.nu.expand(k, 2).clone())
        self.s = nn.Parameter(prior.rho * ones)
        self.a = nn.Parameter(prior.alpha * ones)
        self.b = nn.Parameter(prior.beta * ones)

    @property
    def n_components(self) -> int:
        return len(self.log_pi)

    @property
    def prior(self) -> Prior:
        return Prior(self.log_pi, self.tau, self.nu, self.rho, self.alpha, self.beta)

    @property
    def posterior(self) -> Posterior:
        return Posterior(self.m, self.s, self.a, self.b)

    @torch.no_grad()
    def set_posterior(self, q: Posterior) -> None:
        for name, value in zip(Posterior._fields, q):
            getattr(self, name).copy_(value)

    @torch.no_grad()
    def set_prior(self, prior: Prior) -> None:
        """Take π and τ from `prior` (the fit's empirical-Bayes updates); ν, ρ, α, β stay."""
        self.log_pi.copy_(prior.log_pi)
        self.tau.copy_(torch.as_tensor(prior.tau))

    def log_prob(self, events: Tensor) -> Tensor:
        """Posterior predictive log-density (x, y) × log-mass (S) of rows (x, y, S) [N]."""
        events = events.to(self.m.dtype)
        return predictive_log_prob(events[:, :2], events[:, 2], self.posterior, self.prior)

    def assign(self, events: Tensor) -> Tensor:
        """MAP cluster of each event under q [N]."""
        events = events.to(self.m.dtype)
        f = features(events[:, :2], events[:, 2])
        return (f @ weights(self.posterior, self.prior)).argmax(-1)

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        """n events (x, y, S) [n, 3] from the posterior predictive."""
        q = self.posterior
        z = torch.distributions.Categorical(logits=self.log_pi).sample((n,))
        mu = q.m[z] + q.s[z, None].sqrt() * torch.randn_like(q.m[z])
        lam = Gamma(q.a[z], q.b[z]).sample()
        x = mu + self.tau.sqrt() * torch.randn_like(mu)
        return torch.cat([x, Poisson(lam).sample()[:, None]], dim=1)
