"""Run directories read back from disk: what each run was (its choices, overrides and seed) and
how it ended (status and final metrics).

Both the sweep's tables and `python -m src.compare` start from these records, so a sweep's
tables and a comparison of the same directory agree. A run directory is one holding
`.hydra/config.yaml`; a run's own sub-folders (`resumed/<time>/` among them) are not runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from src.sweeps.records import RECORD, read_record

CHOICES = ("model", "data", "fit", "experiment")  # the config groups that name what a run is
DEFAULT_FIT = "mle"  # runs from before the `fit` group was fitted by maximum likelihood
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # C, where PyYAML was built with it


@dataclass
class Run:
    run_dir: Path
    settings: dict[str, str]  # model, data, fit, [experiment], then each override, seed included
    overrides: list[str]  # as typed on the command line
    seed: int | None
    status: str  # ok | failed | running
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    job: int | None = None
    trial: int | None = None  # the Optuna trial number, in Optuna studies
    started: float = 0.0

    @property
    def identity(self) -> dict[str, str]:
        """What the run is, seed left out: runs that differ only by seed are one configuration.
        Where it writes (`paths.`) and whether a sweep stops at a failure are not what it is."""
        return {
            k: v
            for k, v in self.settings.items()
            if k not in ("seed", "fail_fast") and not k.startswith("paths.")
        }


def find_runs(dirs: Iterable[str | Path]) -> list[Run]:
    """Every run under the given directories (each found once), in start order."""
    found: dict[Path, Run] = {}
    for top in dirs:
        for path in _run_dirs(Path(top)):
            run = load_run(path)
            if run is not None:
                found.setdefault(path.resolve(), run)
    return sorted(found.values(), key=lambda r: (r.started, str(r.run_dir)))


def _run_dirs(top: Path) -> Iterable[Path]:
    for root, dirs, _ in os.walk(top):
        if os.path.isfile(os.path.join(root, ".hydra", "config.yaml")):
            dirs.clear()  # checkpoints/, tensorboard/, resumed/: parts of this run
            yield Path(root)
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))


def load_run(run_dir: Path) -> Run | None:
    """The run as read back, or None for a directory that is no training run (an `src.eval`)."""
    hydra = _yaml(run_dir / ".hydra" / "hydra.yaml").get("hydra", {})
    job = hydra.get("job", {})
    if job.get("config_name") == "eval":
        return None
    config = _yaml(run_dir / ".hydra" / "config.yaml")
    overrides = _yaml(run_dir / ".hydra" / "overrides.yaml") or []
    choices = hydra.get("runtime", {}).get("choices", {})
    chosen = {"fit": DEFAULT_FIT} | {g: str(v) for g, v in choices.items() if g in CHOICES and v}
    settings = {g: chosen[g] for g in CHOICES if g in chosen}  # in the order of CHOICES
    settings |= dict(parse_override(o) for o in overrides)
    seed = config.get("seed")
    record = read_record(run_dir / RECORD)  # sweep jobs only: running, failure, trial number
    status, error, metrics = _outcome(run_dir, record)
    started = record.get("started")
    if started is None:  # not a sweep job: Hydra writes the config as the run starts
        started = (run_dir / ".hydra" / "config.yaml").stat().st_mtime
    return Run(
        run_dir=run_dir,
        settings=settings,
        overrides=[str(o) for o in overrides],
        seed=seed if isinstance(seed, int) else None,
        status=status,
        metrics=metrics,
        error=error,
        job=record.get("job", job.get("num")),
        trial=record.get("trial"),
        started=started,
    )


def parse_override(override: str) -> tuple[str, str]:
    """`key=value` → (key, value); `+key=value` adds a key; `~key` deletes one."""
    key, _, value = override.partition("=")
    if key.startswith("~"):
        return key[1:], "(deleted)"
    return key.lstrip("+"), value


def _outcome(run_dir: Path, record: dict[str, Any]) -> tuple[str, str, dict[str, float]]:
    """ok only with a `completed` metrics.json; a job still running says so in its record."""
    path = run_dir / "metrics.json"
    saved = read_record(path)
    metrics = {k: v for k, v in saved.items() if isinstance(v, float)}  # ints are identity
    if record.get("status") == "failed":
        return "failed", record.get("error") or "failed", metrics
    if saved.get("status") == "completed":
        return "ok", "", metrics
    if not path.is_file():
        if record.get("status") == "running":
            return "running", "", metrics
        return "failed", record.get("error") or "no metrics.json", metrics
    return "failed", record.get("error") or f"status {saved.get('status')!r}", metrics


def _yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_LOADER) or {}
    except (OSError, yaml.YAMLError):
        return {}
