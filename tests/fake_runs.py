"""Run directories written by hand, as Hydra and `train` leave them: all the tables read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def fake_run(
    root: Path,
    name: str,
    model: str,
    data: str,
    seed: int,
    metrics: dict[str, float] | None,
    status: str = "completed",
    overrides: tuple[str, ...] = (),
    choices: dict[str, Any] | None = None,
    record: dict[str, Any] | None = None,
) -> Path:
    """`<root>/<name>/` with `.hydra/` (config, hydra with runtime.choices, overrides),
    `metrics.json` unless `metrics` is None, and a sweep job record if given."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "model": {"_target_": model}, "data": {"_target_": data}}
    choices = {"model": model, "data": data, "experiment": None, "optimizer": "adam"} | (
        choices or {}
    )
    hydra = {"hydra": {"job": {"num": 0, "config_name": "train"}, "runtime": {"choices": choices}}}
    typed = [f"model={model}", f"data={data}", f"seed={seed}", *overrides, "paths.log_dir=out"]
    for file, content in [("config", config), ("hydra", hydra), ("overrides", typed)]:
        (run / ".hydra" / f"{file}.yaml").write_text(yaml.safe_dump(content))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps({"status": status} | metrics))
    if record is not None:
        (run / "sweep_job.json").write_text(json.dumps(record))
    return run


def scored(kl_gap: float | None, nll: float, val_nll: float, seed: int) -> dict[str, float]:
    """Final metrics of a run: with a truth (kl_gap given) or without one."""
    metrics = {"test/nll": nll, "val/nll": val_nll, "fit_seconds": 1.0 + seed}
    if kl_gap is not None:
        metrics |= {"test/kl_gap": kl_gap, "test/oracle_nll": nll - kl_gap}
    return metrics
