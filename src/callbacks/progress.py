"""The training bar: epochs done of the run, the fit's objective, and epochs per second.

Lightning's TQDM bar counts the batches of each epoch and shows the TensorBoard version
(`v_num`): a full-batch fit (EM, CAVI, discrete data) has one batch an epoch, so its bar reads
1/1 and its it/s is the speed of one step, not of the run, and the loss is never shown. This bar
counts epochs over the whole run, `Epochs: 12%| | 12/100 [00:05<00:36, 2.41 epochs/s,
train/nll=1.234]`, so the time left and the rate mean the same for every fit, and it shows what
the fit logs for the bar (`prog_bar=True`: `train/nll`, `train/elbo`), the last finished
epoch's value. Only Lightning's public API: its hooks, `init_train_tqdm` and `get_metrics`.
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm


class EpochProgressBar(TQDMProgressBar):
    """`refresh_rate`: batches between redraws of the validation and test bars (0 hides every
    bar); the training bar moves once an epoch, drawn at most ten times a second by tqdm.
    `leave`: keep the finished training bar on screen."""

    def __init__(self, refresh_rate: int = 1, process_position: int = 0, leave: bool = True):
        super().__init__(refresh_rate, process_position, leave)
        self.keep_finished = leave

    def init_train_tqdm(self) -> Tqdm:
        """One bar for the run: from the epoch it starts at (a resume's too) to `max_epochs`
        (no total when the run is bounded otherwise, `max_epochs=-1`)."""
        max_epochs = self.trainer.max_epochs
        return Tqdm(
            desc="Epochs",
            total=max_epochs if max_epochs is not None and max_epochs >= 0 else None,
            initial=self.trainer.current_epoch,
            unit=" epochs",
            position=2 * self.process_position,
            disable=self.is_disabled,
            leave=self.keep_finished,
            dynamic_ncols=True,
            file=sys.stdout,
            smoothing=0,  # the rate over the whole run, not the last epoch's
            bar_format=self.BAR_FORMAT,
        )

    def get_metrics(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        """What the fit logs for the bar, without `v_num` (the run's name, not a metric), each
        number to 5 significant digits (tqdm's 3 hide an NLL's progress: 4.2199 reads 4.220)."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return {k: f"{v:.5g}" if isinstance(v, float) else v for k, v in metrics.items()}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The last epoch is counted here, not at its end: a fit logs its objective in its own
        epoch-end hook, which Lightning calls after the callbacks'."""
        self._advance(trainer, pl_module)

    def on_train_batch_end(self, *_: Any) -> None:
        """Nothing per batch: the bar counts epochs, and anything done here costs every step."""

    def on_train_epoch_end(self, *_: Any) -> None:
        """Nothing yet: the epoch's objective is logged after this hook (see above)."""

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._advance(trainer, pl_module)  # the last epoch, and its objective on screen
        super().on_train_end(trainer, pl_module)

    def _advance(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        bar = self.train_progress_bar
        if bar.disable:
            return
        bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
        bar.update(trainer.current_epoch - bar.n)  # drawn when tqdm's interval allows
