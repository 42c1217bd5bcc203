"""What Hydra says about the running command, read in one place.

While Hydra runs a command it is `HydraConfig`; a config composed with its hydra node (as the
tests compose it, `return_hydra_config=True`) carries the same facts under `cfg.hydra`. Every
other module asks here: the option chosen for a config group, the overrides typed on the command
line, whether this is a sweep (`-m`) and how many jobs the launcher runs at once.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

GROUPS = ("model", "data", "fit", "study", "experiment")


def hydra_node(cfg: DictConfig | None = None) -> DictConfig | None:
    """Hydra's own config of this command, or None for a config composed without it."""
    if HydraConfig.initialized():
        return HydraConfig.get()
    return OmegaConf.select(cfg, "hydra") if cfg is not None else None


def choices(cfg: DictConfig | None = None) -> dict[str, str]:
    """The option chosen for each named config group (its file name), groups left null out."""
    node = hydra_node(cfg)
    return group_choices(OmegaConf.select(node, "runtime.choices") if node is not None else None)


def group_choices(runtime_choices: Any) -> dict[str, str]:
    """The named groups of a `hydra.runtime.choices` mapping (this command's or a saved one)."""
    found = runtime_choices or {}
    return {group: str(found[group]) for group in GROUPS if found.get(group) is not None}


def command_overrides(cfg: DictConfig | None = None) -> list[str]:
    """The overrides typed on this command line, e.g. ["model=gmm", "trainer.max_epochs=5"]."""
    node = hydra_node(cfg)
    return list(OmegaConf.select(node, "overrides.task") or []) if node is not None else []


def in_multirun(cfg: DictConfig | None = None) -> bool:
    node = hydra_node(cfg)
    return node is not None and str(node.get("mode")).endswith("MULTIRUN")


def launcher_jobs(cfg: DictConfig | None = None) -> Any:
    """`hydra.launcher.n_jobs` of the parallel sweep this job runs in (joblib), else None."""
    if not in_multirun(cfg):
        return None
    return OmegaConf.select(hydra_node(cfg), "launcher.n_jobs", default=None)


def override_key(override: str) -> str:
    """The setting an override sets: `+data.path=x` -> `data.path`, `~logger` -> `logger`."""
    return override.split("=", 1)[0].lstrip("+~")


def choice(cfg: DictConfig, group: str) -> str:
    """The option chosen for a config group (its file name), as the user typed it; for a config
    without Hydra's record (a run's saved config), the class it names."""
    chosen = choices(cfg)
    if chosen:
        return chosen.get(group, "None")
    node = cfg.get(group)
    return str(node.get("_target_", "?")).rsplit(".", 1)[-1] if node else "None"
