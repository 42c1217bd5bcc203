"""Seeded train/val/test splits drawn from a known truth (a `Distribution`).

Each split has its own seed derived from `seed`, so changing one split's size leaves the
others unchanged. The truth scores the test split once, for the oracle NLL and the KL gap.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Distribution

from src.data.tensor_datamodule import SPLITS, TensorDataModule
from src.errors import ConfigError, UserError
from src.utils.constraints import Constraint, Integer, Nullable

DRAW_CHUNK = 2**18


class SyntheticDataModule(TensorDataModule):
    constraints: ClassVar[dict[str, Constraint]] = {
        "n_train": Integer(low=1),
        "n_val": Integer(low=1),
        "n_test": Integer(low=1),
        "dim": Nullable(Integer(low=1)),
    }

    def __init__(
        self,
        truth: Distribution,
        n_train: int = 5000,
        n_val: int = 1000,
        n_test: int = 20000,
        batch_size: int | None = 256,
        seed: int = 0,
        dim: int | None = None,
    ) -> None:
        """`dim`, when given, must be the truth's event dimension: data configs on ℝ^D declare
        it so a model config can read `${data.dim}`."""
        if dim is not None and tuple(truth.event_shape) != (dim,):
            raise ConfigError("dim", dim, f"the truth's dimension, {tuple(truth.event_shape)}")
        self.dim = dim
        super().__init__(batch_size, seed)
        sizes = (n_train, n_val, n_test)
        self.truth = truth
        seeds = np.random.SeedSequence(seed).generate_state(len(SPLITS))
        for split, n, split_seed in zip(SPLITS, sizes, seeds):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(split_seed))
                self.splits[split] = _single_precision(self.draw(n))
        _check_resolution(self.splits["train"])
        self.attach_truth_log_prob(lambda x: truth.log_prob(x).float())

    def draw(self, n: int) -> Tensor:
        """n points from the truth, DRAW_CHUNK at a time and stored in single precision, so
        memory stays at the data's own size (a mixture's sampler holds N × K × D values); a
        subclass replaces it to follow a fixed recipe."""
        chunks = [self.truth.sample((min(DRAW_CHUNK, n - lo),)) for lo in range(0, n, DRAW_CHUNK)]
        return torch.cat([_single_precision(chunk) for chunk in chunks])


def _single_precision(x: Tensor) -> Tensor:
    return x.float() if torch.is_floating_point(x) else x


def _check_resolution(x: Tensor) -> None:
    """Points are stored in float32: a spread below its resolution at the points' magnitude
    (a truth placed at 1e12 with unit noise) would leave identical points, and every fit fails
    later with a message about something else."""
    if not torch.is_floating_point(x) or len(x) < 2:
        return
    flat = x.reshape(len(x), -1).double()
    spread, size = flat.std(0), flat.abs().amax(0)
    if bool((spread < 100 * torch.finfo(torch.float32).eps * size).any()):
        raise UserError(
            f"data: the points' spread ({spread.min().item():.3g}) is below single precision's "
            f"resolution at their magnitude ({size.max().item():.3g}): rescale the truth's "
            f"settings (locations, radius, scales)"
        )
