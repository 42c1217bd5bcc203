"""Any numeric table as a data set: the user's own CSV, TSV, .npy, .npz or Parquet file.

One column gives 1-D data (events of shape (), like data=mog1d: flow1d, histogram, dmol); two or
more give vectors (shape (D,), like data=mog2d: gmm, realnvp). `dtype: auto` reads columns
written as integers (or of an integer dtype) as discrete data, counts 0…n_bins−1, and anything
else as continuous; a table with both is refused (`_refuse_mixed`: the user chooses the columns
or the dtype). Rows are split at random into train/val/test, seeded. No truth is known, so there
is no oracle.

Continuous data stay in the file's units. With `standardize` the data set exposes
`standardization = (shift, scale)`, the training split's mean and std, and the run assembly
wraps the model in `src.models.standardized.Standardized`: the model fits z = (x − shift)/scale
and its log-densities carry the −Σ log scale of the change of variables, so every reported
NLL and every sample is in the file's units, whatever the model.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from src.data.table_files import FORMATS, Table, read_table
from src.data.tensor_datamodule import SPLITS, TensorDataModule
from src.errors import ConfigError, UserError
from src.utils.constraints import (
    FRACTION,
    AnyOf,
    Constraint,
    Flag,
    Integer,
    Nullable,
    OneOf,
    Text,
    check_fractions,
)

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
DTYPES = {  # what the reader tries, in order; int64 succeeds only if every cell is an integer
    "auto": (np.int64, np.float32),  # integers: counts; anything else: float32
    "continuous": (np.float32,),
    "discrete": (np.int64, np.float64),  # 3.0 is a count too, checked exactly in float64
}
COUNT = "a count 0, 1, 2, … (data.dtype=continuous reads real numbers)"
STATS_ROWS = 1 << 16  # rows per block of the float64 statistics
BATCH_SIZE = 256  # `batch_size: auto` for continuous data; discrete data train on full batches


class TableDataModule(TensorDataModule):
    constraints: ClassVar[dict[str, Constraint]] = {
        "dtype": OneOf(*DTYPES),
        "n_bins": Nullable(Integer(low=1)),
        "dim": Nullable(Integer(low=1)),
        "standardize": Flag(),
        "val_fraction": FRACTION,
        "test_fraction": FRACTION,
        "batch_size": AnyOf(OneOf("auto", None), Integer(low=1)),
        "key": Nullable(Text(nonempty=True)),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        check_fractions(settings)

    def __init__(
        self,
        path: str | None,
        columns: Any = None,
        dtype: str = "auto",
        n_bins: int | None = None,
        dim: int | None = None,
        standardize: bool = True,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int | str | None = "auto",
        seed: int = 0,
        key: str | None = None,
    ) -> None:
        """`columns`: names or 0-based indices (null: every numeric column); `n_bins` (discrete):
        null infers max + 1; `dim`, when given, must be the number of columns (≥ 2): null leaves
        it to the file (the run assembly gives models `dim` and `n_bins` as the data found
        them); `key`: the array of an .npz file (null: its only one)."""
        file = resolve(path)

        table = read_table(file, columns, key, DTYPES[dtype])
        if dtype == "auto":
            _refuse_mixed(file, table)
        discrete = table.values.dtype.kind in "iu" if dtype == "auto" else dtype == "discrete"
        width = table.values.shape[1]
        if discrete:
            x, n_bins = _counts(file, table, n_bins)
        else:
            if n_bins is not None:
                valid = "null: the data are continuous (data.dtype=discrete reads counts)"
                raise ConfigError("n_bins", n_bins, valid)
            x = torch.from_numpy(table.values)  # float32
            x = x[:, 0] if width == 1 else x
        if (dim is not None and dim != width) or dim == 1:
            valid = f"{width} (the number of columns)" if width > 1 else "null (one column)"
            raise ConfigError("dim", dim, valid)

        super().__init__(
            (None if discrete else BATCH_SIZE) if batch_size == "auto" else batch_size, seed
        )
        self.dim = width if width > 1 else None
        self.n_bins = n_bins
        self.splits = _split(x, (val_fraction, test_fraction), seed, file)
        names, skipped = table.names, table.skipped
        self.column_names = table.headers
        del x, table  # the splits hold every row: free the file's copy before the statistics
        self.shift: Tensor | None = None
        self.scale: Tensor | None = None
        if not discrete:
            _refuse_constant(file, self.splits["train"], names)
            if standardize:
                self.shift, self.scale = _standardization(file, self.splits, names)
        self._report(file, names, skipped, discrete)

    @property
    def standardization(self) -> tuple[Tensor, Tensor] | None:
        """(shift, scale) the model must be wrapped in (`Standardized`), or None."""
        return None if self.shift is None else (self.shift, self.scale)

    def _report(self, file: Path, names: list[str], skipped: list[str], discrete: bool) -> None:
        sizes = "/".join(str(len(self.splits[s])) for s in SPLITS)
        kind = f"discrete, n_bins={self.n_bins}" if discrete else "continuous"
        log.info(
            "%s: %s (%s), train/val/test %s rows%s",
            file,
            ", ".join(names),
            kind,
            sizes,
            f"; not numeric, left out: {', '.join(skipped)}" if skipped else "",
        )
        if self.shift is not None:
            log.info(
                "standardized by the training split's mean %s and std %s; log-densities stay in "
                "the file's units (−Σ log std = %.6g per example)",
                _show(self.shift),
                _show(self.scale),
                -float(self.scale.double().log().sum()),
            )


def resolve(path: str | None) -> Path:
    """Relative paths are tried from the working directory, then from the project root."""
    if isinstance(path, str) and path:
        for candidate in (Path(path), ROOT / path):
            if candidate.is_file():
                return candidate
    raise ConfigError("path", path, f"an existing {FORMATS} file")


def _refuse_mixed(file: Path, table: Table) -> None:
    """`dtype: auto` reads integers as counts and anything else as real numbers; a table of both
    (a label column beside measurements, say) is neither, and modelling its integers as real
    numbers fits a density that spikes on each integer (a training NLL far below the
    validation one). Dequantizing them would change the data unasked: the user chooses."""
    integer = [k for k, whole in enumerate(table.integer) if whole]
    real = [k for k, whole in enumerate(table.integer) if not whole]
    if not integer or not real:
        return

    def columns(ks: list[int]) -> str:
        quoted = ", ".join(table.names[k].removeprefix("column ") for k in ks)
        return f"column{'s' if len(ks) > 1 else ''} {quoted}"

    raise UserError(
        f"{file}: integer {columns(integer)} beside real-valued {columns(real)}: data.dtype=auto "
        "does not guess whether integers are counts or real numbers; choose "
        f"data.columns={_override(table, real)} (the real-valued columns), "
        "data.dtype=continuous (every column as real numbers) or "
        f"data.columns={_override(table, integer[:1])} (counts alone, for a discrete model)"
    )


def _override(table: Table, ks: list[int]) -> str:
    """Columns as a `data.columns=[...]` override takes them: a header's name (quoted unless it
    is a plain word), else a 0-based index."""
    names = []
    for k in ks:
        header = table.headers[k]
        named = table.names[k] != f"column {header}"  # "column 'x'" for a name, "column 2" else
        plain = not named or re.fullmatch(r"[A-Za-z_][\w.-]*", header)
        names.append(header if plain else repr(header))
    return f"[{','.join(names)}]"


def _counts(file: Path, table: Table, n_bins: int | None) -> tuple[Tensor, int]:
    """The single column as bin indices 0…n_bins−1 ([N] long); n_bins inferred if not given."""
    if table.values.shape[1] > 1:
        raise UserError(
            f"{file}: {', '.join(table.names)} as discrete data: the discrete models are 1-D; "
            "choose one with data.columns=[...], or read them as real numbers with "
            "data.dtype=continuous"
        )
    values = table.counts(0, COUNT)
    if n_bins is None:
        n_bins = int(values.max()) + 1
        log.info("%s: n_bins=%d, the largest count + 1 (set data.n_bins to fix it)", file, n_bins)
    else:
        expected = f"a count in 0…{n_bins - 1} (data.n_bins={n_bins})"
        table.refuse(values >= n_bins, 0, "is too large", expected)
    return torch.from_numpy(values), n_bins


def _split(x: Tensor, fractions: tuple[float, float], seed: int, file: Path) -> dict[str, Tensor]:
    """Rows drawn into train/val/test by a permutation seeded by `seed`: disjoint, every row
    once. Each split keeps the file's order (training shuffles every epoch anyway), so the rows
    are copied in sequence, several times faster than gathering them in random order."""
    n = len(x)
    n_val, n_test = (max(1, round(f * n)) for f in fractions)
    if n - n_val - n_test < 2:
        raise UserError(
            f"{file}: {n} rows are too few for val_fraction={fractions[0]} and "
            f"test_fraction={fractions[1]} (train needs 2 rows, val and test 1 each)"
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    label = torch.empty(n, dtype=torch.uint8)
    for k, index in enumerate(perm.split([n - n_val - n_test, n_val, n_test])):
        label[index] = k
    return {split: x[label == k] for k, split in enumerate(SPLITS)}


def _refuse_constant(file: Path, train: Tensor, names: list[str]) -> None:
    """A column with one value has no density (its likelihood grows without bound as a model
    narrows onto it) and cannot be standardized: it is refused, never silently dropped."""
    columns = train.reshape(len(train), -1)
    low, high = columns.aminmax(dim=0)
    constant = torch.nonzero(low == high).flatten().tolist()
    if constant:
        j = constant[0]
        raise UserError(
            f"{file}: {names[j]} is constant ({low[j].item():g}) in the training split: it has "
            "no density to fit; leave it out with data.columns=[...]"
        )


def _moments(train: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation per column, accumulated in float64 (a float32 sum or square
    of values near 1e30 overflows) a block of rows at a time, without a float64 copy of the
    data: float64 tensors of the events' shape."""
    rows = train.reshape(len(train), -1)
    blocks = rows.split(STATS_ROWS)
    mean = sum(block.sum(0, dtype=torch.float64) for block in blocks) / len(rows)
    var = sum((block.double() - mean).square_().sum(0) for block in blocks) / len(rows)
    shape = train.shape[1:]
    return mean.reshape(shape), var.sqrt().reshape(shape)


