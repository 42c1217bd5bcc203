"""The base of online closed-form fits (stepwise EM, SVI): one update per mini-batch.

A batch fit (`SufficientStatsFit`) sums the statistics of every batch and updates once per
epoch. An online fit updates after every mini-batch: the batch's statistics, all-reduced across
processes (one all-reduce per batch, so two processes with batches of b act as one process with
batches of 2b), are scaled to the full data size, ŝ_t = (N / B_t) · Σ_batch, where N is the
size of the training split and B_t the batch's size summed over the processes (for weighted
rows, N = Σ w over the split and B_t = Σ w over the batch); then a running
state moves toward what ŝ_t implies,

    s_t = (1 − ρ_t) s_{t−1} + ρ_t ŝ_t,      ρ_t = (t + t₀)^(−κ),   κ ∈ (0.5, 1],  t₀ ≥ 0,

and the parameters follow from s_t in closed form. t counts the updates of the running restart
(t = 1, 2, … across passes); ρ_1 = (1 + t₀)^(−κ) ≤ 1, so t₀ = 0 makes the first update forget
the initialisation entirely. The subclass says what the state is and how one update goes
(`initial_running`, `online_update`); the base owns the schedule, the scaling, the DDP
reduction, step counting (each update is one `ClosedFormStep` step, so Lightning counts one
global step per batch), and the checkpoint (the running state and t live in the fit's state).

The objective of a pass is the batch-size-weighted mean over its batches of what each update
returns per point (the batch's log-likelihood before its update, or the ELBO of the batch scaled
to N after it): an estimate from moving parameters, not the objective of the final ones, and not
monotone. A restart ends after `max_iter` passes or when a pass's objective moves by less than
`tol` (absolute for EM, relative for SVI) from the previous pass's; `n_init` restarts run in
turn and the best by its last pass's objective is kept, as in the batch fits.

Resuming: `last.ckpt` is written at the end of every pass, so a run killed in mid-pass resumes
from the pass's start with the running state and t of that moment; the pass is replayed with
the same batches (the order depends on (seed, epoch) only) and ends bit for bit as before.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from src.data.batches import Batch
from src.fits.sufficient_stats import SufficientStatsFit
from src.utils.constraints import Constraint, Real


class OnlineFit(SufficientStatsFit):
    # the step size ρ_t = (t + t₀)^(−κ): Σ ρ_t = ∞ needs κ ≤ 1, Σ ρ_t² < ∞ needs κ > 1/2,
    # ρ_t ≤ 1 needs t₀ ≥ 0
    constraints: ClassVar[dict[str, Constraint]] = {
        "kappa": Real(0.5, 1, low_open=True),
        "t0": Real(low=0),
    }

    def __init__(
        self,
        model: nn.Module,
        kappa: float = 0.6,
        t0: float = 1.0,
        n_init: int = 1,
        tol: float = 1e-4,
        max_iter: int = 20,
        precision: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__(
            model, n_init=n_init, tol=tol, max_iter=max_iter, precision=precision, seed=seed
        )
        self.kappa, self.t0 = float(kappa), float(t0)
        self.n_train = 0
        self._pass = (0.0, 0.0)  # Σ_b B_b · objective_b and Σ_b B_b over this pass

    # What a subclass says --------------------------------------------------------------------
    def initial_running(self) -> dict[str, Tensor]:
        """The running state s_0 that the freshly initialised model's parameters correspond to."""
        raise NotImplementedError

    def online_update(self, scaled: dict[str, Tensor], rho: float) -> Tensor:
        """Move `self.state["running"]` toward what the scaled batch statistics `scaled` imply
        (step ρ), set the parameters from it, return the batch's objective per point."""
        raise NotImplementedError

    # The loop ---------------------------------------------------------------------------------
    def step_size(self, t: int) -> float:
        """ρ_t = (t + t₀)^(−κ), t = 1, 2, …"""
        return (t + self.t0) ** -self.kappa

    @staticmethod
    def blend(
        running: dict[str, Tensor], target: dict[str, Tensor], rho: float
    ) -> dict[str, Tensor]:
        """(1 − ρ) s + ρ ŝ, key by key (ρ = 1 gives ŝ exactly: 0·s + 1·ŝ = ŝ in floating point)."""
        return {k: (1.0 - rho) * running[k] + rho * target[k] for k in target}

    def prepare(self, train_x: Tensor, resuming: bool, weights: Tensor | None = None) -> None:
        # N: the whole training split, all ranks together (Σ w: the rows it stands for)
        self.n_train = len(train_x) if weights is None else float(weights.double().sum())
        super().prepare(train_x, resuming, weights)

    def _start_restart(self) -> None:
        super()._start_restart()
        self.state["running"], self.state["t"] = self.initial_running(), 0

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._pass = (0.0, 0.0)

    @torch.no_grad()
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        stats = self._batch_sums(batch)
        summed = self._all_reduce(stats)  # one all-reduce per batch: B_t is the global size
        last = batch_idx + 1 == self.trainer.num_training_batches
        self.optimizers().step(closure=lambda: self._online_step(summed, last))

    def _online_step(self, stats: dict[str, Tensor], last: bool) -> None:
        size = float(stats["n"])
        if size > 0:  # a batch empty on every rank changes nothing
            state = self.state
            state["t"] += 1
            scale = self.n_train / size
            scaled = {k: v * scale for k, v in stats.items()}  # "n" becomes N
            objective = float(self.online_update(scaled, self.step_size(state["t"])))
            total, count = self._pass
            self._pass = (total + size * objective, count + size)
        if last:
            total, count = self._pass
            self._record(total / count)
