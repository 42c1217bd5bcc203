"""Draws the model against its data into TensorBoard during validation and at test."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from src.plots import plotter
from src.utils.checks import positive_int


class FigureCallback(pl.Callback):
    """Every `every_n_epochs` validation epochs (and the last one) and once at test."""

    def __init__(self, every_n_epochs: int = 50) -> None:
        self.every_n_epochs = positive_int("every_n_epochs", every_n_epochs)

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        last = epoch + 1 >= (trainer.max_epochs or 0) or trainer.should_stop  # early stop too
        if not trainer.sanity_checking and (epoch % self.every_n_epochs == 0 or last):
            self._draw(trainer, module, "fit")

    def on_test_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._draw(trainer, module, "samples")

    @rank_zero_only
    def _draw(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        tensorboard = next(
            (lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None
        )
        datamodule = trainer.datamodule
        model = getattr(module, "model", module)
        if tensorboard is None:
            return
        draw = plotter(datamodule.support, len(datamodule.event_shape), stage)
        figures = draw(model, datamodule) if draw is not None else {}
        if hasattr(module, "figures"):  # a fit's own figures, e.g. its objective per update
            figures |= module.figures()
        for tag, figure in figures.items():
            tensorboard.experiment.add_figure(f"{stage}/{tag}", figure, trainer.global_step)
