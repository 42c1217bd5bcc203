"""Lightning's rich progress bar, drawn only every `refresh_rate` steps.

The stock bar reads every logged metric on every training step, whatever its refresh rate;
for these tiny models that costs about as much as the step itself. Skipping the steps between
refreshes changes nothing on screen: each update sets the bar's absolute position.
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
