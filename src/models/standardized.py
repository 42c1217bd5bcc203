"""A density model fitted to standardized data, scored and sampled in the data's own units.

For z = (x − m)/s (per coordinate, s > 0) the change of variables gives
log p_x(x) = log p_z(z) + log |det ∂z/∂x| = log p_z((x − m)/s) − Σ_d log s_d,
so a model of z becomes a model of x with the same parameters: every log-density, NLL and
sample it yields is in x's units, while the wrapped model only ever sees unit-scale data.
The run assembly wraps a model when its data set asks for it (`standardization`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Standardized(nn.Module):
    def __init__(self, model: nn.Module, shift: Tensor, scale: Tensor) -> None:
        """`shift` and `scale` have the events' shape (() for 1-D data); buffers, so they travel
        with the model to its device and into checkpoints."""
        super().__init__()
        if not bool((scale > 0).all()) or not bool(torch.isfinite(scale).all()):
            raise ValueError(f"scale must be finite and > 0, got {scale.tolist()}")
        self.model = model
        self.register_buffer("shift", shift.detach().clone())
        self.register_buffer("scale", scale.detach().clone())
        self.support = getattr(model, "support", "continuous")
        self.event_shape = getattr(model, "event_shape", shift.shape)

    def standardize(self, x: Tensor) -> Tensor:
        return (x - self.shift) / self.scale

    def log_prob(self, x: Tensor) -> Tensor:
        return self.model.log_prob(self.standardize(x)) - self.scale.log().sum()

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.shift + self.scale * self.model.sample(n)

    @torch.no_grad()
    def init_from_data(self, x: Tensor, weights: Tensor | None = None) -> None:
        """The wrapped model's own data-driven start, on the standardized data."""
        if hasattr(self.model, "init_from_data"):
            self.model.init_from_data(self.standardize(x), weights)


def standardized(model: nn.Module, standardization: tuple[Tensor, Tensor] | None) -> nn.Module:
    """`model` wrapped in the data set's (shift, scale), or `model` itself when there is none."""
    return model if standardization is None else Standardized(model, *standardization)
