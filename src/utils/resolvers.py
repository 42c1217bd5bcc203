"""The config's own interpolations (`${hydra_run_dir:...}`, `${sampler_seed:...}`), registered by
the entry points before Hydra composes a config (`register_resolvers`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from src.utils.optuna_storage import trials_so_far

COMMAND_STARTED = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")


def hydra_run_dir(resume: str | None, fresh: str) -> str:
    """Hydra's run dir: a fresh one, or inside the run being resumed, so nothing of it is
    overwritten (this command's own config and log go to `<run>/resumed/<timestamp>`). Hydra
    resolves the run dir more than once per command; the timestamp is this command's start, so
    every resolution names the same directory."""
    if not resume:
        return fresh
    return str(Path(resume) / "resumed" / COMMAND_STARTED)


def sampler_seed(seed: int, storage: object, study_name: object) -> int:
    """A resumed study's sampler continues instead of restarting its sequence: seeded with the
    run's seed plus the trials the study already has. (A sampler seeded alike on every command
    proposed trial 0's parameters again, spending a whole trial on a duplicate.)"""
    return int(seed) + trials_so_far(storage, study_name)


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("hydra_run_dir", hydra_run_dir, replace=True)
    OmegaConf.register_new_resolver("sampler_seed", sampler_seed, replace=True)
