"""Rows written to a CSV, TSV or .npy file in chunks, all or nothing.

`src.score` and `src.sample` stream their rows: each chunk goes to a temporary file beside the
target, renamed over it only once the last row is written, so an error or a kill midway leaves
no half-written file and the previous one, if any, intact. Memory stays one chunk, whatever the
number of rows: a .npy's rows go to a raw temporary file, and its header (which holds the row
count) is written in front of them at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np

from src.errors import ConfigError, UserError

ROW_FORMATS = (".csv", ".tsv", ".npy")
DELIMITERS = {".csv": ",", ".tsv": "\t"}
FLOAT_DIGITS = {np.dtype(np.float32): "%.9g", np.dtype(np.float64): "%.17g"}  # round-trip exact


def checked_out(out: object, key: str = "out") -> Path:
    """The target file: a .csv, .tsv or .npy path, not a directory."""
    if not isinstance(out, str) or Path(out).suffix.lower() not in ROW_FORMATS:
        raise ConfigError(key, out, f"a file name ending in {', '.join(ROW_FORMATS)}")
    path = Path(out)
    if path.is_dir():
        raise ConfigError(key, out, "a file name, not a directory")
    return path


@contextmanager
def row_file(
    path: Path, columns: Sequence[str], dtypes: Sequence[np.dtype]
) -> Iterator[Callable[[np.ndarray], None]]:
    """`with row_file(path, names, dtypes) as write: write(chunk)` for chunks [m, C] (or [m] for
    one column). Integer columns are written as integers, floats with the digits that read back
    the same number."""
    with ExitStack() as cleanup:
        temporary = _temporary(path, cleanup)
        suffix = path.suffix.lower()
        try:
            if suffix == ".npy":
                dtype = np.result_type(*dtypes)
                raw = _temporary(path, cleanup)
                rows = 0
                with open(raw, "wb") as data:

                    def write(chunk: np.ndarray) -> None:
                        nonlocal rows
                        chunk.astype(dtype, copy=False).reshape(len(chunk), -1).tofile(data)
                        rows += len(chunk)

                    yield write
                shape = (rows,) if len(columns) == 1 else (rows, len(columns))
                with open(temporary, "wb") as target, open(raw, "rb") as data:
                    header = {"descr": np.lib.format.dtype_to_descr(dtype), "shape": shape}
                    np.lib.format.write_array_header_2_0(target, header | {"fortran_order": False})
                    shutil.copyfileobj(data, target)
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


def _temporary(path: Path, cleanup: ExitStack) -> str:
    """A new file beside `path`, removed on the way out unless it was renamed into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    os.close(handle)
    cleanup.callback(lambda: os.path.exists(name) and os.remove(name))
    return name
