"""The sweep's table: one row per job (overrides, status, final metrics, run directory), written
as `summary.csv` and `summary.md` in the sweep directory; the best row by the optimized metric
is marked. Rebuilt from the job records under a file lock, so concurrent jobs never lose rows."""

from __future__ import annotations

import csv
import fcntl
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from src.sweeps.records import finite, sweep_records

FIXED = ("best", "job", "status", "overrides")


def best_index(rows: list[dict[str, Any]], metric: str, maximize: bool = False) -> int | None:
    """The finished row with the best finite `metric` (lowest unless maximize)."""
    scored = [
        (row["metrics"][metric], i)
        for i, row in enumerate(rows)
        if row.get("status") == "ok" and finite(row.get("metrics", {}).get(metric))
    ]
    if not scored:
        return None
    return (max if maximize else min)(scored)[1]


def table(records: list[dict[str, Any]], metric: str, maximize: bool) -> list[dict[str, Any]]:
    """Flat rows: fixed columns, the optimized metric, the other metrics, error, run_dir."""
    best = best_index(records, metric, maximize)
    names = sorted({k for r in records for k in r.get("metrics", {})} - {metric})
    rows = []
    for i, record in enumerate(records):
        metrics = record.get("metrics", {})
        row = {
            "best": "*" if i == best else "",
            "job": record.get("job", ""),
            "status": record.get("status", "?"),
            "overrides": " ".join(record.get("overrides", [])),
            metric: metrics.get(metric, ""),
        }
        row |= {name: metrics.get(name, "") for name in names}
        row |= {"error": record.get("error", ""), "run_dir": record.get("run_dir", "")}
        rows.append(row)
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_markdown(rows: list[dict[str, Any]], metric: str, maximize: bool) -> str:
    goal = "highest" if maximize else "lowest"
    lines = [f"# Sweep summary\n\n`*` marks the best finished job ({goal} `{metric}`).\n"]
    if rows:
        header = list(rows[0])
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in rows:
            cells = (_cell(row[key]) for key in header)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def write_summary(sweep_dir: str | Path, metric: str, maximize: bool = False) -> list[dict]:
    """Rewrite summary.csv and summary.md from the records; returns the rows."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir / ".summary.lock"):
        rows = table(sweep_records(sweep_dir), metric, maximize)
        _atomic_write(sweep_dir / "summary.csv", to_csv(rows))
        _atomic_write(sweep_dir / "summary.md", to_markdown(rows, metric, maximize))
    return rows


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
