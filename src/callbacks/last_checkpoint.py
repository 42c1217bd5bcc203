"""`checkpoints/last.ckpt`: the state after the last finished epoch, always, written atomically.

Lightning's `ModelCheckpoint(save_last=True)` writes `last.ckpt` only in an epoch where it also
writes a top-k checkpoint, so once the monitored metric stops improving `last.ckpt` falls behind
(a 150-epoch run left it at epoch 55): a resume then redoes the work and `src.eval` of it does not
reproduce the run. This callback writes it at the end of every training epoch (after validation);
the checkpoint writer puts it in a temporary file first and renames that over the old one, so a
crash while writing leaves the previous epoch's file intact (src/utils/checkpoint_io.py).
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl

from src.utils.timing import timed


class LastCheckpoint(pl.Callback):
    def __init__(self, dirpath: str | Path) -> None:
        self.path = Path(dirpath) / "last.ckpt"

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking:
            return
        with timed("checkpoints"):
            trainer.save_checkpoint(self.path, weights_only=False)  # every rank; rank 0 writes
