"""Expectation-maximisation for a Gaussian mixture (`fit=em`, `model=gmm`).

One epoch = one EM step. Each batch contributes, under the current parameters, Σ_n log p(x_n)
and the E-step's statistics Σ_n r_nk, Σ_n r_nk x_n, Σ_n r_nk x_n x_nᵀ (of x − shift, a fixed
centre that keeps float32 digits), each term times the row's weight w_n for weighted data (the
M-step of Σ_n w_n Σ_k r_nk log π_k N(x_n; μ_k, Σ_k) is the same closed form of the weighted
sums); the M-step (`src.models.gmm_ops.from_statistics`) sets
π, μ, Σ from their sums. The objective is the mean log-likelihood *before* the step, which EM
never decreases; a restart ends when it changes by less than `tol`. Memory is K×D×CHUNK per
batch, never N×K: any N fits, given batches.

Choosing K. The test stage adds `train/bic` and `train/aic` of the final mixture θ̂ on the
training split, scikit-learn's `GaussianMixture.bic(X)` and `aic(X)`:

    BIC = −2 ℓ(θ̂) + p ln N,    AIC = −2 ℓ(θ̂) + 2p,    ℓ(θ̂) = Σ_{n ≤ N} log p(x_n; θ̂),

with p the free parameters (ℓ and N weighted for weighted rows: N = Σ_n w_n, the rows they
stand for): K − 1 weights (they sum to 1), K·D means, and per component the
D(D+1)/2 entries of a symmetric covariance (`full`) or its D variances (`diag`). ℓ(θ̂) needs its
own pass: the logged objective of the last step is ℓ(θ_{T−1})/N, the log-likelihood *before*
the M-step that produced θ̂ = θ_T, and EM only promises ℓ(θ_T) ≥ ℓ(θ_{T−1}). At convergence
the last gain was under tol per point and the next is of its order, up to ~2N·tol in BIC: a
relative error ~tol / |ℓ/N| (3e-7 for tol = 1e-6 on mog2d), far above 1e-8; a restart cut by
max_iter, a kept earlier restart or online EM's moving parameters can be further off. So the
pass sums the same `log_likelihood` statistic an update sums, over every training batch of every
rank (`training_totals`: float64, one all-reduce), and N is the summed count: any batch size and
any number of processes give the same criteria. The pass runs at test, on exactly the weights
of last.ckpt that the test metrics score, however the fit ended (converged, cut, resumed).
"""

from __future__ import annotations

from functools import cached_property

import torch
from torch import Tensor, nn

from src.fits.sufficient_stats import SufficientStatsFit
from src.models.gmm import GaussianMixture
from src.models.gmm_ops import em_statistics, from_statistics
from src.models.standardized import Standardized


class EMFit(SufficientStatsFit):
    objective_name, objective_sign = "train/nll", -1.0
    objective_label = "log-likelihood"

    @staticmethod
    def accepts(model: nn.Module) -> str | None:
        if isinstance(model, Standardized):
            return "EM fits the mixture in the data's own units: set data.standardize=false"
        if not isinstance(model, GaussianMixture):
            return "EM fits a Gaussian mixture (model=gmm)"
        return None

    @cached_property
    def shift(self) -> Tensor:
        """The centre of the initialisation subsample: the same on every rank and every resume."""
        return self._init_x.mean(0)

    def initialise(self, x: Tensor, weights: Tensor | None, generator: torch.Generator) -> None:
        self.model.init_from_data(x, weights, generator)

    def batch_statistics(self, x: Tensor, weights: Tensor | None = None) -> dict[str, Tensor]:
        model = self.model
        log_weights = torch.log_softmax(model.logits, -1)
        total, (counts, first, second) = em_statistics(
            x, log_weights, model.loc, model.scale_tril(), self.shift.to(x), weights
        )
        return {"log_likelihood": total, "counts": counts, "first": first, "second": second}

    def update(self, stats: dict[str, Tensor]) -> Tensor:
        model = self.model
        stats = {k: v.to(model.loc.dtype) for k, v in stats.items()}
        parameters = from_statistics(
            stats["counts"],
            stats["first"],
            stats["second"],
            self.shift.to(model.loc),
            model.reg_covar,
            model.diagonal,
        )
        model.set_parameters(*parameters)
        return stats["log_likelihood"] / stats["n"]

    def parameter_count(self) -> int:
        return n_parameters(self.model)

    def extra_test_metrics(self) -> dict[str, Tensor]:
        """train/bic and train/aic of the final parameters (see the module's docstring)."""
        totals = self.training_totals()
        return information_criteria(totals["log_likelihood"], totals["n"], n_parameters(self.model))


def n_parameters(model: GaussianMixture) -> int:
    """K − 1 + K·D + K·D(D+1)/2 (full) or K − 1 + 2K·D (diag): scikit-learn's count."""
    k, (d,) = model.n_components, model.event_shape
    covariance = k * d if model.diagonal else k * d * (d + 1) // 2
    return k - 1 + k * d + covariance


def information_criteria(log_likelihood: Tensor, n: Tensor, p: int) -> dict[str, Tensor]:
    """BIC = −2ℓ + p ln N and AIC = −2ℓ + 2p, for ℓ the log-likelihood summed over N points."""
    deviance = -2 * log_likelihood
    return {"train/bic": deviance + p * n.log(), "train/aic": deviance + 2 * p}
