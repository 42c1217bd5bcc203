"""Lightning's rich progress bar, drawn only every `refresh_rate` steps, with one validation bar.

The stock bar reads every logged metric on every training step, whatever its refresh rate;
for these tiny models that costs about as much as the step itself. Skipping the steps between
refreshes changes nothing on screen: each update sets the bar's absolute position.

It also adds a new (hidden) validation bar at every validation and never removes the old one,
so every redraw walked one more bar per epoch: 450 epochs ended with 450 bars. The old bar is
removed when its successor is added, and a validation of one batch (the usual one here) gets no
bar at all: adding it redrew the display in the training loop every epoch, to show 1/1.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import RichProgressBar


class LeanRichProgressBar(RichProgressBar):
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = batch_idx + 1
        if step % max(self.refresh_rate, 1) == 0 or step == self.total_train_batches:
            super().on_train_batch_end(trainer, module, outputs, batch, batch_idx)

    def on_validation_batch_start(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self._one_batch_validation(trainer):
            return
        before = (self.val_progress_bar_id, self.val_sanity_progress_bar_id)
        super().on_validation_batch_start(trainer, module, batch, batch_idx, dataloader_idx)
        after = (self.val_progress_bar_id, self.val_sanity_progress_bar_id)
        for old, new in zip(before, after):
            if self.progress is not None and old is not None and old != new:
                self.progress.remove_task(old)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._one_batch_validation(trainer):
            super().on_validation_batch_end(
                trainer, module, outputs, batch, batch_idx, dataloader_idx
            )

    def _one_batch_validation(self, trainer: pl.Trainer) -> bool:
        """A validation during fit whose whole set is one batch."""
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking
        return fitting and sum(trainer.num_val_batches) <= 1
