"""Expectation-maximisation for a Gaussian mixture (`fit=em`, `model=gmm`).

One epoch = one EM step. Each batch contributes, under the current parameters, Σ_n log p(x_n)
and the E-step's statistics Σ_n r_nk, Σ_n r_nk x_n, Σ_n r_nk x_n x_nᵀ (of x − shift, a fixed
centre that keeps float32 digits); the M-step (`src.models.gmm_ops.from_statistics`) sets
π, μ, Σ from their sums. The objective is the mean log-likelihood *before* the step, which EM
never decreases; a restart ends when it changes by less than `tol`. Memory is K×D×CHUNK per
batch, never N×K: any N fits, given batches.
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

    def initialise(self, x: Tensor, generator: torch.Generator) -> None:
        self.model.init_from_data(x, generator)

    def batch_statistics(self, x: Tensor) -> dict[str, Tensor]:
        model = self.model
        log_weights = torch.log_softmax(model.logits, -1)
        total, (counts, first, second) = em_statistics(
            x, log_weights, model.loc, model.scale_tril(), self.shift.to(x)
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