def _standardization(
    file: Path, splits: dict[str, Tensor], names: list[str]
) -> tuple[Tensor, Tensor]:
    """(shift, scale) in float32, the training split's mean and std, once every column is known
    to survive it: a std float32 holds (finite, > 0) and every value of every split finite in
    float32 once standardized, as the model computes (x − shift)/scale. A column that is not
    is refused in one line naming the file and the column, never left to overflow in a fit."""
    mean, std = _moments(splits["train"])
    mean, std = mean.reshape(-1), std.reshape(-1)
    shift, scale = mean.float(), std.float()
    top = float(torch.finfo(torch.float32).max)
    for j in range(len(mean)):
        if not (math.isfinite(float(scale[j])) and float(scale[j]) > 0):
            raise UserError(
                f"{file}, {names[j]}: its standard deviation in the training split, "
                f"{float(std[j]):.6g}, is not a positive float32; expected a column whose spread "
                f"float32 holds (within {top:.2g}): rescale it, or leave it out with "
                "data.columns=[...]"
            )
    for split, x in splits.items():
        rows = x.reshape(len(x), -1)
        for block in rows.split(STATS_ROWS):
            finite = torch.isfinite((block - shift) / scale).all(0)
            if not finite.all():
                j = int((~finite).nonzero()[0])
                worst = float((block[:, j].double() - mean[j]).abs().max() / std[j])
                raise UserError(
                    f"{file}, {names[j]}: standardized by the training split's mean "
                    f"{float(mean[j]):.6g} and std {float(std[j]):.6g}, a {split} value "
                    f"becomes {worst:.3g}, beyond float32; expected a column whose values "
                    f"float32 holds once standardized (within ±{top:.2g}): rescale it, or "
                    "leave it out with data.columns=[...]"
                )
    shape = splits["train"].shape[1:]
    return shift.reshape(shape), scale.reshape(shape)


def _show(t: Tensor) -> str:
    return np.array2string(t.numpy(), precision=4, separator=", ")
