"""Loading a large CSV for data=table: our reader against pandas.read_csv, side by side.

    python benchmarks/table_load.py [--rows 10000000] [--columns 2] [--keep DIR]

Writes an N-row CSV of float columns (6 decimals, a header) into a temporary folder, then
loads it in a fresh process per method, so each peak resident memory (`ru_maxrss`) is its own:
- `read_table`: src.data.table_files.read_table as data=table calls it (dtype auto: an int64
  attempt that fails on the first cell, then float32), NaN/inf checked;
- `TableDataModule`: the whole data set (read, seeded train/val/test split, standardization);
- `pandas.read_csv`: pandas' C parser alone (float32), skipped when pandas is not importable.
Prints seconds, rows per second, the process's peak memory, and that peak minus the resident
memory just before the load ("growth": what loading costs beyond the imports). Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("read_table", "TableDataModule", "pandas.read_csv")


def write_csv(path: Path, rows: int, columns: int, chunk: int = 100_000) -> None:
    """Seeded normal values, one formatting call per chunk (no Python call per value)."""
    rng = np.random.default_rng(0)
    line = ",".join(["%.6f"] * columns) + "\n"
    with path.open("w") as handle:
        handle.write(",".join(f"x{j}" for j in range(columns)) + "\n")
        for start in range(0, rows, chunk):
            values = rng.normal(size=(min(chunk, rows - start), columns))
            handle.write((line * len(values)) % tuple(values.ravel()))


def measure(method: str, path: Path) -> dict[str, float]:
    """Run in the child process: load once, report seconds and memory (MB)."""
    if method == "pandas.read_csv":
        import pandas as pd

        load = lambda: pd.read_csv(path, dtype=np.float32)  # noqa: E731
    elif method == "read_table":
        from src.data.table_files import read_table  # numpy only: no torch in this process

        auto = (np.int64, np.float32)  # what `dtype: auto` tries
        load = lambda: read_table(path, None, None, auto).values  # noqa: E731
    else:
        from src.data.table import TableDataModule

        load = lambda: TableDataModule(str(path))  # noqa: E731
    baseline = resident_mb()
    start = time.perf_counter()
    loaded = load()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert loaded is not None
    return {"seconds": seconds, "peak_mb": peak, "growth_mb": peak - baseline}


def resident_mb() -> float:
    """The process's resident memory now (Linux), so the growth excludes the imports' peak."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(method: str, path: Path) -> dict[str, float] | None:
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    }
    done = subprocess.run(
        [sys.executable, __file__, "--measure", method, "--path", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"{method:>16}: skipped ({last})")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--columns", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="write the CSV here and keep it")
    parser.add_argument("--measure", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.path)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"table_{args.rows}x{args.columns}.csv"
        start = time.perf_counter()
        write_csv(path, args.rows, args.columns)
        seconds, size = time.perf_counter() - start, path.stat().st_size / 2**20
        result = args.rows * args.columns * 4 / 2**20
        print(
            f"{args.rows:,} rows × {args.columns} columns: {size:.0f} MB of CSV (written in "
            f"{seconds:.1f} s), {result:.0f} MB as float32"
        )
        print(f"{'method':>16}  {'seconds':>8}  {'rows/s':>10}  {'peak MB':>8}  {'growth MB':>9}")
        for method in METHODS:
            result = run(method, path)
            if result:
                rate = args.rows / result["seconds"]
                print(
                    f"{method:>16}  {result['seconds']:8.2f}  {rate:10.3g}  "
                    f"{result['peak_mb']:8.0f}  {result['growth_mb']:9.0f}"
                )


if __name__ == "__main__":
    main()
