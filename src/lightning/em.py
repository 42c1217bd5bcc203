"""Expectation-maximisation for a Gaussian mixture as a LightningModule.

Manual optimisation: one `training_step` = one full-batch E+M step (`GaussianMixture.em_step`),
so checkpoints, logging, progress bars and early stopping still come from Lightning. A restart
ends when the mean log-likelihood changes by less than `tol` or after `max_iter` steps; after
`n_init` restarts the best one (highest final log-likelihood, as scikit-learn keeps) is loaded
and training stops. Validation and test metrics are the generic module's (`DensityModule`),
so `test/kl_gap` means the same for EM as for gradient fits. Single process: under DDP each
rank would fit its own shard.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from src.errors import UserError
from src.lightning.density_module import DensityModule
from src.models.gmm import GaussianMixture
from src.utils.checks import positive, positive_int


class EMModule(DensityModule):
    def __init__(
        self,
        n_components: int = 8,
        dim: int = 2,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        init: str = "kmeans++",
        init_trials: int = 5,
        tol: float = 1e-6,
        max_iter: int = 200,
        n_init: int = 1,
        seed: int = 0,
    ) -> None:
        model = GaussianMixture(
            n_components, dim, covariance_type, reg_covar, init=init, init_trials=init_trials
        )
        super().__init__(model, optimizer=None)
        self.automatic_optimization = False
        # an empty parameter for a no-op optimizer: its step() makes Lightning count EM steps
        # as global steps, which checkpoints (best by val/nll), figures and loggers key on
        self.clock = nn.Parameter(torch.zeros(0))
        self.tol = positive("tol", tol)
        self.max_iter, self.n_init = (
            positive_int("max_iter", max_iter),
            positive_int("n_init", n_init),
        )
        self.seed = int(seed)
        self.em = {"restart": 0, "iteration": 0, "last_ll": None, "best_ll": None, "best": None}

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        x = batch[0].to(self.model.loc.dtype)
        n_train = len(self.trainer.datamodule.train_x)
        if len(x) != n_train:
            raise UserError(
                f"EM needs the whole training set in one batch ({n_train} points, got {len(x)}):"
                " set data.batch_size=null"
            )
        em = self.em
        if em["iteration"] == 0:
            generator = torch.Generator(x.device).manual_seed(self.seed + em["restart"])
            self.model.init_from_data(x, generator)
        ll = self.model.em_step(x)
        self.optimizers().step()  # no-op: advances trainer.global_step
        self._sums["nll"] += -ll.double() * len(x)
        self._sums["n"] += len(x)
        ll = float(ll)  # one sync per EM step, which is a full pass over the data anyway
        converged = em["last_ll"] is not None and abs(ll - em["last_ll"]) < self.tol
        em["last_ll"], em["iteration"] = ll, em["iteration"] + 1
        if converged or em["iteration"] >= self.max_iter:
            self._end_restart()

    def _end_restart(self) -> None:
        em = self.em
        if em["best_ll"] is None or em["last_ll"] > em["best_ll"]:
            em["best_ll"] = em["last_ll"]
            em["best"] = {k: v.clone() for k, v in self.model.state_dict().items()}
        em |= {"restart": em["restart"] + 1, "iteration": 0, "last_ll": None}
        if em["restart"] >= self.n_init:
            self._keep_best()
            self.trainer.should_stop = True

    def _keep_best(self) -> None:
        if self.em["best"] is not None:
            self.model.load_state_dict(self.em["best"])

    def on_train_end(self) -> None:
        """Stopped by max_epochs mid-restart: keep the running restart only if it is better."""
        em = self.em
        if em["iteration"] and em["best_ll"] is not None and em["last_ll"] < em["best_ll"]:
            self._keep_best()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["em"] = self.em

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.em = checkpoint.get("em", self.em)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD([self.clock], lr=0.0)  # the EM step itself is closed-form
