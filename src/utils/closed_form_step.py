"""An optimizer whose step is a closed-form update (an M-step, a CAVI sweep, a proposal update).

Lightning counts `trainer.global_step` in optimizer steps, and checkpoints, loggers and
`ModelCheckpoint` key on it. A fit that is not gradient descent still updates tensors once per
step, so its update is given to Lightning as what it is: the step of an optimizer over exactly
the tensors it changes. No fake parameter, and resuming restores the step count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor


class ClosedFormStep(torch.optim.Optimizer):
    def __init__(self, tensors: Iterable[Tensor]) -> None:
        super().__init__(list(tensors), {})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Runs the update (`closure`), which writes the new values in place."""
        return None if closure is None else closure()
