"""A finished or interrupted run directory: its saved config, and what a command overrides.

`src.eval` re-tests a run and `resume=<run dir>` continues one; both rebuild the run from
`<run dir>/.hydra/config.yaml` and apply only the settings given on their own command line.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.errors import ConfigError


def run_dir_of(ckpt_path: str | Path, key: str = "ckpt_path") -> Path:
    """The run directory holding `<run>/checkpoints/<name>.ckpt`."""
    if not isinstance(ckpt_path, (str, Path)) or not str(ckpt_path):
        raise ConfigError(key, ckpt_path, "a checkpoint, e.g. <run dir>/checkpoints/last.ckpt")
    ckpt = Path(ckpt_path)
    if not ckpt.is_file():
        raise ConfigError(
            key, str(ckpt), "an existing checkpoint, e.g. <run dir>/checkpoints/last.ckpt"
        )
    run_dir = ckpt.resolve().parent.parent
    if not (run_dir / ".hydra" / "config.yaml").is_file():
        raise ConfigError(
            key, str(ckpt), "a checkpoint inside a run directory (no .hydra/config.yaml)"
        )
    return run_dir


def saved_config(run_dir: Path, cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The run's saved config, with each setting this command overrides taken from `cfg`."""
    run_cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    for override in overrides:  # Hydra already parsed each value into `cfg`: copy it over
        key = override.split("=", 1)[0].lstrip("+~")
        OmegaConf.update(run_cfg, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    return run_cfg


def command_overrides(cfg: DictConfig) -> list[str]:
    """The overrides typed on this command line (from Hydra, or from a config composed with its
    hydra node, as the tests compose it)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return list(HydraConfig.get().overrides.task)
    return list(OmegaConf.select(cfg, "hydra.overrides.task") or [])


def hydra_run_dir(resume: str | None, fresh: str) -> str:
    """Hydra's run dir: a fresh one, or inside the run being resumed, so nothing of it is
    overwritten (this command's own config and log go to `<run>/resumed/<timestamp>`). Hydra
    resolves the run dir more than once per command; the timestamp is this command's start, so
    every resolution names the same directory."""
    if not resume:
        return fresh
    return str(Path(resume) / "resumed" / _COMMAND_STARTED)


_COMMAND_STARTED = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
OmegaConf.register_new_resolver("hydra_run_dir", hydra_run_dir, replace=True)


def continued_config(cfg: DictConfig) -> DictConfig:
    """For `resume=<run dir>` (or a `ckpt_path` inside a run dir): the run's own config with
    this command's overrides, continuing from the checkpoint and writing into the same run
    dir (its TensorBoard run grows, its metrics.json is replaced at the end)."""
    if cfg.get("resume"):
        run_dir = Path(cfg.resume)
        ckpt = run_dir / "checkpoints" / "last.ckpt"
        if not ckpt.is_file():
            raise ConfigError(
                "resume", str(run_dir), "a run directory holding checkpoints/last.ckpt"
            )
        run_dir = run_dir_of(ckpt, "resume")
    elif cfg.get("ckpt_path"):
        ckpt = Path(cfg.ckpt_path)
        if not ckpt.is_file():
            raise ConfigError("ckpt_path", str(ckpt), "an existing checkpoint file")
        if not (ckpt.resolve().parent.parent / ".hydra" / "config.yaml").is_file():
            return cfg  # a checkpoint from elsewhere: start a new run from its state
        run_dir = run_dir_of(ckpt)
    else:
        return cfg
    run_cfg = saved_config(run_dir, cfg, command_overrides(cfg))
    run_cfg.ckpt_path, run_cfg.resume = str(ckpt), None
    run_cfg.paths.output_dir = str(run_dir)
    return run_cfg


def trained_model(run_dir: Path):
    """The run's density model with its final weights: rebuilt from its saved config, loaded
    from `last.ckpt` (plain tensors only, `weights_only`). A fit that wraps its model (EM, CAVI)
    gives the model it wraps; the checkpoint's `model.` keys are that model's weights either way.
    """
    import torch

    from src.utils.instantiate import build

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    built = build(cfg.model, "model")
    model = built.model if isinstance(getattr(built, "model", None), torch.nn.Module) else built
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    prefix = "model."
    weights = {k[len(prefix) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    model.load_state_dict(weights)
    return model.eval()


def run_identity(cfg: DictConfig, trainer=None) -> dict:
    """What metrics.json says it measured: the choice of each config group, the seed, the
    settings typed on the command line (a sweep's swept keys among them), the git commit and
    the checkpoint whose weights the test metrics come from (the state after the last epoch)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choices, overrides = HydraConfig.get().runtime.choices, HydraConfig.get().overrides.task
    else:
        choices = OmegaConf.select(cfg, "hydra.runtime.choices") or {}
        overrides = OmegaConf.select(cfg, "hydra.overrides.task") or []
    names = {g: choices.get(g) for g in ("model", "data", "fit", "study", "experiment")}
    identity = {k: v for k, v in names.items() if v is not None} | {
        "seed": cfg.seed,
        "overrides": dict((*o.split("=", 1), None)[:2] for o in overrides),
    }
    if trainer is None:  # before the run: its choices only
        return identity
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    epochs, step = trainer.current_epoch, trainer.global_step
    if last.is_file():  # the counts of the state tested; under ddp_spawn this process's stay 0
        import torch

        saved = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        epochs, step = saved["epoch"] + 1, saved["global_step"]
    return identity | {
        "git_commit": git_commit(),
        "checkpoint": str(last) if last.is_file() else None,
        "epochs": epochs,
        "global_step": step,
    }


def git_commit() -> str:
    """The project's commit (with "+dirty" for uncommitted changes), or "unknown"."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit + ("+dirty" if dirty else "")) if commit else "unknown"


SQLITE = "sqlite:///"


def trials_so_far(storage: object, study_name: object) -> int:
    """How many trials an Optuna study already holds in its SQLite storage (0 for a new study,
    or a storage elsewhere than SQLite)."""
    import sqlite3
    from contextlib import closing

    if not (isinstance(storage, str) and storage.startswith(SQLITE)):
        return 0
    uri = Path(storage[len(SQLITE) :]).resolve().as_uri() + "?mode=ro"
    query = "SELECT COUNT(*) FROM trials JOIN studies USING (study_id) WHERE study_name = ?"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as db:
            return db.execute(query, (str(study_name),)).fetchone()[0]
    except sqlite3.Error:  # no database or no study yet
        return 0


def sampler_seed(seed: int, storage: object, study_name: object) -> int:
    """A resumed study's sampler continues instead of restarting its sequence: seeded with the
    run's seed plus the trials the study already has. (A sampler seeded alike on every command
    proposed trial 0's parameters again, spending a whole trial on a duplicate.)"""
    return int(seed) + trials_so_far(storage, study_name)


OmegaConf.register_new_resolver("sampler_seed", sampler_seed, replace=True)


def run_name(cfg: DictConfig) -> str:
    """`<model>-<data>-s<seed>` (a study's name for its model), plus, in a sweep, the job's
    other command-line settings of the model, data, fit and optimizer (not where its files go or
    how the trainer runs): how TensorBoard tells runs apart (`0/tensorboard` did not)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    identity = run_identity(cfg)
    name = f"{identity.get('model') or identity.get('study')}-{identity.get('data')}-s{cfg.seed}"
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        named = {"model", "data", "seed", "study"}
        infrastructure = ("paths.", "hydra.", "callbacks", "logger", "trainer.", "debug")
        swept = [
            f"{k}={v}"
            for k, v in identity["overrides"].items()
            if k not in named and not k.lstrip("+~").startswith(infrastructure)
        ]
        name = "-".join([name, *swept])
    return name.replace("/", "_").replace(" ", "")
