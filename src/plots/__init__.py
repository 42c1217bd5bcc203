"""Figures of a model against its data, chosen by the data's kind.

Each plotter takes (model, datamodule) and returns {tag: matplotlib Figure}. `PLOTTERS` maps
(support, number of event dimensions) to the functions drawn during validation ("fit") and
at test ("samples"); a data kind without an entry simply gets no figures.
"""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")  # figures go to files and TensorBoard, never to a window

from matplotlib.figure import Figure

from src.plots import continuous_1d, continuous_2d, discrete, earthquake

Plotter = Callable[..., dict[str, Figure]]

PLOTTERS: dict[tuple[str, int], dict[str, Plotter]] = {
    ("continuous", 0): {"fit": continuous_1d.fit, "samples": continuous_1d.samples},
    ("continuous", 1): {"fit": continuous_2d.fit, "samples": continuous_2d.samples},
    ("earthquake", 1): {"fit": earthquake.fit, "samples": earthquake.samples},
    ("discrete", 0): {"fit": discrete.fit, "samples": discrete.samples},
}


def plotter(support: str, event_dims: int, stage: str) -> Plotter | None:
    return PLOTTERS.get((support, event_dims), {}).get(stage)
