"""The density-model protocol every model follows (and `src.fits` relies on), written down.

A model is a plain `torch.nn.Module`, usable without Lightning or Hydra. `support` says what
data it takes ("continuous", "discrete", "earthquake") and `event_shape` the shape of one
event, so the run assembly can refuse a pairing that cannot work before any training. A model
may also define `init_from_data(x, weights=None)`, which a fresh gradient fit calls once with
the training data and, for weighted data (`data.weight_column`), their weights (e.g. to
standardise, or to seed a mixture's components: src/utils/weighted.py).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class DensityModel(Protocol):
    support: str
    event_shape: torch.Size

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density (continuous) or log-mass (discrete) of each event, nats: [N]."""
        ...

    def sample(self, n: int) -> Tensor:
        """n events drawn from the model: [n, *event_shape]."""
        ...
