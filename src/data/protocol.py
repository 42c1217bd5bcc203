"""What the run assembly, the fits and the figures may read from a data module.

Every data module of the project (src/data/) has each of these, None where it does not apply,
so no layer probes for optional attributes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.distributions import Distribution


@runtime_checkable
class DataSource(Protocol):
    support: str  # "continuous", "discrete", or "none" (a study's placeholder batches)
    event_shape: torch.Size
    truth: Distribution | None  # the distribution the splits were drawn from; None for real data
    dim: int | None  # the events' dimension D, which a model's `dim: null` takes
    n_bins: int | None  # the number of values of discrete data, which a model's `d: null` takes
    column_names: list[str] | None  # a file's column names (data=table), for axes and outputs
    batch_size: int | None  # None: full batch
    eval_batch_size: int
    weight_column: str | None  # the column that weights the rows (batches carry "weight")

    @property
    def train_x(self) -> Tensor | None: ...

    @property
    def train_weights(self) -> Tensor | None:
        """The training rows' weights (≥ 0, float64), or None: every row counts once."""
        ...

    @property
    def standardization(self) -> tuple[Tensor, Tensor] | None:
        """(shift, scale) the model is fitted in (data=table), or None: the data's own units."""
        ...
