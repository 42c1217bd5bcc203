"""Any numeric table as a data set: the user's own CSV, TSV, .npy, .npz or Parquet file.

One column gives 1-D data (events of shape (), like data=mog1d: flow1d, histogram, dmol); two or
more give vectors (shape (D,), like data=mog2d: gmm, realnvp). `dtype: auto` reads columns
written as integers (or of an integer dtype) as discrete data, counts 0…n_bins−1, and anything
else as continuous; a table with both is refused (`_refuse_mixed`: the user chooses the columns
or the dtype). Rows are split at random into train/val/test, seeded. No truth is known, so there
is no oracle.

A data set that comes with its own splits (the MAF/NSF tabular benchmarks:
docs/tabular_benchmarks.md) names them: `val_path` and `test_path` are read by the same reader
as the kind the training file was read as, their columns matched to its columns by name in any
order (`matched_columns`, as src.score matches a new file), and `path` is then the training
split, whole. A split without its own file is drawn at random from the training file with its
fraction, as before; a fraction beside a split's own file is refused, never silently ignored.

A `weight_column` weights the rows (src/data/weights.py): it is read beside the data, never a
model input (with `columns: null` every other numeric column is data), and follows its rows
into their splits; a split's own file has the same column, found by the training file's name
for it. Every fit and metric then counts row n w_n times, and the standardization is the
weighted mean and std of the training split.

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

from src.data.new_rows import matched_columns
from src.data.table_files import DTYPES, FORMATS, AllBut, Table, read_table
from src.data.tensor_datamodule import SPLITS, TensorDataModule
from src.data.weights import describe, read_weights, refuse_empty
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
COUNT = "a count 0, 1, 2, … (data.dtype=continuous reads real numbers)"
FRACTION_DEFAULT = 0.1  # val/test_fraction: the one value allowed beside that split's own file
OWN = ("val", "test")  # the splits that may come from their own files
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
        "val_path": Nullable(Text(nonempty=True)),
        "test_path": Nullable(Text(nonempty=True)),
        "weight_column": Nullable(AnyOf(Text(nonempty=True), Integer(low=0))),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """A split's own file and a fraction of it are two answers to one question: a fraction
        other than the default beside the file is refused, never silently ignored."""
        own = [split for split in OWN if settings.get(f"{split}_path") is not None]
        for split in own:
            key, file = f"{split}_fraction", settings[f"{split}_path"]
            if settings.get(key) != FRACTION_DEFAULT:
                valid = (
                    f"{FRACTION_DEFAULT} (its default) beside data.{split}_path={file!r}, which is "
                    f"the {split} split whole: set data.{split}_path=null to draw it by fraction"
                )
                raise ConfigError(key, settings.get(key), valid)
        if not own:
            check_fractions(settings)

    def __init__(
        self,
        path: str | None,
        columns: Any = None,
        dtype: str = "auto",
        n_bins: int | None = None,
        dim: int | None = None,
        standardize: bool = True,
        val_fraction: float = FRACTION_DEFAULT,
        test_fraction: float = FRACTION_DEFAULT,
        batch_size: int | str | None = "auto",
        seed: int = 0,
        key: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        weight_column: str | int | None = None,
    ) -> None:
        """`columns`: names or 0-based indices (null: every numeric column); `n_bins` (discrete):
        null infers max + 1; `dim`, when given, must be the number of columns (≥ 2): null leaves
        it to the file (the run assembly gives models `dim` and `n_bins` as the data found
        them); `key`: the array of an .npz file (null: its only one); `val_path`, `test_path`:
        the split's own file (null: drawn from `path` at random with its fraction);
        `weight_column`: the column of row weights, a name or 0-based index (null: unweighted)."""
        file = resolve(path)
        files = {"train": file} | {
            split: _own_file(own, f"{split}_path", file)
            for split, own in zip(OWN, (val_path, test_path))
            if own is not None
        }

        weights, weight_key = None, None
        if weight_column is not None:
            weights, weight_name = read_weights(file, weight_column, key)
        table = read_table(file, _data_columns(columns, weight_column), key, DTYPES[dtype])
        if weights is not None:
            _refuse_weight_as_data(table, weight_name, weight_column)
            weight_key = weight_name if table.header else weight_column  # in the own splits
        if dtype == "auto":
            _refuse_mixed(file, table)
        discrete = table.values.dtype.kind in "iu" if dtype == "auto" else dtype == "discrete"
        width = table.values.shape[1]
        bins_from = "data.n_bins" if n_bins is not None else "the training file"
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
        fractions = {"val": val_fraction, "test": test_fraction}
        rows = {"x": x} | ({} if weights is None else {"weight": weights})
        drawn = _split(rows, {s: f for s, f in fractions.items() if s not in files}, seed, file)
        bins = (n_bins, bins_from) if discrete else None
        own = {
            split: _own_split(files[split], table, columns is not None, key, bins, weight_key)
            for split in OWN
            if split in files
        }
        parts = drawn | own
        self.splits = {split: parts[split]["x"] for split in SPLITS}
        if weights is not None:
            self.weight_column = str(weight_column)
            for split in SPLITS:
                self.extras[split]["weight"] = parts[split]["weight"]
                refuse_empty(
                    parts[split]["weight"], split, str(files.get(split, file)), weight_name
                )
        names, skipped = table.names, table.skipped
        self.column_names = table.headers
        del x, table, rows, parts  # the splits hold every row: free the file's copy
        self.shift: Tensor | None = None
        self.scale: Tensor | None = None
        if not discrete:
            _refuse_constant(file, self.splits["train"], names)
            if standardize:
                self.shift, self.scale = _standardization(
                    files, self.splits, names, self.train_weights
                )
        self._report(files, names, skipped, discrete)

    @property
    def standardization(self) -> tuple[Tensor, Tensor] | None:
        """(shift, scale) the model must be wrapped in (`Standardized`), or None."""
        return None if self.shift is None else (self.shift, self.scale)

    def _report(
        self, files: dict[str, Path], names: list[str], skipped: list[str], discrete: bool
    ) -> None:
        sizes = "/".join(str(len(self.splits[s])) for s in SPLITS)
        kind = f"discrete, n_bins={self.n_bins}" if discrete else "continuous"
        own = [split for split in OWN if split in files]
        sources = ""
        if len(own) == 2:
            sources = f" (val {files['val']}, test {files['test']}: the data set's own splits)"
        elif own:
            (split,), (other,) = own, set(OWN) - set(own)
            sources = (
                f" ({split} {files[split]}, its own split; {other} drawn at random from this file)"
            )
        log.info(
            "%s: %s (%s), train/val/test %s rows%s%s",
            files["train"],
            ", ".join(names),
            kind,
            sizes,
            sources,
            f"; not numeric, left out: {', '.join(skipped)}" if skipped else "",
        )
        if self.weight_column is not None:
            log.info(
                "rows weighted by column %r: train %s",
                self.weight_column,
                describe(self.train_weights),
            )
        if self.shift is not None:
            log.info(
                "standardized by the training split's mean %s and std %s; log-densities stay in "
                "the file's units (−Σ log std = %.6g per example)",
                _show(self.shift),
                _show(self.scale),
                -float(self.scale.double().log().sum()),
            )


def resolve(path: str | None, setting: str = "path") -> Path:
    """Relative paths are tried from the working directory, then from the project root."""
    if isinstance(path, str) and path:
        for candidate in (Path(path), ROOT / path):
            if candidate.is_file():
                return candidate
    raise ConfigError(setting, path, f"an existing {FORMATS} file")


def _own_file(path: str, setting: str, train: Path) -> Path:
    """A split's own file, resolved as `path` is; the training file itself would score the model
    on the rows it was fitted to."""
    file = resolve(path, setting)
    if file.resolve() == train.resolve():
        raise ConfigError(setting, path, "a file other than data.path (the training split)")
    return file


def _own_split(
    file: Path,
    train: Table,
    chosen: bool,
    key: str | None,
    bins: tuple[int, str] | None,
    weight_column: str | int | None,
) -> dict[str, Tensor]:
    """A split's own file as the training file was read: the same kind (counts when `bins`, the
    training's (n_bins, where it came from), else real numbers), its columns matched to the
    training columns by name in any order (by position in a file without a header). With
    `chosen` (data.columns) the file's other columns are left out, as the training file's were;
    else it has the training file's columns, its non-numeric ones left out alike. With
    `weight_column` (the training file's name for it, or its index without a header) its rows'
    weights come too, as "weight"."""
    dtypes = DTYPES["discrete" if bins else "continuous"]
    split = read_table(file, _data_columns(None, weight_column), key, dtypes)
    weights = {} if weight_column is None else {"weight": read_weights(file, weight_column, key)[0]}
    index = {h: j for j, h in enumerate(split.headers)}
    keep = list(range(len(split.headers)))
    if chosen:
        keep = [index[h] for h in train.headers if h in index] or keep
    skipped = [s for s in split.skipped if (s in train.names if chosen else s not in train.skipped)]
    headers = [split.headers[j] for j in keep]
    matched = matched_columns(file, headers, skipped, train.headers, len(train.headers))
    order = [keep[k] for k in matched]
    if bins is None:
        x = torch.from_numpy(np.ascontiguousarray(split.values[:, order]))
        return {"x": x[:, 0] if len(order) == 1 else x} | weights
    (j,) = order  # discrete data are one column (`_counts`)
    n_bins, source = bins
    counts = split.counts(j, COUNT)
    expected = f"a count in 0…{n_bins - 1} (n_bins={n_bins} from {source})"
    split.refuse(counts >= n_bins, j, "is beyond the training bins", expected)
    return {"x": torch.from_numpy(counts)} | weights


def _data_columns(columns: Any, weight_column: str | int | None) -> Any:
    """What to read as data: `columns`, or with `columns: null` every numeric column but the
    weights."""
    if columns is None and weight_column is not None:
        return AllBut(weight_column, "weight_column")
    return columns


def _refuse_weight_as_data(table: Table, weight_name: str, weight_column: str | int) -> None:
    """The weights are never a model input: a weight column among data.columns is refused."""
    if weight_name in table.headers:
        chosen = ", ".join(table.headers)
        valid = f"a column other than the data's (data.columns: {chosen})"
        raise ConfigError("weight_column", weight_column, valid)


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


def _split(
    rows: dict[str, Tensor], fractions: dict[str, float], seed: int, file: Path
) -> dict[str, dict[str, Tensor]]:
    """Rows (the data "x" and any tensors of the same length, e.g. their "weight") drawn into
    train and the splits of `fractions` (val, test, either or none) by a permutation seeded by
    `seed`: disjoint, every row once. Each split keeps the file's order (training shuffles
    every epoch anyway), so the rows are copied in sequence, several times faster than
    gathering them in random order."""
    if not fractions:
        return {"train": rows}
    n = len(rows["x"])
    sizes = {split: max(1, round(f * n)) for split, f in fractions.items()}
    n_train = n - sum(sizes.values())
    if n_train < 2:
        asked = " and ".join(f"{split}_fraction={f}" for split, f in fractions.items())
        each = " and ".join(sizes) + (" 1 each" if len(sizes) > 1 else " 1")
        raise UserError(f"{file}: {n} rows are too few for {asked} (train needs 2 rows, {each})")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    label = torch.empty(n, dtype=torch.uint8)
    for k, index in enumerate(perm.split([n_train, *sizes.values()])):
        label[index] = k
    return {
        split: {name: t[label == k] for name, t in rows.items()}
        for k, split in enumerate(["train", *sizes])
    }


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


def _moments(train: Tensor, weights: Tensor | None) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation per column (weighted: Σ w x / Σ w and Σ w (x − mean)² / Σ w),
    accumulated in float64 (a float32 sum or square of values near 1e30 overflows) a block of
    rows at a time, without a float64 copy of the data: float64 tensors of the events'
    shape."""
    rows = train.reshape(len(train), -1)
    blocks = rows.split(STATS_ROWS)
    if weights is None:
        mean = sum(block.sum(0, dtype=torch.float64) for block in blocks) / len(rows)
        var = sum((block.double() - mean).square_().sum(0) for block in blocks) / len(rows)
    else:
        pairs = list(zip(blocks, weights.double()[:, None].split(STATS_ROWS)))
        total = weights.double().sum()
        mean = sum((block.double() * w).sum(0) for block, w in pairs) / total
        var = sum(((block.double() - mean).square_() * w).sum(0) for block, w in pairs) / total
    shape = train.shape[1:]
    return mean.reshape(shape), var.sqrt().reshape(shape)


