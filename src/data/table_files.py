"""Numeric tables from files (CSV, TSV, .npy, .npz, Parquet) as one array of chosen columns.

Text is parsed by numpy's C reader (`np.loadtxt` given the file name: no Python work per row,
no memory beyond the result; numpy >= 1.23), about 4·10⁶ rows/s (benchmarks/table_load.py).
Only once something is wrong is the file read again, in blocks of whole lines, to name the
first bad file line (the header is line 1) and its column: numpy finds the first block it
refuses and Python scans that block alone. Parquet needs pandas, imported only for it: the
project does not depend on it.

It is the one reader of every table file: data=table and the earthquake catalogues alike read
through it, so a bad cell is one line of the same shape wherever it is read,
`<file>, line N, column 'name': <what is wrong>; expected <what is valid>`, an integer beyond
int64 is refused where it stands (never wrapped, never an overflow from a library), and columns
are chosen by the same rules (a name of the header, matched exactly, else without case; or a
0-based index).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import ConfigError, UserError

FORMATS = ".csv, .tsv, .npy, .npz or .parquet"
DELIMITERS = {".csv": ",", ".tsv": "\t"}
BLOCK = 1 << 24  # bytes per block of whole lines (field counts, error paths)
MISSING = {"na", "n/a", "null", "none"}  # how R, pandas and others write a missing value
Cell = Callable[[int, int], tuple[str, str]]
NUMBER = "a finite number"  # what every numeric cell must be
INT64 = np.iinfo(np.int64)
IN_INT64 = f"an integer from {INT64.min} to {INT64.max} (int64)"
INTEGER = re.compile(r"[+-]?[0-9]+")  # an integer as written, as numpy's int64 reader takes it
EXACT = 2.0**53  # beyond it a float64 no longer holds every integer
DTYPES = {  # what the reader tries, in order; int64 succeeds only if every cell is an integer
    "auto": (np.int64, np.float32),  # integers: counts; anything else: float32
    "continuous": (np.float32,),
    "discrete": (np.int64, np.float64),  # 3.0 is a count too, checked exactly in float64
}


@dataclass(frozen=True)
class AllBut:
    """`columns` for every numeric column but one: `column`, which setting `setting` names
    (data.weight_column beside data.columns=null) and which must exist."""

    column: Any
    setting: str


@dataclass
class Table:
    """The chosen columns of a file, [N, C]: int64 when whole numbers were asked for and every
    cell is one (written as an integer, or an integer dtype), else floating point."""

    values: np.ndarray
    names: list[str]  # the chosen columns as messages name them: "column 'x'" or "column 2"
    skipped: list[str]  # columns left out because they are not numeric
    cell: Cell  # (row, chosen column) → ("<file>, line 7, column 'x'", the cell's text)
    headers: list[str]  # the chosen columns' own names: the header's, else "0", "1", … (index)
    # per chosen column: every cell an integer as the file stores it (written without a point
    # or an exponent, or of an integer dtype), so that a caller can tell a column of integers
    # beside real numbers from a float table; looked for only when int64 is asked for
    integer: list[bool]
    header: bool = False  # a CSV/TSV whose first line names the columns

    def refuse(self, bad: np.ndarray, j: int, problem: str, expected: str) -> None:
        """The first row where `bad` [N] holds, as one line naming its file line and column j:
        `<where>: <text> <problem>; expected <expected>`."""
        if bad.any():
            where, text = self.cell(int(bad.argmax()), j)
            raise UserError(f"{where}: {text} {problem}; expected {expected}")

    def counts(self, j: int, expected: str) -> np.ndarray:
        """Column j as counts 0, 1, 2, … (int64 [N]): whole numbers (3.0 is 3) within int64,
        not below 0, each refusal one line naming the cell; `expected` says what is valid."""
        values = self.values[:, j]
        if values.dtype.kind in "iu":
            self.refuse(values < 0, j, "is below 0", expected)
            return values.astype(np.int64, copy=False)
        self.refuse(values != np.floor(values), j, "is not a whole number", expected)
        beyond = np.abs(values) >= 2.0**63
        for row in np.flatnonzero(np.abs(values) == 2.0**63):  # int64's max rounds up to 2⁶³
            beyond[row] = not _fits_int64(self.cell(int(row), j)[1])
        self.refuse(beyond, j, "is beyond int64's range", IN_INT64)
        self.refuse(values < 0, j, "is below 0", expected)
        with np.errstate(invalid="ignore"):  # 2⁶³ itself: set from its text below
            counts = values.astype(np.int64)
        for row in np.flatnonzero(values >= EXACT):  # exact from the text, as int64 reads it
            text = self.cell(int(row), j)[1]
            if INTEGER.fullmatch(text):
                counts[row] = int(text)
        return counts


def read_table(
    file: Path,
    columns: Any,
    key: str | None,
    dtypes: Sequence[type[np.generic]],
    max_rows: int | None = None,
) -> Table:
    """`dtypes`, tried in order: int64 (only if every cell is an integer), then a float type.
    `columns`: None (every numeric column), `AllBut` (all of them but one), or names / 0-based
    indices; `key`: the array of an
    .npz file (None: its only one); `max_rows`: only the first rows of a CSV, TSV or .npy (the
    header and columns are checked as always). Refuses empty files, bad cells, NaN and inf in
    one line."""
    suffix = file.suffix.lower()
    if suffix in DELIMITERS:
        table = _read_text(file, DELIMITERS[suffix], columns, dtypes, max_rows)
    elif suffix in (".npy", ".npz"):
        table = _read_numpy(file, key, columns, dtypes, max_rows)
    elif suffix == ".parquet":
        table = _read_parquet(file, columns, dtypes)
    else:
        raise ConfigError("path", str(file), f"a {FORMATS} file")
    if table.values.dtype.kind == "f":
        _check_finite(table)
    return table


def select_columns(
    names: list[str] | None, numeric: list[bool], columns: Any, source: str
) -> list[int]:
    """Indices of the chosen columns: names (when the file has them) or 0-based indices; a
    mapping {setting: column} (the earthquake catalogues' `lat_column`, ...) names each setting
    in its own refusal. A name matches exactly, else without case, and must be unique."""
    if columns is None or isinstance(columns, AllBut):
        left_out = None
        if isinstance(columns, AllBut):
            left_out = select_columns(names, numeric, {columns.setting: columns.column}, source)[0]
        chosen = [j for j, ok in enumerate(numeric) if ok and j != left_out]
        if not chosen:
            besides = "" if left_out is None else f" besides {_label(names, left_out)}"
            raise UserError(f"{source}: no numeric column{besides}")
        return chosen
    indices = f"0-based indices 0…{len(numeric) - 1}"
    if isinstance(columns, Mapping):
        one = (
            f"a column name in {source}'s header: {', '.join(names)}, or a 0-based index "
            f"0…{len(numeric) - 1}"
            if names is not None
            else f"a 0-based column index 0…{len(numeric) - 1} ({source} has no header)"
        )
        chosen: list[int] = []
        for setting, c in columns.items():
            j = _find(names, len(numeric), c)
            if j is None:
                raise ConfigError(setting, c, one)
            if j in chosen:
                other = list(columns)[chosen.index(j)]
                raise ConfigError(setting, c, f"a column other than {other}'s ({columns[other]!r})")
            chosen.append(j)
        return chosen
    wanted = [columns] if isinstance(columns, (str, int, float)) else list(columns)
    valid = indices
    if names is not None:
        valid = f"names of columns ({', '.join(map(repr, names))}) or {valid}"
    chosen = []
    for c in wanted:
        j = _find(names, len(numeric), c)
        if j is None:
            raise ConfigError(
                "columns", wanted, f"null (every numeric column) or a list of {valid}"
            )
        chosen.append(j)
    if not chosen or len(set(chosen)) < len(chosen):
        raise ConfigError("columns", wanted, f"a non-empty list without repeats of {valid}")
    return chosen


def _every(columns: Any) -> bool:
    """`columns` asks for every numeric column (but perhaps one): the others are reported."""
    return columns is None or isinstance(columns, AllBut)


def _find(names: list[str] | None, width: int, column: Any) -> int | None:
    """The index of `column`: a 0-based index, or a name of the header, matched exactly (after
    surrounding spaces), else without case; None if there is no such column or it is ambiguous."""
    if isinstance(column, int) and not isinstance(column, bool):
        return column if 0 <= column < width else None
    if not isinstance(column, str) or names is None:
        return None
    name = column.strip()
    for same in (lambda n: n == name, lambda n: n.casefold() == name.casefold()):
        found = [j for j, n in enumerate(names) if same(n)]
        if found:
            return found[0] if len(found) == 1 else None
    return None


def _label(names: list[str] | None, j: int) -> str:
    return f"column {names[j]!r}" if names is not None else f"column {j}"


def _check_finite(table: Table) -> None:
    bad = ~np.isfinite(table.values)
    if bad.any():
        row, j = divmod(int(bad.argmax()), bad.shape[1])
        where, text = table.cell(row, j)
        if _parses(text) and not re.search(r"nan|inf", text, re.IGNORECASE):
            kind = np.finfo(table.values.dtype)  # a finite number in the file, not in this type
            raise UserError(
                f"{where}: {text} is beyond {kind.dtype}'s range; expected {NUMBER} within "
                f"±{float(kind.max):.2g}"
            )
        raise UserError(f"{where}: {text} is not a finite number; expected {NUMBER}")


def _parses(text: str) -> bool:
    """A number as Python reads it (nan and inf included, as numpy's reader takes them)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---- CSV / TSV -------------------------------------------------------------------------------


def _read_text(
    file: Path, delimiter: str, columns: Any, dtypes: Sequence[type], max_rows: int | None
) -> Table:
    """The first line is a header unless all its cells are numbers; a leading `#` (as
    np.savetxt writes a header) is dropped. Which columns are numeric is read off the first
    row, where a missing value (NA, or an empty cell under a name) counts as numeric so that it
    is reported, not its column dropped. Empty lines are skipped; a byte-order mark and any
    line endings are accepted."""
    lines = _lines(file)
    first = next(lines, None)
    if first is None or not first[1].strip():
        raise UserError(
            f"{file}: the file is empty" if first is None else f"{file}: line 1 is empty"
        )
    head = [c.strip() for c in first[1].split(delimiter)]
    header = not all(_parses(c) for c in head)
    names = [c.strip('"').strip() for c in head] if header else None
    if names and names[0].startswith("#"):
        names[0] = names[0].lstrip("#").strip()
    data = next((line for line in lines if line[1]), None) if header else first
    if data is None:
        raise UserError(f"{file}: a header but no rows")
    lines.close()
    cells = data[1].split(delimiter)
    if len(cells) != len(head):
        raise _ragged(file, data[0], len(cells), len(head), header)
    named = names or [""] * len(cells)
    numeric = [
        _parses(c) or c.lower() in MISSING or (c == "" and name != "")
        for c, name in zip((c.strip() for c in cells), named)
    ]
    chosen = select_columns(names, numeric, columns, str(file))
    if chosen != list(range(len(head))):  # loadtxt ignores a row's extra fields in a subset
        _check_field_counts(file, delimiter, len(head), header)

    def cell(row: int, j: int) -> tuple[str, str]:
        line, fields = _row_line(file, delimiter, header, row)
        return f"{file}, line {line}, {_label(names, chosen[j])}", fields[chosen[j]].strip()

    first_row = [c.strip() for c in cells]
    values = _load_text(
        file, delimiter, header, len(head), chosen, names, dtypes, first_row, max_rows
    )
    if values is None:
        raise _first_bad_line(file, delimiter, header, len(head), chosen, names)
    integer = [values.dtype.kind in "iu"] * len(chosen)
    if np.int64 in dtypes and values.dtype.kind == "f":
        integer = _integer_columns(file, delimiter, header, chosen, first_row, values, max_rows)
    skipped = (
        [_label(names, j) for j, ok in enumerate(numeric) if not ok] if _every(columns) else []
    )
    headers = [names[j] if names else str(j) for j in chosen]
    labels = [_label(names, j) for j in chosen]
    return Table(values, labels, skipped, cell, headers, integer, header)


def _integer_columns(
    file: Path,
    delimiter: str,
    header: bool,
    chosen: list[int],
    first_row: list[str],
    values: np.ndarray,
    max_rows: int | None,
) -> list[bool]:
    """Which chosen columns of a table read as floats hold only integers as written ("3", not
    "3.0"). Only a column whose first cell is written as an integer and whose values are all
    whole is read again, as int64: all such columns at once, then one by one if that fails."""
    candidates = [
        k
        for k, j in enumerate(chosen)
        if INTEGER.fullmatch(first_row[j]) and np.all(values[:, k] == np.floor(values[:, k]))
    ]

    def reads(ks: list[int]) -> bool:
        try:
            _loadtxt(
                str(file),
                dtype=np.int64,
                delimiter=delimiter,
                skiprows=int(header),
                usecols=[chosen[k] for k in ks],
                encoding="utf-8-sig",
                max_rows=max_rows,
            )
        except ValueError:
            return False
        return True

    if candidates and not reads(candidates):
        candidates = [] if len(candidates) == 1 else [k for k in candidates if reads([k])]
    return [k in candidates for k in range(len(chosen))]


def _lines(file: Path):
    """(line number, text without its line ending) of each line, as Python's text mode reads
    them: UTF-8 with an optional byte-order mark, universal newlines (as loadtxt reads too)."""
    try:
        with file.open(encoding="utf-8-sig", newline=None) as handle:
            for number, line in enumerate(handle, 1):
                yield number, line.rstrip("\n")
    except UnicodeDecodeError as error:
        raise _not_utf8(file, error) from None


def _not_utf8(file: Path, error: UnicodeDecodeError) -> UserError:
    return UserError(
        f"{file}: not UTF-8 text (byte {error.object[error.start]:#04x}); save it as UTF-8"
    )


def _load_text(
    file: Path,
    delimiter: str,
    header: bool,
    width: int,
    chosen: list[int],
    names: list[str] | None,
    dtypes: Sequence[type],
    first_row: list[str],
    max_rows: int | None,
) -> np.ndarray | None:
    """The table as the first of `dtypes` that reads every cell, or None if none does. int64 is
    tried only if the first row's chosen cells are integers; if it then fails on an integer
    beyond int64, that cell is refused (read as a float it would pass for another number)."""
    usecols = None if chosen == list(range(width)) else chosen
    for dtype in dtypes:
        integer = dtype is np.int64
        if integer and not all(INTEGER.fullmatch(first_row[j]) for j in chosen):
            continue  # the first row already holds a cell int64 does not read
        try:
            return _loadtxt(
                str(file),  # a name, not a handle: numpy then reads in C, not line by line
                dtype=dtype,
                delimiter=delimiter,
                skiprows=int(header),
                usecols=usecols,
                encoding="utf-8-sig",
                max_rows=max_rows,
            )
        except ValueError:  # a cell of another type, or a bad one: found by _first_bad_line
            if integer:
                _refuse_beyond_int64(file, delimiter, header, width, chosen, names)
            continue
    return None


def _refuse_beyond_int64(
    file: Path, delimiter: str, header: bool, width: int, chosen: list[int], names: list[str] | None
) -> None:
    """After int64 failed: the first cell it cannot read, refused if it is an integer beyond
    int64's range (any other cell, 2.5 say, leaves the table to the next type)."""
    found = _first_bad_cell(file, delimiter, header, width, chosen, np.int64, _fits_int64)
    if found is not None and INTEGER.fullmatch(found[2]):
        number, j, text = found
        raise UserError(
            f"{file}, line {number}, {_label(names, j)}: {text} is beyond int64's range; "
            f"expected {IN_INT64}"
        )


def _fits_int64(text: str) -> bool:
    return bool(INTEGER.fullmatch(text)) and INT64.min <= int(text) <= INT64.max


def _loadtxt(source: str | list[str], **kwargs: Any) -> np.ndarray:
    """np.loadtxt as every read here calls it: no comment character, always 2-D, and quiet
    about an input without rows (the callers check that themselves)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return np.loadtxt(source, comments=None, ndmin=2, **kwargs)


def _ragged(file: Path, line: int, fields: int, expected: int, header: bool) -> UserError:
    reference = "the header has" if header else "line 1 has"
    return UserError(f"{file}, line {line}: {fields} fields, {reference} {expected}")


def _first_bad_line(
    file: Path,
    delimiter: str,
    header: bool,
    width: int,
    chosen: list[int],
    names: list[str] | None,
) -> UserError:
    """The first ragged row or non-numeric chosen cell, after numpy's reader refused the file."""
    found = _first_bad_cell(file, delimiter, header, width, chosen, np.float64, _parses)
    if found is None:
        return UserError(f"{file}: numpy cannot read it as a table of numbers")
    number, j, cell = found
    what = f"{cell!r} is not a number" if cell else "an empty cell"
    if cell.lower() in MISSING or not cell:
        what += " (a missing value: only complete rows of numbers are read)"
    return UserError(f"{file}, line {number}, {_label(names, j)}: {what}; expected {NUMBER}")


def _first_bad_cell(
    file: Path,
    delimiter: str,
    header: bool,
    width: int,
    chosen: list[int],
    dtype: type,
    ok: Callable[[str], bool],
) -> tuple[int, int, str] | None:
    """(file line, column, text) of the first chosen cell `ok` refuses, in file order; a ragged
    row before it raises. numpy reads the file again block by block (as `dtype`), and Python
    scans only the first block numpy refuses."""
    usecols = None if chosen == list(range(width)) else chosen  # as the failed read
    for first_line, block, newline in _blocks(file):
        text = _decode(file, block, first_line)
        lines = [line.rstrip("\r") for line in text.split(newline.decode())]
        skip = int(header and first_line == 1)
        try:
            values = _loadtxt(lines[skip:], dtype=dtype, delimiter=delimiter, usecols=usecols)
            if values.size == 0 or values.shape[1] == len(chosen):
                continue  # this block reads: the problem lies further on
        except ValueError:
            pass
        for number, line in enumerate(lines[skip:], first_line + skip):
            if not line:
                continue
            fields = line.split(delimiter)
            if len(fields) != width:
                raise _ragged(file, number, len(fields), width, header)
            for j in chosen:
                cell = fields[j].strip()
                if not ok(cell):
                    return number, j, cell
    return None


def _row_line(file: Path, delimiter: str, header: bool, row: int) -> tuple[int, list[str]]:
    """The file line of data row `row` (empty lines do not count) and its fields, by counting
    the non-empty lines of each block (vectorised)."""
    for first_line, block, newline in _blocks(file):
        _, starts, ends = _spans(block, newline)
        data = np.flatnonzero(ends > starts)
        if header and first_line == 1:
            data = data[1:]
        if row < len(data):
            i = int(data[row])
            line = _decode(file, block[starts[i] : ends[i]], first_line + i)
            return first_line + i, line.split(delimiter)
        row -= len(data)
    raise IndexError(row)


def _check_field_counts(file: Path, delimiter: str, width: int, header: bool) -> None:
    """Every non-empty line has `width` fields: delimiters counted per line, vectorised."""
    for first_line, block, newline in _blocks(file):
        b, starts, ends = _spans(block, newline)
        seps = np.flatnonzero(b == ord(delimiter))
        counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts)
        bad = np.flatnonzero((counts != width - 1) & (ends > starts))
        if bad.size:
            i = int(bad[0])
            raise _ragged(file, first_line + i, int(counts[i]) + 1, width, header)


def _blocks(file: Path) -> Iterator[tuple[int, bytes, bytes]]:
    """The file as blocks of whole lines (about BLOCK bytes each), each with its first line
    number and the line end: \\n (Unix, and Windows' \\r\\n), or \\r in a file without any \\n
    (old Mac), the same lines as Python's universal newlines and numpy's reader see."""
    first_line, tail, newline = 1, b"", None
    with file.open("rb") as handle:
        while chunk := handle.read(BLOCK):
            if newline is None:
                newline = b"\r" if b"\n" not in chunk and b"\r" in chunk else b"\n"
            data = tail + chunk
            cut = data.rfind(newline) + 1
            if cut:
                yield first_line, data[:cut], newline
                first_line += data.count(newline, 0, cut)
            tail = data[cut:]
    if tail:
        yield first_line, tail, newline


def _spans(block: bytes, newline: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The block as bytes, and each line's start and end (before its line end)."""
    b = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(b == ord(newline))
    if len(b) and b[-1] != ord(newline):
        ends = np.append(ends, len(b))
    starts = np.concatenate(([0], ends + 1))[: len(ends)]
    if newline == b"\n":  # a Windows line ends at \\r\\n
        ends = ends - ((ends > starts) & (b[np.maximum(ends - 1, 0)] == ord("\r")))
    return b, starts, ends


def _decode(file: Path, data: bytes, first_line: int) -> str:
    try:
        return data.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise _not_utf8(file, error) from None


class _NoSuchArray(Exception):
    """Raised inside the archive's `with` and turned into a ConfigError outside it, so that the
    reader's ValueError handler (ConfigError is one) does not swallow it."""


# ---- .npy / .npz -------------------------------------------------------------------------------


def _read_numpy(
    file: Path, key: str | None, columns: Any, dtypes: Sequence[type], max_rows: int | None
) -> Table:
    """A plain array of shape (N,) or (N, D) of integers, booleans or floats; no pickles."""
    source = str(file)
    try:
        array = np.load(file, mmap_mode="r" if max_rows else None, allow_pickle=False)
        if isinstance(array, np.lib.npyio.NpzFile):
            with array as archive:
                if key is None and len(archive.files) == 1:
                    key = archive.files[0]
                if key not in archive.files:
                    valid = f"one of the arrays in {file.name}: {', '.join(archive.files)}"
                    raise _NoSuchArray(key, valid)
                array, source = archive[key], f"{file}, array {key!r}"
    except _NoSuchArray as error:
        raise ConfigError("key", *error.args) from None
    except (ValueError, OSError, EOFError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{file}: not a readable {file.suffix} file ({reason})") from None
    if array.ndim == 1:
        array = array[:, None]
    if max_rows is not None:  # a memory map: only these rows are read
        array = array[:max_rows]
    if array.ndim != 2 or 0 in array.shape:
        raise UserError(
            f"{source}: an array of shape {array.shape}: expected (N,) or (N, D), N, D >= 1"
        )
    if array.dtype.kind not in "biuf":
        raise UserError(
            f"{source}: dtype {array.dtype} is not numeric: expected integers or floats"
        )
    chosen = select_columns(None, [True] * array.shape[1], columns, source)
    integer = array.dtype.kind in "biu" and np.int64 in dtypes  # one dtype: never a mix
    values = array[:, chosen].astype(np.int64 if integer else dtypes[-1])

    def cell(row: int, j: int) -> tuple[str, str]:
        return f"{source}, row {row}, column {chosen[j]}", str(array[row, chosen[j]])

    labels, headers = [f"column {j}" for j in chosen], [str(j) for j in chosen]
    return Table(values, labels, [], cell, headers, [integer] * len(chosen))


# ---- Parquet -------------------------------------------------------------------------------


def _read_parquet(file: Path, columns: Any, dtypes: Sequence[type]) -> Table:
    try:
        import pandas as pd
    except ImportError:
        raise UserError(
            f"{file}: reading Parquet needs pandas and pyarrow (pip install pandas pyarrow); "
            "or save the table as .csv or .npy"
        ) from None
    try:
        frame = pd.read_parquet(file)
    except ImportError as error:  # pandas without a Parquet engine
        raise UserError(f"{file}: {str(error).splitlines()[0]}") from None
    except (OSError, ValueError) as error:
        raise UserError(f"{file}: not a readable Parquet file ({error})") from None
    names = [str(c) for c in frame.columns]
    kinds = [t.kind for t in frame.dtypes]  # numpy and pandas extension dtypes alike
    chosen = select_columns(names, [k in "biuf" for k in kinds], columns, str(file))
    for j in chosen:
        if kinds[j] not in "biuf":
            raise UserError(
                f"{file}, {_label(names, j)}: dtype {frame.dtypes.iloc[j]} is not numeric"
            )
    part = frame.iloc[:, chosen]
    if len(part) == 0:
        raise UserError(f"{file}: no rows")
    typed = [kinds[j] in "biu" and np.int64 in dtypes for j in chosen]  # each column its dtype
    integer = all(typed) and not part.isna().to_numpy().any()
    if integer:
        values = part.to_numpy(dtype=np.int64, copy=True)  # copies are writable, as torch wants
    else:
        values = part.to_numpy(dtype=dtypes[-1], na_value=np.nan, copy=True)

    def cell(row: int, j: int) -> tuple[str, str]:
        return f"{file}, row {row}, {_label(names, chosen[j])}", str(part.iat[row, j])

    skipped = (
        [_label(names, j) for j, k in enumerate(kinds) if k not in "biuf"]
        if _every(columns)
        else []
    )
    headers = [names[j] for j in chosen]
    return Table(values, [_label(names, j) for j in chosen], skipped, cell, headers, typed)
