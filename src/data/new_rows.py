"""A new file read as the rows a trained run's model takes: same columns, same kind, same bins.

The file goes through the one table reader (src/data/table_files.py), so a bad cell is named by
file, line and column as anywhere else. Its columns are matched to the training file's by name,
in any order; a file without a header (or a .npy) is matched by position. A missing or an extra
column is refused: a column left out of the training data has no meaning to the model.

`row_blocks` streams: the reader reads the first block (checking the header, the columns and
its cells), and the rest of a CSV, TSV or .npy follows block by block, so memory stays one
block whatever the file's length. A block that does not read cleanly sends the whole file back
to the reader, which names the first bad line. .npz and Parquet files are read whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from src.data.protocol import DataSource
from src.data.table_files import DELIMITERS, DTYPES, Table, read_table
from src.errors import UserError

COUNT = "a count 0, 1, 2, …"
BLOCK_ROWS = 1 << 18


def row_blocks(file: Path, data: DataSource, rows: int | None = BLOCK_ROWS) -> Iterator[Tensor]:
    """The rows of `file`, `rows` at a time (None: all at once), as `data`'s training split
    holds its rows ([N] or [N, D])."""
    if data.support not in ("continuous", "discrete"):
        raise UserError(
            f"{file}: scoring a file is for continuous or discrete data; this run's data are "
            f"{data.support}: score its own test split (leave data.path out)"
        )
    discrete = data.support == "discrete"
    dtypes = DTYPES[data.support]
    head = read_table(file, None, None, dtypes, max_rows=rows)
    width = data.event_shape[0] if len(data.event_shape) else 1
    order = matched_columns(file, head.headers, head.skipped, data.column_names, width)
    yield _rows(_checked(head, order, data), data)
    if rows is None or len(head.values) < rows:
        return
    for values in _rest(file, rows, dtypes, head.header):
        if values is None or values.shape[1] != len(head.headers) or not _clean(values, data):
            read_rows(file, data)  # the reader names the first bad line
            raise UserError(f"{file}: a row after line {rows} could not be read")
        values = values[:, order]
        yield _rows(values.astype(np.int64) if discrete else values, data)


def read_rows(file: Path, data: DataSource) -> Tensor:
    """The whole file at once (and the line-precise refusal of whatever is wrong in it)."""
    (rows,) = row_blocks(file, data, rows=None)
    return rows


def _rows(values: np.ndarray, data: DataSource) -> Tensor:
    x = torch.from_numpy(np.ascontiguousarray(values))
    return x[:, 0] if len(data.event_shape) == 0 else x


def _checked(table: Table, order: list[int], data: DataSource) -> np.ndarray:
    """The reader's block in the training order; counts checked cell by cell, naming the line."""
    if data.support != "discrete":
        return table.values[:, order]
    values = np.stack([table.counts(j, COUNT) for j in order], axis=1)
    if data.n_bins is not None:
        for k, j in enumerate(order):
            n = data.n_bins
            table.refuse(values[:, k] >= n, j, f"is beyond the model's {n} bins", f"0…{n - 1}")
    return values


def _rest(file: Path, skip: int, dtypes: tuple, header: bool) -> Iterator[np.ndarray | None]:
    """The rows after the first `skip`, in blocks of `skip`; None for a block that does not
    parse as any of `dtypes`, for the caller to send the file to the reader."""
    suffix = file.suffix.lower()
    if suffix == ".npy":
        array = np.load(file, mmap_mode="r", allow_pickle=False)
        array = array[:, None] if array.ndim == 1 else array
        for start in range(skip, len(array), skip):
            yield np.asarray(array[start : start + skip], dtype=dtypes[-1])
        return
    if suffix not in DELIMITERS:  # .npz, Parquet: read whole by the reader
        values = read_table(file, None, None, dtypes).values
        for start in range(skip, len(values), skip):
            yield values[start : start + skip]
        return
    with file.open(encoding="utf-8-sig", newline=None, errors="replace") as handle:
        lines = (line for line in handle if line.strip())
        rest = itertools.islice(lines, skip + int(header), None)
        while block := list(itertools.islice(rest, skip)):
            yield _parsed(block, DELIMITERS[file.suffix.lower()], dtypes)


def _parsed(block: list[str], delimiter: str, dtypes: tuple) -> np.ndarray | None:
    for dtype in dtypes:
        try:
            return np.loadtxt(block, delimiter=delimiter, dtype=dtype, comments=None, ndmin=2)
        except ValueError:
            continue
    return None


def _clean(values: np.ndarray, data: DataSource) -> bool:
    """What the reader checks of every cell: finite numbers; for discrete data whole numbers in
    0 … n_bins − 1."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        return False
    if data.support != "discrete":
        return True
    high = data.n_bins if data.n_bins is not None else 2.0**53
    return bool((values >= 0).all() and (values < high).all() and (values % 1 == 0).all())


def matched_columns(
    file: Path, headers: list[str], skipped: list[str], trained: list[str] | None, width: int
) -> list[int]:
    """The file's column index for each training column, in training order (also how data=table
    matches its own validation and test files to the training file)."""
    named = trained is not None and any(not h.isdigit() for h in headers)
    if not named:
        if len(headers) != width or skipped:
            extra = f" (not numeric: {', '.join(skipped)})" if skipped else ""
            raise UserError(
                f"{file}: {len(headers)} numeric columns{extra}; the training data have {width}"
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
