"""`curve.csv` in the run directory: the validation metrics after every validation, against the
epoch, the step and the training seconds so far, so a study can draw quality against time
(`python -m src.compare --curves`).

The seconds are the callback's own clock, counted from the start of training and kept in the
checkpoint (the callback's state), so a resumed run continues its curve where the checkpoint
left it; rows written after that checkpoint (a run killed between its validation and its
`last.ckpt`) are dropped on resume, since that work is done again. Rank 0 writes; the columns
are fixed at the first row (a metric that appears later is left out, one missing is blank).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

FIXED = ("epoch", "step", "seconds")


class LearningCurve(pl.Callback):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.earlier = 0.0  # training seconds before this process (restored on resume)
        self.started: float | None = None
        self.columns: list[str] | None = None  # the file's header, once it has one

    def seconds(self) -> float:
        running = time.perf_counter() - self.started if self.started is not None else 0.0
        return self.earlier + running

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.started = time.perf_counter()
        if trainer.is_global_zero:
            self._keep_rows_up_to(trainer.global_step)

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or not trainer.is_global_zero:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        if not metrics:
            return
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step} | metrics
        row["seconds"] = round(self.seconds(), 4)
        new = self.columns is None
        if self.columns is None:
            self.columns = [*FIXED, *sorted(metrics)]
        with self.path.open("a", newline="") as file:
            writer = csv.DictWriter(file, self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def state_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.earlier = float(state_dict["seconds"])

    def _keep_rows_up_to(self, step: int) -> None:
        """A fresh run starts a new curve; a resumed one keeps the rows its checkpoint saw."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as file:
            reader = csv.DictReader(file)
            columns, rows = reader.fieldnames or [], list(reader)
        kept = [r for r in rows if int(r["step"]) <= step] if step > 0 else []
        self.columns = list(columns) if kept else None
        with self.path.open("w", newline="") as file:
            writer = csv.DictWriter(file, columns)
            if kept:
                writer.writeheader()
                writer.writerows(kept)
