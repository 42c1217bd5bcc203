"""One small JSON record per sweep job, in the job's own directory: whether it is running or
failed (and why), its job and Optuna trial numbers, when it started.

Jobs may run in other processes or on other machines (joblib, SLURM), so what is on disk is
the only state they share with the sweep: the tables are rebuilt from the run directories and
these records each time (src/sweeps/runs.py).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from src.errors import first_line

RECORD = "sweep_job.json"


def write_record(job_dir: str | Path, **fields: Any) -> None:
    """Atomically (over)write the job's record, keeping what an earlier write said."""
    path = Path(job_dir) / RECORD
    record = read_record(path) | fields | {"updated": time.time()}
    atomic_write(path, json.dumps(record, indent=2, default=str) + "\n")


def atomic_write(path: Path, text: str) -> None:
    """A reader sees the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def mark_failed(job_dir: str | Path, error: BaseException) -> None:
    write_record(job_dir, status="failed", error=first_line(error))


def sweep_records(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job record under the sweep directory, in job order."""
    records = [read_record(p) for p in Path(sweep_dir).rglob(RECORD)]
    records = [r for r in records if r]
    return sorted(records, key=lambda r: (r.get("started", 0), str(r.get("run_dir"))))


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
