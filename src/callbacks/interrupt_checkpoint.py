"""On Ctrl+C, saves the exact state as `interrupted.ckpt`, leaving `last.ckpt` at the last
completed epoch, from which `resume=<run dir>` continues bit-for-bit."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl


class InterruptCheckpoint(pl.Callback):
    def __init__(self, dirpath: str) -> None:
        self.path = Path(dirpath) / "interrupted.ckpt"

    def on_exception(
        self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(self.path)
