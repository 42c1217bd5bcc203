"""Coordinate-ascent variational inference for the earthquake mixture (`fit=cavi`).

One epoch = one sweep: each batch's events take their optimal q(Z_n) = Cat(r_n) under the
current q(μ), q(λ) and contribute T = rᵀF, the entropy of their r and Σ_n c_n
(`src.fits.cavi_updates`; for weighted events, each event's terms times its weight w_n: the
ELBO of a data set in which event n occurs w_n times); from the sums q(μ) then q(λ) take
their optimal values and the exact ELBO of the sweep follows. A restart ends when the ELBO's
relative change is below `tol`. The initialisation seeds k-means++ on the locations and makes
one μ/λ update from soft assignments.
With `learn_weights` / `learn_tau` the prior's π and τ are learned too (empirical Bayes: each
the ELBO's maximiser given the rest, a coordinate step after q(λ); derived in
`src.fits.cavi_updates`); each restart starts again from the configured π and τ.
When the truth is known, the test stage also reports cluster recovery: the ARI of the MAP
clusters and the μ/λ errors after matching fitted to true components.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from src.fits import cavi_updates as cavi
from src.fits.sufficient_stats import SufficientStatsFit
from src.models.earthquake import EarthquakeMixture, data_constant, features
from src.utils.constraints import Constraint, Flag
from src.utils.kmeans import kmeans_plus_plus


class CAVIFit(SufficientStatsFit):
    objective_name, objective_label = "train/elbo", "ELBO"
    constraints: ClassVar[dict[str, Constraint]] = {"learn_weights": Flag(), "learn_tau": Flag()}

    def __init__(
        self,
        model: nn.Module,
        learn_weights: bool = False,
        learn_tau: bool = False,
        **settings,
    ) -> None:
        super().__init__(model, **settings)
        self.learn_weights, self.learn_tau = learn_weights, learn_tau
        # each restart starts from the configured prior, whatever an earlier restart learned
        self._configured = getattr(model, "prior", None)
        if self._configured is not None:
            self._configured = self._configured._replace(
                log_pi=self._configured.log_pi.clone(), tau=self._configured.tau.clone()
            )

    @staticmethod
    def accepts(model: nn.Module) -> str | None:
        if not isinstance(model, EarthquakeMixture):
            return "CAVI fits the earthquake mixture (model=earthquake)"
        return None

    def converged(self, previous: float, current: float) -> bool:
        return abs(current - previous) < self.tol * abs(previous)

    def initialise(
        self, events: Tensor, weights: Tensor | None, generator: torch.Generator
    ) -> None:
        model = self.model
        model.set_prior(self._configured)
        centres = kmeans_plus_plus(events[:, :2], model.n_components, generator, weights)
        f = features(events[:, :2], events[:, 2])
        model.set_posterior(cavi.initial_posterior(f, centres, model.prior, weights))

    def batch_statistics(self, events: Tensor, weights: Tensor | None = None) -> dict[str, Tensor]:
        model = self.model
        x, counts = events[:, :2], events[:, 2]
        f = features(x, counts)
        local = cavi.local_statistics(f, model.posterior, model.prior, weights)
        sq_norm = x.square().sum(-1)
        return local | {
            "constant": data_constant(x, counts, model.prior, weights),
            # Σ_n w_n |X_n|², for the τ step
            "sq_norm": sq_norm.sum() if weights is None else (weights * sq_norm).sum(),
        }

    def update(self, stats: dict[str, Tensor]) -> Tensor:
        model = self.model
        if not (self.learn_weights or self.learn_tau):
            q, elbo = cavi.global_update(
                stats["t"], stats["entropy"], stats["constant"], model.posterior, model.prior
            )
        else:
            q, prior, elbo = cavi.empirical_bayes_update(
                *(stats[k] for k in ("t", "entropy", "constant", "sq_norm")),
                model.posterior,
                model.prior,
                self.learn_weights,
                self.learn_tau,
            )
            model.set_prior(prior)
        model.set_posterior(q)
        return elbo / stats["n"]

    @torch.no_grad()
    def extra_test_metrics(self) -> dict[str, float]:
        """Recovery of a known truth, from the whole test split (the same on every rank)."""
        from scipy.optimize import linear_sum_assignment
        from sklearn.metrics import adjusted_rand_score

        datamodule = self.trainer.datamodule
        truth, labels = datamodule.truth, datamodule.extras["test"].get("labels")
        if truth is None or labels is None:
            return {}
        model, q = self.model, self.model.posterior
        assigned = model.assign(datamodule.splits["test"].to(self.device))
        ari = adjusted_rand_score(labels.numpy(), assigned.cpu().numpy())
        means, rates = truth.means.to(q.m), truth.rates.to(q.a)
        distance = torch.cdist(q.m, means)
        rows, cols = linear_sum_assignment(distance.cpu().numpy())
        relative = ((q.a / q.b)[rows] - rates[cols]).abs() / rates[cols]
        return {
            "test/ari": float(ari),
            "test/mu_error": float(distance[rows, cols].max()),
            "test/lambda_rel_error": float(relative.max()),
        }
