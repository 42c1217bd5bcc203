"""CAVI for the earthquake mixture as a LightningModule: one training step = one full sweep.

Manual optimisation with no optimizer: the step replaces the variational parameters by their
coordinate optima (`src.models.earthquake.sweep`). `n_init` restarts run side by side as a
leading batch dimension (one vectorised sweep for all of them); the restart with the best ELBO
is the fit. `train/elbo` (the best restart's exact ELBO, nats per event) goes to the loggers
after every sweep; the run stops when every restart's relative ELBO change is below `tol`,
or after `max_iter` sweeps. The test stage scores held-out events by the closed-form
posterior predictive and, when the truth is known, recovers clusters, μ_k and λ_k.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import Tensor

from src.errors import UserError
from src.models import earthquake as eq
from src.utils.checks import one_of, positive, positive_int

DTYPES = {32: torch.float32, 64: torch.float64}


class CaviModule(pl.LightningModule):
    def __init__(
        self,
        n_components: int = 4,
        weights: list[float] | None = None,
        tau: float = 1.0,
        nu: tuple[float, float] = (0.0, 0.0),
        rho: float = 100.0,
        alpha: float = 4.0,
        beta: float = 0.4,
        n_init: int = 4,
        max_iter: int = 500,
        tol: float = 1e-8,
        precision: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        prior = eq.make_prior(n_components, weights, tau, list(nu), rho, alpha, beta)
        self.max_iter, self.tol = positive_int("max_iter", max_iter), positive("tol", tol)
        dtype = DTYPES[one_of("precision", precision, tuple(DTYPES))]
        self.model = eq.EarthquakeMixture(prior, positive_int("n_init", n_init), dtype)
        self.seed = seed
        self.register_buffer("iterations", torch.zeros((), dtype=torch.long))
        # an empty parameter for a no-op optimizer: its step() makes Lightning count sweeps as
        # global steps, which checkpoints (best by val/nll), figures and loggers key on
        self.clock = torch.nn.Parameter(torch.zeros(0))
        self._cache: tuple[Tensor, Tensor] | None = None  # (features, data constant) of train

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule
        if getattr(datamodule, "support", None) != "earthquake":
            raise UserError(
                f"model=earthquake_cavi with data={type(datamodule).__name__} cannot work: "
                "CAVI fits earthquake catalogues (locations x, y and counts s)"
            )

    def on_train_start(self) -> None:
        self._cache = None  # a new fit may bring new data

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self.clock], lr=0.0)  # the sweep itself is closed-form

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        model, prior = self.model, self.model.prior
        if self._cache is None:
            x, s = batch[0].to(model.m.dtype), batch[1]
            self._cache = (eq.features(x, s), eq.data_constant(x, s, prior))
            if self.iterations == 0:  # a fresh run (a resumed one has its posterior)
                self._initialise(x)
        f, constant = self._cache
        previous = model.elbos.clone()
        q, elbos = eq.sweep(f, constant, model.posterior, prior)
        model.set_posterior(q, elbos)
        self.iterations += 1
        self.optimizers().step()  # no-op: advances trainer.global_step
        change = (elbos - previous).abs() / previous.abs()
        best, done = torch.stack([elbos.max() / len(f), (change < self.tol).all()]).tolist()
        model.elbo_trace.append(best)
        step = int(self.iterations)
        self.log("train/elbo", torch.tensor(best, dtype=torch.float64), logger=False)
        self.log("train/iterations", float(step), logger=False)
        for logger in self.loggers:  # every sweep, whatever the trainer's log_every_n_steps
            logger.log_metrics({"train/elbo": best}, step=step)
        if done or step >= self.max_iter:
            self.trainer.should_stop = True

    def _initialise(self, x: Tensor) -> None:
        """k-means++ seeds on the locations, one set per restart, then one μ/λ update."""
        generator = torch.Generator(device=x.device).manual_seed(self.seed)
        centres = eq.kmeans_pp(x, len(self.model.log_pi), len(self.model.elbos), generator)
        f = self._cache[0]
        q = eq.initial_posterior(f, centres, self.model.prior)
        self.model.set_posterior(q, torch.full_like(self.model.elbos, -math.inf))

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        x, s = batch[0].to(self.model.m.dtype), batch[1]
        nll = -eq.predictive_log_prob(x, s, self.model.fitted, self.model.prior).mean()
        self.log("val/nll", nll, batch_size=len(x))

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        x, s = batch[0].to(self.model.m.dtype), batch[1]
        log_p = eq.predictive_log_prob(x, s, self.model.fitted, self.model.prior)
        metrics = {"test/nll": -log_p.mean()}
        if len(batch) > 2:  # the truth is known: labels and its log-density of each event
            gap = batch[3].to(log_p) - log_p
            metrics |= {
                "test/oracle_nll": -batch[3].double().mean(),
                "test/kl_gap": gap.mean(),
                "test/kl_gap_se": gap.std() / math.sqrt(len(gap)),
            }
            metrics |= self._recovery(x, s, batch[2])
        for key, value in metrics.items():
            self.log(key, torch.as_tensor(value, dtype=torch.float64), batch_size=len(x))

    def _recovery(self, x: Tensor, s: Tensor, z: Tensor) -> dict[str, float]:
        """ARI of MAP clusters, and μ/λ errors after matching fitted to true components
        (Hungarian on the distance between posterior and true means)."""
        from scipy.optimize import linear_sum_assignment
        from sklearn.metrics import adjusted_rand_score

        truth = self.trainer.datamodule.truth
        q = self.model.fitted
        ari = adjusted_rand_score(z.cpu().numpy(), self.model.assign(x, s).cpu().numpy())
        means, rates = truth.means.to(q.m), truth.rates.to(q.a)
        distance = torch.cdist(q.m, means)
        rows, cols = linear_sum_assignment(distance.cpu().numpy())
        rel = ((q.a / q.b)[rows] - rates[cols]).abs() / rates[cols]
        return {
            "test/ari": float(ari),
            "test/mu_error": float(distance[rows, cols].max()),
            "test/lambda_rel_error": float(rel.max()),
        }
