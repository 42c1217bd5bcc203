"""The run's final metrics: `metrics.json` in the run directory and a short table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from src.errors import UserError


def as_floats(metrics: Mapping[str, object]) -> dict[str, float]:
    return {key: float(value) for key, value in sorted(metrics.items())}


def write_metrics(run_dir: str | Path, metrics: Mapping[str, float]) -> Path:
    return write_json(Path(run_dir) / "metrics.json", metrics)


def write_json(path: Path, record: Mapping[str, Any]) -> Path:
    """`record` as indented JSON, written atomically: a reader never sees half a file."""
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(dict(record), indent=2) + "\n")
        tmp.replace(path)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def print_metrics(metrics: Mapping[str, float], run_dir: str | Path) -> None:
    table = Table(title="final metrics", show_header=False)
    for key, value in metrics.items():
        table.add_row(key, f"{value:.6g}")
    Console().print(table)
    print(f"run directory: {run_dir}", flush=True)  # one unwrapped line, for scripts to read
