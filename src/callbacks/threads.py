"""Sets the torch threads of every process that trains (src/utils/threads.py): `setup` runs in
each DDP rank and in each sweep worker. The count is restored at teardown, so in-process runs
(tests, notebooks) leave the caller's setting as it was."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from src.utils.threads import available_cores, threads_for


class ThreadPolicy(pl.Callback):
    def __init__(self, threads: str | int = "auto", sweep_workers: int = 1) -> None:
        self.threads, self.sweep_workers = threads, sweep_workers
        self.chosen: int | None = None
        self._before: int | None = None

    def setup(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        if self.threads == "auto":
            work = points_per_step(trainer.datamodule, module) * parameters(module)
            cores = available_cores()
            self.chosen = threads_for(work, cores, self.sweep_workers, trainer.world_size)
        else:
            self.chosen = int(self.threads)
        if self._before is None:
            self._before = torch.get_num_threads()
        torch.set_num_threads(self.chosen)

    def teardown(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        if self._before is not None:
            torch.set_num_threads(self._before)
            self._before = None


def points_per_step(datamodule: object, module: pl.LightningModule) -> int:
    """The training batch (the whole training split when full-batch); 1 when the module draws
    its own samples (a study)."""
    batch = getattr(datamodule, "batch_size", None)
    if batch:
        return int(batch)
    train_x = getattr(datamodule, "train_x", None)
    return len(train_x) if train_x is not None and len(train_x) else 1


def parameters(module: pl.LightningModule) -> int:
    return sum(p.numel() for p in module.parameters())
