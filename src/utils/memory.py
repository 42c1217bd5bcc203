"""How much memory a setting asks for, against what this machine has: refused before training.

A model's evaluation holds intermediates per point of at most about one float per parameter
(a mixture's [N, K] log-densities, a flow's activations are far smaller), so
`bytes_per_point(model)` = 4 × its parameter count bounds the memory of log_prob on a batch.
Evaluation runs in chunks sized to stay under `EVAL_BUDGET`; a training batch that alone would
not fit in the machine's memory is refused with the estimate.
"""

from __future__ import annotations

import os

from torch import nn

EVAL_BUDGET = 2**30  # bytes of intermediates per evaluation chunk


def machine_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def bytes_per_point(model: nn.Module) -> int:
    return 4 * max(1, sum(p.numel() for p in model.parameters()))


def eval_chunk(model: nn.Module, largest: int) -> int:
    """Points per validation/test chunk: at most `largest`, within EVAL_BUDGET, at least 1."""
    return max(1, min(largest, EVAL_BUDGET // bytes_per_point(model)))


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"
