"""A new file read as the rows a trained run's model takes: same columns, same kind, same bins.

The file goes through the one table reader (src/data/table_files.py), so a bad cell is named by
file, line and column as anywhere else. Its columns are matched to the training file's by name,
in any order; a file without a header (or a .npy) is matched by position. A missing or an extra
column is refused: a column left out of the training data has no meaning to the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from src.data.protocol import DataSource
from src.data.table_files import read_table
from src.errors import UserError

CONTINUOUS = (np.float32,)
DISCRETE = (np.int64, np.float64)  # 3.0 is a count too, checked exactly in float64


def read_rows(file: Path, data: DataSource) -> Tensor:
    """The rows of `file` as `data`'s training split holds its rows ([N] or [N, D])."""
    if data.support not in ("continuous", "discrete"):
        raise UserError(
            f"{file}: scoring a file is for continuous or discrete data; this run's data are "
            f"{data.support}: score its own test split (leave data.path out)"
        )
    discrete = data.support == "discrete"
    table = read_table(file, None, None, DISCRETE if discrete else CONTINUOUS)
    width = data.event_shape[0] if len(data.event_shape) else 1
    order = _matched(file, table.headers, table.skipped, data.column_names, width)
    if discrete:
        values = np.stack([table.counts(j, "a count 0, 1, 2, …") for j in order], axis=1)
        _within_bins(table, values, order, data.n_bins)
        x = torch.from_numpy(values)
    else:
        x = torch.from_numpy(np.ascontiguousarray(table.values[:, order]))
    return x[:, 0] if len(data.event_shape) == 0 else x


def _matched(
    file: Path, headers: list[str], skipped: list[str], trained: list[str] | None, width: int
) -> list[int]:
    """The file's column index for each training column, in training order."""
    named = trained is not None and any(not h.isdigit() for h in headers)
    if not named:
        if len(headers) != width or skipped:
            extra = f" (not numeric: {', '.join(skipped)})" if skipped else ""
            raise UserError(
                f"{file}: {len(headers)} numeric columns{extra}; the model takes {width}"
            )
        return list(range(width))
    missing = [c for c in trained if c not in headers]
    extra = [h for h in headers if h not in trained]
    if missing or extra or skipped:
        problems = [f"no column {', '.join(map(repr, missing))}"] if missing else []
        problems += [f"extra column {', '.join(map(repr, extra))}"] if extra else []
        problems += [f"not numeric: {', '.join(skipped)}"] if skipped else []
        raise UserError(
            f"{file}: {'; '.join(problems)}; expected the training columns "
            f"{', '.join(trained)} (in any order)"
        )
    return [headers.index(c) for c in trained]


def _within_bins(table, values: np.ndarray, order: list[int], n_bins: int | None) -> None:
    if n_bins is None:
        return
    for j, column in zip(order, values.T):
        table.refuse(column >= n_bins, j, f"is beyond the model's {n_bins} bins", f"0…{n_bins - 1}")
