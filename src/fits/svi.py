"""Stochastic variational inference for the earthquake mixture (`fit=svi`, `model=earthquake`;
Hoffman, Blei, Wang & Paisley 2013): a natural-gradient step on the global factors after every
mini-batch.

The model is conditionally conjugate: given q(Z), the optimal q(μ_k) and q(λ_k) are in the
prior's exponential families with natural parameters η̂ = η_prior + (terms linear in
T = Σ_n r_n F_nᵀ) (`cavi_updates.natural_optimum`): precision 1/s = 1/ρ + N_k/τ, precision ×
mean m/s = ν/ρ + Σ r X/τ, a = α + Σ r S, b = β + N_k. Write the ELBO as a function of the
global η alone, L(η) = max over q(Z) of ELBO(q(Z), η). For such models (Hoffman et al., §2.3)
its gradient is ∇_η L = ∇²A(η) (η̂(η) − η), with A the log-normaliser, and ∇²A(η) is the
Fisher information of q, so the natural gradient (Fisher⁻¹ × gradient) is simply

    ∇̃_η L = η̂(η) − η,      where η̂(η) is the CAVI optimum given the r that η implies.

A mini-batch b of B events gives an unbiased estimate of η̂: the local step takes the optimal
r of its events given the current q (`cavi_updates.local_statistics`) and scales their T to
N events, η̂_t = η_prior + (terms of (N/B) T_b). A step of size ρ_t along the noisy natural
gradient is then

    η_t = η_{t−1} + ρ_t (η̂_t − η_{t−1}) = (1 − ρ_t) η_{t−1} + ρ_t η̂_t,

the same Robbins–Monro schedule as stepwise EM (ρ_t = (t + t₀)^(−κ), κ ∈ (0.5, 1]: Σρ = ∞,
Σρ² < ∞; see `src/fits/online_em.py`). η is kept in coordinates (1/s, m/s, a, b), an affine
image of the exponential-family natural parameters (m/s, −1/2s) and (a − 1, −b): convex
combinations commute with affine maps, so the step is the same in either. Since η̂ is affine in
T, SVI is also a running average of scaled T (stepwise EM's form); η is what is stored.

Exactly (tests/test_online_fits.py): with ρ = 1 and the full batch a step is one CAVI sweep, bit
for bit (η = 0·η + 1·η̂ = η̂, and q from η̂ takes `update_locations`' operations); with κ any,
t₀ = 0 and full batches the first step is CAVI's first sweep; with κ = 1, t₀ = 0 and full
batches η_t is the mean of the CAVI optima η̂(η_0), …, η̂(η_{t−1}) of all past iterates.

The objective of a step is the exact ELBO per event of the batch scaled to N under the new q
(T, entropy and Σ c of the batch × N/B; with the full batch, the ELBO CAVI logs after a sweep);
`train/elbo` per pass is the mean over the pass (see `src/fits/online.py`).
"""

from __future__ import annotations

from torch import Tensor

from src.fits import cavi_updates as cavi
from src.fits.cavi import CAVIFit
from src.fits.online import OnlineFit


class SVIFit(OnlineFit, CAVIFit):
    def initial_running(self) -> dict[str, Tensor]:
        return {
            k: v.detach().clone() for k, v in cavi.natural_parameters(self.model.posterior).items()
        }

    def online_update(self, scaled: dict[str, Tensor], rho: float) -> Tensor:
        model, prior = self.model, self.model.prior
        s = {k: v.to(self.compute_dtype) for k, v in scaled.items()}
        target = cavi.natural_optimum(s["t"], prior)
        self.state["running"] = eta = self.blend(self.state["running"], target, rho)
        q = cavi.from_natural(eta, model.posterior)
        model.set_posterior(q)
        return cavi.elbo_from_statistics(s["t"], s["entropy"], s["constant"], q, prior) / s["n"]
