"""The base of closed-form fits (EM, CAVI): one epoch = one update from summed statistics.

A subclass says two things: what a batch contributes (`batch_statistics`: sums over its points,
so batches and processes add them up) and how the parameters follow from the summed statistics
(`update`, which returns the objective that must never decrease: the log-likelihood or the
ELBO, per point). Everything else lives here:

- every training batch adds its statistics, accumulated in float64; after the epoch's last
  batch they are summed across processes (one all-reduce through Lightning's strategy) and the
  update runs identically on every rank, so any batch size and any number of processes give the
  same fit;
- the update is the step of a `ClosedFormStep` optimizer, so Lightning counts one global step
  per update and checkpoints it like any other step;
- restarts (`n_init`), one after another, each from its own seeded initialisation on a seeded
  subsample of at most `INIT_POINTS` training points (the same rows on every rank), seen as
  a weighted empirical distribution (`src.utils.weighted.merged`: identical rows merged, their
  weights summed); the best restart by final objective is kept;
- weighted rows (`data.weight_column`): every statistic is the weighted sum Σ_n w_n s(x_n)
  and `n` is Σ_n w_n, so a row of integer weight w gives the fit of the row repeated w times
  (while the training split, repeated, fits the initialisation subsample);
- convergence (`tol`, `max_iter`), and the checkpoint state that makes a resume bit-for-bit;
- the test metrics (through `DensityFit`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from src.data.batches import Batch
from src.fits.density_fit import DensityFit
from src.utils.closed_form_step import ClosedFormStep
from src.utils.constraints import Constraint, Integer, OneOf, Real
from src.utils.kmeans import subsample
from src.utils.weighted import merged

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DTYPES = {32: torch.float32, 64: torch.float64}
INIT_POINTS = 100_000


class SufficientStatsFit(DensityFit):
    stops_itself = True  # at convergence or after max_iter updates per restart
    objective_name = "train/objective"  # logged after every update, per point
    objective_sign = 1.0  # -1 logs the negated objective (EM: train/nll = −log-likelihood)
    objective_label = "objective"  # in figures
    constraints: ClassVar[dict[str, Constraint]] = {
        "n_init": Integer(low=1),
        "tol": Real(low=0, low_open=True),
        "max_iter": Integer(low=1),
        "precision": OneOf(*DTYPES),
        "seed": Integer(),
    }

    def __init__(
        self,
        model: nn.Module,
        n_init: int = 1,
        tol: float = 1e-6,
        max_iter: int = 300,
        precision: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(model)
        self.automatic_optimization = False
        self.n_init, self.max_iter, self.tol = n_init, max_iter, float(tol)
        self.compute_dtype = DTYPES[precision]
        self.seed = seed
        self.model.to(self.compute_dtype)
        self.state: dict[str, Any] = {
            "restart": 0,  # the restart running now
            "iteration": 0,  # its updates so far
            "objective": None,  # its last objective
            "started": -1,  # the last restart initialised
            "best_objective": None,
            "best": None,  # the best finished restart's model state
            "best_restart": None,
            "traces": [],  # objective after each update, one list per restart
        }
        self._sums: dict[str, Tensor] | None = None
        self._init_x: Tensor | None = None
        self._init_weights: Tensor | None = None

    # What a subclass says --------------------------------------------------------------------
    def initialise(self, x: Tensor, weights: Tensor | None, generator: torch.Generator) -> None:
        """Set the model's starting point from the subsample `x` (float, on the model's device)
        and its rows' weights (None: one each)."""
        raise NotImplementedError

    def batch_statistics(self, x: Tensor, weights: Tensor | None = None) -> dict[str, Tensor]:
        """The batch's additive statistics (`x` and `weights` in the fit's dtype; None: every
        row counts once)."""
        raise NotImplementedError

    def update(self, stats: dict[str, Tensor]) -> Tensor:
        """Set the parameters from the summed statistics; return the objective per point."""
        raise NotImplementedError

    def converged(self, previous: float, current: float) -> bool:
        return abs(current - previous) < self.tol

    # The loop ---------------------------------------------------------------------------------
    def prepare(self, train_x: Tensor, resuming: bool, weights: Tensor | None = None) -> None:
        """Keep the seeded initialisation subsample and start restart 0, so a setting that
        cannot work with these data fails before training (a resume takes its state from the
        checkpoint instead)."""
        rows, row_weights = merged(*subsample(train_x, INIT_POINTS, self.seed, weights))
        self._init_x = rows.to(self.compute_dtype)
        self._init_weights = None if row_weights is None else row_weights.to(self.compute_dtype)
        if not resuming:
            self._start_restart()

    def _start_restart(self) -> None:
        restart = self.state["restart"]
        generator = torch.Generator().manual_seed(self.seed + restart)
        weights = self._init_weights
        weights = None if weights is None else weights.to(self.device)
        self.initialise(self._init_x.to(self.device), weights, generator)
        self.state |= {"started": restart, "iteration": 0, "objective": None}
        self.state["traces"].append([])

    def configure_optimizers(self) -> ClosedFormStep:
        return ClosedFormStep(self.model.parameters())

    def on_train_epoch_start(self) -> None:
        self._sums = None
        if self.state["started"] != self.state["restart"]:
            self._start_restart()

    @torch.no_grad()
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        stats = self._batch_sums(batch)
        self._sums = (
            stats if self._sums is None else {k: self._sums[k] + v for k, v in stats.items()}
        )
        if batch_idx + 1 == self.trainer.num_training_batches:
            summed = self._all_reduce(self._sums)
            self.optimizers().step(closure=lambda: self._update(summed))

    def _batch_sums(self, batch: Batch) -> dict[str, Tensor]:
        """The batch's statistics under the current parameters in float64, with its size `n`
        (Σ w for weighted rows)."""
        x, weights = batch["x"].to(self.compute_dtype), batch.get("weight")
        if weights is not None:
            weights = weights.to(self.compute_dtype)
        stats = self.batch_statistics(x, weights)
        sums = {
            k: torch.as_tensor(v, dtype=torch.float64, device=self.device) for k, v in stats.items()
        }
        size = float(len(x)) if weights is None else weights.double().sum()
        sums["n"] = torch.as_tensor(size, dtype=torch.float64, device=self.device)
        return sums

    @torch.no_grad()
    def training_totals(self) -> dict[str, Tensor]:
        """The current parameters' statistics over the whole training split: this rank's
        training batches summed in float64, then one all-reduce, exactly as before an update, so
        the totals do not depend on the batch size or the number of processes. One E-step's
        cost; for what is measured on the final parameters (EM's information criteria)."""
        sums: dict[str, Tensor] | None = None
        for batch in self.trainer.datamodule.train_dataloader():
            stats = self._batch_sums(batch)
            sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
        return self._all_reduce(sums)

    def _all_reduce(self, stats: dict[str, Tensor]) -> dict[str, Tensor]:
        """One all-reduce of every statistic, flattened into one float64 vector."""
        if self.trainer.world_size == 1:
            return stats
        flat = torch.cat([v.reshape(-1) for v in stats.values()])
        flat = self.trainer.strategy.reduce(flat, reduce_op="sum")
        sizes = [v.numel() for v in stats.values()]
        parts = flat.split(sizes)
        return {k: p.view_as(v) for (k, v), p in zip(stats.items(), parts)}

    def _update(self, stats: dict[str, Tensor]) -> None:
        self._record(float(self.update({k: v.to(self.compute_dtype) for k, v in stats.items()})))

    def _record(self, objective: float) -> None:
        """Count one iteration of the running restart at `objective` (per point): trace, log,
        convergence, and the end of the restart (online fits call it once per pass)."""
        state = self.state
        previous = state["objective"]
        state["objective"], state["iteration"] = objective, state["iteration"] + 1
        state["traces"][-1].append(objective)
        logged = self.objective_sign * objective
        self._log_final(objective)
        self.log("train/iterations", float(self.global_step + 1), logger=False)
        if self.trainer.is_global_zero:
            for logger in self.loggers:  # every update, whatever log_every_n_steps says
                logger.log_metrics({self.objective_name: logged}, step=self.global_step + 1)
        done = (previous is not None and self.converged(previous, objective)) or (
            state["iteration"] >= self.max_iter
        )
        max_epochs = self.trainer.max_epochs
        last_epoch = max_epochs is not None and 0 <= max_epochs <= self.current_epoch + 1
        if done:
            self._end_restart()
        elif last_epoch:  # cut short: keep the running restart only if it is the better one
            self._keep_best(state["objective"])

    def _end_restart(self) -> None:
        state = self.state
        best, objective = state["best_objective"], state["objective"]
        # a later restart replaces the best only if better by more than tol: restarts that
        # reach the same optimum (up to rounding) keep the first, whatever the batching
        if best is None or (objective > best and not self.converged(best, objective)):
            state["best_objective"], state["best_restart"] = objective, state["restart"]
            state["best"] = {k: v.clone() for k, v in self.model.state_dict().items()}
        state["restart"] += 1
        if state["restart"] >= self.n_init:
            self._keep_best(-math.inf)
            self.trainer.should_stop = True

    def _keep_best(self, current: float) -> None:
        """Load the best finished restart, unless the running one (at `current`) is better."""
        state = self.state
        if state["best"] is not None and state["best_objective"] > current:
            self.model.load_state_dict(state["best"])
            self._log_final(state["best_objective"])
        else:
            state["best_restart"] = state["restart"]

    def _log_final(self, objective: float) -> None:
        """The objective metrics.json reports: the running restart's, then the kept one's."""
        logged = torch.tensor(self.objective_sign * objective, dtype=torch.float64)
        self.log(self.objective_name, logged, logger=False, prog_bar=True)

    def best_trace(self) -> list[float]:
        """The objective after each update of the restart that was kept (or is running)."""
        traces, kept = self.state["traces"], self.state["best_restart"]
        return traces[kept] if kept is not None and kept < len(traces) else traces[-1]

    def figures(self) -> dict[str, Figure]:
        """The fit's own figure: the kept restart's objective after each update."""
        from src.plots.objective import objective_curve

        trace = self.best_trace()
        return {"objective": objective_curve(trace, self.objective_label)} if trace else {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["sufficient_stats_fit"] = self.state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.state = checkpoint.get("sufficient_stats_fit", self.state)
