"""One small JSON record per sweep job, in the job's own directory.

Jobs may run in other processes or on other machines (joblib, SLURM), so the record on disk is
the only state they share with the sweep; the summary is rebuilt from all records each time.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

RECORD = "sweep_job.json"


def first_line(error: BaseException) -> str:
    """`Type: first line of the message`, enough to tell failures apart in a table."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def write_record(job_dir: str | Path, **fields: Any) -> None:
    """Atomically (over)write the job's record, keeping what an earlier write said."""
    path = Path(job_dir) / RECORD
    record = read_record(path) | fields | {"updated": time.time()}
    tmp = path.with_name(f".{RECORD}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
    tmp.replace(path)


def read_record(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def mark_failed(job_dir: str | Path, error: BaseException) -> None:
    write_record(job_dir, status="failed", error=first_line(error))


def read_metrics(job_dir: str | Path) -> dict[str, float]:
    """The job's `metrics.json` (written by rank 0 at the end of training), if any."""
    metrics = read_record(Path(job_dir) / "metrics.json")
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def sweep_records(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Every job record under the sweep directory, in job order."""
    records = [read_record(p) for p in Path(sweep_dir).rglob(RECORD)]
    records = [r for r in records if r]
    return sorted(records, key=lambda r: (r.get("started", 0), str(r.get("run_dir"))))


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
