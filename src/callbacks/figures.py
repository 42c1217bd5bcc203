"""Draws the model against its data into TensorBoard during validation and at test.

Matplotlib (and the plotters) are imported at the first drawing, not with the callback: a run
pays for them only when a figure is due, after its first training steps.
"""

from __future__ import annotations

from typing import ClassVar

import pytorch_lightning as pl
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from src.utils.constraints import Constraint, Integer
from src.utils.timing import timed


class FigureCallback(pl.Callback):
    """After every `every_n_epochs` validation epochs (epochs n − 1, 2n − 1, ...), once when the
    fit ends (however it ends: its last epoch, an early stop, `max_time`) and once at test.
    Never at epoch 0: a figure of the initial model says little and would hold up the first
    steps. The end-of-fit figure is drawn after training, not in its last validation, so the
    learning curve's clock (curve.csv) does not count it."""

    constraints: ClassVar[dict[str, Constraint]] = {"every_n_epochs": Integer(low=1)}

    def __init__(self, every_n_epochs: int = 50) -> None:
        self.every_n_epochs = every_n_epochs
        self.drawn_at_step: int | None = None  # the fit figure's last step, not to draw it twice

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        due = (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if due and not trainer.sanity_checking:
            self._draw_fit(trainer, module)

    def on_fit_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.global_step > 0 and self.drawn_at_step != trainer.global_step:
            self._draw_fit(trainer, module)

    def on_test_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._draw(trainer, module, "samples")  # after the test metrics, for the titles

    def _draw_fit(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.drawn_at_step = trainer.global_step
        self._draw(trainer, module, "fit")

    @rank_zero_only
    def _draw(self, trainer: pl.Trainer, module: pl.LightningModule, stage: str) -> None:
        tensorboard = next(
            (lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None
        )
        if tensorboard is None:
            return
        with timed("figures"):
            from src.plots import plotter

            datamodule = trainer.datamodule
            model = getattr(module, "model", module)
            draw = plotter(datamodule.support, len(datamodule.event_shape), stage)
            figures = draw(model, datamodule) if draw is not None else {}
            if hasattr(module, "figures"):  # a fit's own figures, e.g. its objective per update
                figures |= module.figures()
            heading = _heading(model, trainer.callback_metrics, stage)
            for tag, figure in figures.items():
                figure.suptitle(heading, fontsize="medium")
                tensorboard.experiment.add_figure(f"{stage}/{tag}", figure, trainer.global_step)


SCORES = {"fit": ("val/nll",), "samples": ("test/kl_gap", "test/nll")}


def _heading(model: object, metrics: dict, stage: str) -> str:
    """Every figure names its model and its score so far: val/nll while fitting, the test
    kl_gap (or the test NLL where there is no truth) at the end."""
    name = type(getattr(model, "model", model)).__name__  # a standardized model's own name
    for key in SCORES[stage]:
        if key in metrics:
            return f"{name}: {key} = {float(metrics[key]):.4g}"
    return name
