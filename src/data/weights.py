"""Row weights from a table's column (`data.weight_column`): how much each row counts.

A weight w ≥ 0 on a row counts it w times in every fit and metric (survey weights, importance
weights, the counts of deduplicated rows). The column is never a model input. It is read by the
one table reader as float64 (NaN and inf are refused there, by line); a weight below 0 is
refused by line, and a split whose weights are all 0 is refused by name: it would hold no data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from src.data.table_files import Table, read_table
from src.errors import UserError

WEIGHT = "a weight: a finite number >= 0"
SETTING = "weight_column"


def read_weights(file: Path, column: Any, key: str | None = None) -> tuple[Tensor, str]:
    """(the column's weights [N] float64, its header's name or index as text)."""
    table = read_table(file, {SETTING: column}, key, (np.float64,))
    return checked(table, 0), table.headers[0]


def checked(table: Table, j: int) -> Tensor:
    """Column j of `table` as weights: each ≥ 0, refused by line otherwise."""
    weights = table.values[:, j].astype(np.float64)
    table.refuse(weights < 0, j, "is below 0", WEIGHT)
    return torch.from_numpy(np.ascontiguousarray(weights))


def refuse_empty(weights: Tensor, split: str, source: str, column: str) -> None:
    """A split whose weights sum to 0 holds no data: no fit, no mean."""
    if not bool(weights.sum() > 0):
        raise UserError(
            f"{source}: every weight of the {split} split (column {column!r}, {len(weights)} "
            "rows) is 0; expected weights >= 0 with a positive sum in every split"
        )


def describe(weights: Tensor) -> str:
    """Σ w and the effective sample size (Σ w)² / Σ w², for the data set's log line."""
    total = float(weights.sum())
    ess = total**2 / float(weights.square().sum())
    return f"Σw={total:.6g}, effective size {ess:.6g} of {len(weights)} rows"
