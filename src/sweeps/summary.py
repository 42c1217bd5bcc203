"""The sweep's tables, rebuilt from its run directories under a file lock, so concurrent jobs
never lose rows:

- `summary.csv` / `summary.md`: one row per job: its status, one column per setting (model, data,
  fit, each override), its final metrics, the error of a failed job and the run directory;
- `comparison.csv` / `comparison.md`: the same runs aggregated over seeds
  (src/sweeps/aggregate.py, the tables `python -m src.compare <sweep dir>` writes).

`*` in the `best` column marks, on each data set, the finished job with the lowest test KL gap
(the test NLL where the data have no truth): both compare across jobs, while val/nll does not,
as each seed draws its own validation split. An Optuna sweeper's `optimized_metric` is another
matter, shown as its own column.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from src.sweeps.aggregate import (
    SCORES,
    Comparison,
    compare,
    markdown_table,
    to_csv,
    write_comparison,
)
from src.sweeps.records import atomic_write, finite
from src.sweeps.runs import CHOICES, Run, find_runs

CSV, MARKDOWN = "summary.csv", "summary.md"

Optimized = tuple[str, bool]  # an Optuna sweeper's metric and whether it is maximised


def best_runs(runs: list[Run], comparison: Comparison) -> set[int]:
    """Per data set, the index of the finished run with the lowest score (KL gap or NLL)."""
    data_of = {id(run): config.data for config in comparison.configs for run in config.runs}
    best: dict[str, tuple[float, int]] = {}
    for i, run in enumerate(runs):
        data = data_of[id(run)]
        metric = comparison.score(data)
        value = run.metrics.get(metric) if metric else None
        if run.status != "ok" or not finite(value):
            continue
        if data not in best or value < best[data][0]:
            best[data] = (value, i)
    return {i for _, i in best.values()}


def setting_keys(runs: list[Run]) -> list[str]:
    keys = list(dict.fromkeys(k for run in runs for k in run.settings))
    return [k for k in CHOICES if k in keys] + [k for k in keys if k not in CHOICES]


def table(runs: list[Run], optimized: Optimized | None = None) -> list[dict[str, Any]]:
    """Flat rows: best, job, [trial], status, the settings, the metrics (an Optuna sweep's
    optimized metric first), error, run_dir and the overrides as typed."""
    best = best_runs(runs, compare(runs))
    keys = setting_keys(runs)
    names = sorted({m for run in runs for m in run.metrics})
    if optimized and optimized[0] in names:
        names.insert(0, names.pop(names.index(optimized[0])))
    trials = any(run.trial is not None for run in runs)
    rows = []
    for i, run in enumerate(runs):
        row: dict[str, Any] = {"best": "*" if i in best else "", "job": _text(run.job)}
        if trials:
            row["trial"] = _text(run.trial)
        row["status"] = run.status
        row |= {k: run.settings.get(k, "") for k in keys}
        row |= {m: run.metrics.get(m, "") for m in names}
        row |= {"error": run.error, "run_dir": str(run.run_dir)}
        row["overrides"] = " ".join(run.overrides)
        rows.append(row)
    return rows


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def to_markdown(
    rows: list[dict[str, Any]], settings: list[str], optimized: Optimized | None
) -> str:
    """The table without the settings every job shares (listed above it) and the overrides."""
    score, fallback = SCORES
    lines = [
        "# Sweep summary",
        "",
        f"`*` marks, on each data set, the finished job with the lowest `{score}` (`{fallback}` "
        "where the data have no truth): both compare across seeds, while `val/nll` does not "
        "(each seed draws its own validation split).",
    ]
    if optimized:
        goal = "highest" if optimized[1] else "lowest"
        lines[-1] += f" Optuna optimises `{optimized[0]}` ({goal}), its own column."
    shared = {k: rows[0][k] for k in settings if len({row[k] for row in rows}) == 1} if rows else {}
    if shared:
        lines += ["", "Same in every job: " + " ".join(f"{k}={v}" for k, v in shared.items())]
    lines += ["", "Over seeds: comparison.md.", ""]
    if rows:
        header = [k for k in rows[0] if k not in shared and k != "overrides"]
        lines += markdown_table(header, ([row[k] for k in header] for row in rows))
    return "\n".join(lines) + "\n"


def write_summary(sweep_dir: str | Path, optimized: Optimized | None = None) -> list[dict]:
    """Rewrite summary.csv/.md and comparison.csv/.md from the run directories; returns the
    summary's rows."""
    sweep_dir = Path(sweep_dir)
    with _locked(sweep_dir / ".summary.lock"):
        runs = find_runs([sweep_dir])
        rows = table(runs, optimized)
        atomic_write(sweep_dir / CSV, to_csv(rows))
        atomic_write(sweep_dir / MARKDOWN, to_markdown(rows, setting_keys(runs), optimized))
        write_comparison(runs, sweep_dir, [sweep_dir])
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