def _standardization(
    files: dict[str, Path], splits: dict[str, Tensor], names: list[str], weights: Tensor | None
) -> tuple[Tensor, Tensor]:
    """(shift, scale) in float32, the training split's mean and std, once every column is known
    to survive it: a std float32 holds (finite, > 0) and every value of every split finite in
    float32 once standardized, as the model computes (x − shift)/scale. A column that is not
    is refused in one line naming the file and the column, never left to overflow in a fit.
    `files`: each split's file (a drawn split's is the training file); `weights`: the training
    rows' (None: one each)."""
    mean, std = _moments(splits["train"], weights)
    mean, std = mean.reshape(-1), std.reshape(-1)
    shift, scale = mean.float(), std.float()
    top = float(torch.finfo(torch.float32).max)
    for j in range(len(mean)):
        if not (math.isfinite(float(scale[j])) and float(scale[j]) > 0):
            raise UserError(
                f"{files['train']}, {names[j]}: its standard deviation in the training split, "
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
                    f"{files.get(split, files['train'])}, {names[j]}: standardized by the "
                    f"training split's mean "
                    f"{float(mean[j]):.6g} and std {float(std[j]):.6g}, a {split} value "
                    f"becomes {worst:.3g}, beyond float32; expected a column whose values "
                    f"float32 holds once standardized (within ±{top:.2g}): rescale it, or "
                    "leave it out with data.columns=[...]"
                )
    shape = splits["train"].shape[1:]
    return shift.reshape(shape), scale.reshape(shape)


def _show(t: Tensor) -> str:
    return np.array2string(t.numpy(), precision=4, separator=", ")
