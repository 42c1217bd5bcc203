"""Rows written to a CSV, TSV or .npy file in chunks, all or nothing.

`src.score` and `src.sample` stream their rows: each chunk goes to a temporary file beside the
target, renamed over it only once the last row is written, so an error or a kill midway leaves
no half-written file and the previous one, if any, intact. Memory stays one chunk.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from src.errors import ConfigError, UserError

ROW_FORMATS = (".csv", ".tsv", ".npy")
DELIMITERS = {".csv": ",", ".tsv": "\t"}
FLOAT_DIGITS = {np.dtype(np.float32): "%.9g", np.dtype(np.float64): "%.17g"}  # round-trip exact


def checked_out(out: object, key: str = "out") -> Path:
    """The target file: a .csv, .tsv or .npy path whose directory exists or can be made."""
    if not isinstance(out, str) or Path(out).suffix.lower() not in ROW_FORMATS:
        raise ConfigError(key, out, f"a file name ending in {', '.join(ROW_FORMATS)}")
    path = Path(out)
    if path.is_dir():
        raise ConfigError(key, out, "a file name, not a directory")
    return path


@contextmanager
def row_file(
    path: Path, columns: Sequence[str], dtypes: Sequence[np.dtype], n_rows: int
) -> Iterator[Callable[[np.ndarray], None]]:
    """`with row_file(path, names, dtypes, n) as write: write(chunk)` for chunks [m, C] (or [m]
    for one column) of `n` rows in all. Integer columns are written as integers, floats with
    the digits that read back the same number."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".part"
        )
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(handle)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            dtype = np.result_type(*dtypes)
            shape = (n_rows,) if len(columns) == 1 else (n_rows, len(columns))
            array = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
            written = 0

            def write(chunk: np.ndarray) -> None:
                nonlocal written
                array[written : written + len(chunk)] = chunk.reshape(len(chunk), *shape[1:])
                written += len(chunk)

            yield write
            array.flush()
            del array
        else:
            formats = [FLOAT_DIGITS.get(np.dtype(d), "%d") for d in dtypes]
            delimiter = DELIMITERS[suffix]
            with open(temporary, "w", encoding="utf-8", newline="\n") as text:
                text.write(delimiter.join(columns) + "\n")

                def write(chunk: np.ndarray) -> None:
                    rows = chunk.reshape(len(chunk), -1)
                    np.savetxt(text, rows, fmt=formats, delimiter=delimiter)

                yield write
        os.replace(temporary, path)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
