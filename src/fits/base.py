"""What the run assembly may ask of any module it trains: a fit of a density model or a Monte
Carlo study. Each declares here, not by attributes probed at run time, which metric its best
checkpoint follows, which models it can fit and the labels it adds to `metrics.json`."""

from __future__ import annotations

from typing import ClassVar

import pytorch_lightning as pl
from torch import Tensor, nn


class RunModule(pl.LightningModule):
    monitor: ClassVar[str | None] = None  # the metric best.ckpt follows (lower is better)
    stops_itself: ClassVar[bool] = False  # a fit that ends on its own (max_iter, convergence)

    @staticmethod
    def accepts(model: nn.Module) -> str | None:
        """Why this module cannot fit `model`, or None when it can."""
        return None

    @property
    def run_labels(self) -> dict[str, str]:
        """Text labels for `metrics.json` beside the metrics (e.g. an estimator's name)."""
        return {}

    def prepare(
        self, train_x: Tensor | None, resuming: bool, weights: Tensor | None = None
    ) -> None:
        """Called once by the run assembly before training, with the whole training split and
        its row weights (None: unweighted)."""
