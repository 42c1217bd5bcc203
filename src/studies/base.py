"""What the Monte Carlo studies (gradient estimators, ELBO gradients, importance sampling)
share: they draw their own samples (the run assembly pairs them with `data=none` only), and they
write their frequent curves straight to the loggers every few steps instead of a `self.log` per
step.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from src.fits.base import RunModule
from src.utils.constraints import Integer, Nullable

# a logging period in steps, or null (never)
EVERY = Nullable(Integer(low=1))
# a number of repeated estimates a variance (or a standard error) is computed from: two at least
REPEATS = Integer(low=2)


class SamplingStudy(RunModule):
    # torch threads: chosen for every run by the thread policy (src/utils/threads.py); a
    # study's few tiny tensors per step get one thread.

    def log_now(self, metrics: Mapping[str, Tensor | float]) -> None:
        """Write to every logger at the current step (rank zero; converts to float, so call it
        only every few steps)."""
        if self.trainer.is_global_zero and self.loggers:
            values = {k: float(v) for k, v in metrics.items()}
            for logger in self.loggers:
                logger.log_metrics(values, step=self.global_step)
