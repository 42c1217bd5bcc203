"""Learning curves read back from a comparison's runs: each completed run's `curve.csv`
(src/callbacks/learning_curve.py), the validation KL gap against its training seconds, grouped
by data set and model for `python -m src.compare --curves`.

Asking for curves is asking for every completed run's curve: a run without one (trained before
curves were written, or on data without a truth, where there is no KL gap) is refused by name
rather than left out of the figure, which would then compare fewer seeds than it says.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from src.errors import UserError
from src.sweeps.aggregate import Comparison

CURVE = "curve.csv"  # in the run directory, written by the callback
METRIC = "val/kl_gap"
Line = tuple[str, list[float], list[float]]  # (model, seconds, values) of one run


def read_curve(run_dir: Path, metric: str = METRIC) -> tuple[list[float], list[float]]:
    """(seconds, metric) of the run's validations with a finite value; refuses a missing file or
    column, or a curve without one finite value."""
    path = run_dir / CURVE
    try:
        with path.open(newline="") as file:
            rows = list(csv.DictReader(file))
    except OSError:
        raise UserError(f"{run_dir}: no learning curve ({CURVE}) to draw") from None
    if not rows or metric not in rows[0]:
        raise UserError(f"{path}: no {metric} column (data without a truth has no KL gap)")
    points = [(float(r["seconds"]), _number(r[metric])) for r in rows]
    points = [(s, v) for s, v in points if math.isfinite(v)]
    if not points:
        raise UserError(f"{path}: no finite {metric} value")
    seconds, values = map(list, zip(*points))
    return seconds, values


def learning_curves(comparison: Comparison) -> dict[str, list[Line]]:
    """Per data set, the curve of every completed run (each seed) of every model, in the
    table's order."""
    panels: dict[str, list[Line]] = {}
    for config in comparison.configs:
        for _, run in sorted(config.by_seed.items(), key=lambda i: (i[0] is None, i[0])):
            seconds, values = read_curve(run.run_dir)
            panels.setdefault(config.data, []).append((config.model, seconds, values))
    if not panels:
        raise UserError("no completed run: no learning curve to draw")
    return panels


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan  # a blank: the metric was not logged at that validation
