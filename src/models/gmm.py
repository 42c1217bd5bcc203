"""A Gaussian mixture in D dimensions: p(x) = Σ_k π_k N(x; μ_k, L_k L_kᵀ).

Unconstrained parameters, so any optimizer can fit it by maximum likelihood: weights
π = softmax(logits) (the simplex constraint), and each covariance through its Cholesky factor
L_k, whose diagonal is sqrt(reg_covar) + exp(raw) (`full`: free strict lower triangle too;
`diag`: diagonal only). That floor bounds det Σ_k ≥ reg_covar^D, so no component can collapse
onto a point and send the likelihood to infinity. EM (`fit=em`, src/fits/em.py) uses the same
arithmetic (`src.models.gmm_ops`) and adds reg_covar to Σ_k's diagonal as scikit-learn does,
which keeps the factor's diagonal above the same floor.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from src.errors import ConfigError
from src.models.gmm_grad import MixtureLogLikelihood
from src.models.gmm_ops import e_step, hard_assignment, m_step
from src.utils.constraints import Constraint, Flag, Integer, OneOf, Real
from src.utils.kmeans import kmeans_plus_plus

INITS = ("kmeans++", "random_from_data")


class GaussianMixture(nn.Module):
    support = "continuous"
    constraints: ClassVar[dict[str, Constraint]] = {
        "n_components": Integer(low=1),
        "dim": Integer(low=1),
        "covariance_type": OneOf("full", "diag"),
        "reg_covar": Real(low=0),
        "analytic_grad": Flag(),
        "init": OneOf(*INITS),
        "init_trials": Integer(low=1),
    }

    def __init__(
        self,
        n_components: int = 8,
        dim: int = 2,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        analytic_grad: bool = False,
        init: str = "kmeans++",
        init_trials: int = 5,
    ) -> None:
        super().__init__()
        k, d = n_components, dim
        self.diagonal = covariance_type == "diag"
        self.reg_covar, self.analytic_grad = float(reg_covar), bool(analytic_grad)
        self.init, self.init_trials = init, init_trials
        self.event_shape = torch.Size([d])
        self.logits = nn.Parameter(torch.zeros(k))
        self.loc = nn.Parameter(torch.randn(k, d))
        self.raw_diag = nn.Parameter(torch.zeros(k, d))
        self.raw_lower = nn.Parameter(torch.zeros(k, d, d), requires_grad=not self.diagonal)

    @property
    def n_components(self) -> int:
        return len(self.logits)

    def scale_tril(self) -> Tensor:
        """L_k: [K, D, D], lower triangular with diagonal ≥ sqrt(reg_covar)."""
        diag = math.sqrt(self.reg_covar) + self.raw_diag.exp()
        lower = torch.zeros_like(self.raw_lower) if self.diagonal else self.raw_lower.tril(-1)
        return lower + torch.diag_embed(diag)

    def covariance(self) -> Tensor:
        tril = self.scale_tril()
        return tril @ tril.transpose(-1, -2)

    def log_prob(self, x: Tensor) -> Tensor:
        if self.analytic_grad:
            return MixtureLogLikelihood.apply(x, self.logits, self.loc, self.scale_tril())
        log_weights = torch.log_softmax(self.logits, -1)
        return e_step(x, log_weights, self.loc, self.scale_tril())[0]

    def distribution(self) -> MixtureSameFamily:
        return MixtureSameFamily(
            Categorical(logits=self.logits),
            MultivariateNormal(self.loc, scale_tril=self.scale_tril()),
            validate_args=False,
        )

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.distribution().sample((n,))

    @torch.no_grad()
    def set_parameters(self, log_weights: Tensor, loc: Tensor, scale_tril: Tensor) -> None:
        """Store a mixture given as (log π, μ, L); L's diagonal must be ≥ sqrt(reg_covar)."""
        self.logits.copy_(log_weights)
        self.loc.copy_(loc)
        excess = scale_tril.diagonal(dim1=-2, dim2=-1) - math.sqrt(self.reg_covar)
        self.raw_diag.copy_(excess.clamp_min(torch.finfo(excess.dtype).tiny).log())
        self.raw_lower.copy_(scale_tril.tril(-1))

    @torch.no_grad()
    def init_from_data(
        self, x: Tensor, weights: Tensor | None = None, generator: torch.Generator | None = None
    ) -> None:
        """Centres by `init` (best of `init_trials` draws), then one M-step on the hard
        assignment of each point to its nearest centre; with `weights` [N] every draw, the
        potential and the M-step count point n w_n times."""
        k = self.n_components
        points = len(x) if weights is None else int((weights > 0).sum())
        if k > points:  # raised where model meets data, so it names its full config path
            raise ConfigError(
                "model.n_components", k, f"at most the number of training points ({points})"
            )
        if generator is None:
            generator = torch.Generator(x.device).manual_seed(torch.initial_seed() % 2**63)
        x = x.to(self.loc.dtype)
        mass = None if weights is None else weights.to(x)
        best = None
        for _ in range(self.init_trials):  # keep the centres with the least k-means potential
            if self.init == "kmeans++":
                centres = kmeans_plus_plus(x, k, generator, mass)
            elif mass is None:
                centres = x[torch.randperm(len(x), generator=generator, device=x.device)[:k]]
            else:
                centres = x[torch.multinomial(mass, k, generator=generator)]
            distance = torch.cdist(x, centres).min(-1).values.square()
            potential = (distance if mass is None else distance * mass).sum()
            if best is None or potential < best[0]:
                best = (potential, centres)
        resp = hard_assignment(x, best[1])
        resp = resp if mass is None else resp * mass
        self.set_parameters(*m_step(x, resp, self.reg_covar, self.diagonal))
