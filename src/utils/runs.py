"""A run directory and its record: what it is, what it measured, how a later command continues it.

A run is its resolved config (`<run>/.hydra/config.yaml`) plus its checkpoints; every
checkpoint also carries the run's identity (the choice of each config group, the seed, the
overrides typed when it started), so a resume, `src.eval` and `src.compare` describe the run as
it was started, not as the later command was typed.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.errors import ConfigError, UserError
from src.utils.hydra_context import (
    choices,
    command_overrides,
    group_choices,
    in_multirun,
    override_key,
)

CONFIG = Path(".hydra") / "config.yaml"
LAST = Path("checkpoints") / "last.ckpt"
IDENTITY = "densitylab_identity"  # the checkpoint key holding RunIdentity.as_dict()
METRICS = "densitylab_metrics"  # the checkpoint key holding the metrics logged so far
RANDOM_STATE = "densitylab_torch_rng"  # torch's global generator, where the checkpoint left it

# What a resume may change: the budget and where it runs. Anything else (model, data, fit,
# optimizer, seed, callbacks, ...) would make the continued run something it was not.
BUDGET = ("trainer.max_epochs", "trainer.max_steps", "trainer.max_time")
WHERE_IT_RUNS = (
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.precision",
    "trainer.strategy",
    "threads",
)
RESUMABLE = (*BUDGET, *WHERE_IT_RUNS)
# Settings of the command itself, never of the run: where this command writes, Hydra's own.
COMMAND_ONLY = ("resume", "ckpt_path", "paths", "hydra")
RESUME_WHY = "it would change what the run fits (start a new run for other settings)"


def checked_seed(seed: Any) -> int:
    """The run's seed, which seeds torch, numpy and every data split: a 32-bit unsigned int."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError("seed", seed, "an integer in [0, 2³²)")
    return seed


@dataclass(frozen=True)
class RunIdentity:
    """What a run is: the option of each config group, its seed and its command-line settings."""

    choices: dict[str, str]
    seed: int
    overrides: dict[str, str | None] = field(default_factory=dict)
    multirun: bool = False

    @classmethod
    def of_command(cls, cfg: DictConfig) -> RunIdentity:
        """The identity of a new run, as this command line composed it."""
        return cls(
            choices(cfg),
            checked_seed(cfg.get("seed")),
            as_settings(command_overrides(cfg)),
            in_multirun(cfg),
        )

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> RunIdentity:
        return cls(dict(saved["choices"]), int(saved["seed"]), dict(saved["overrides"]),
                   bool(saved.get("multirun", False)))  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {"choices": self.choices, "seed": self.seed, "overrides": self.overrides,
                "multirun": self.multirun}  # fmt: skip

    def with_overrides(self, overrides: dict[str, Any]) -> RunIdentity:
        """The same run after a resume changed its budget or devices (recorded as typed)."""
        typed = {k: None if v is None else str(v) for k, v in overrides.items()}
        return RunIdentity(self.choices, self.seed, self.overrides | typed, self.multirun)

    def labels(self) -> dict[str, Any]:
        """What metrics.json says the run is."""
        return self.choices | {"seed": self.seed, "overrides": self.overrides}

    def describe(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.choices.items())

    def name(self) -> str:
        """`<model>-<data>-s<seed>` (a study's name for its model), plus, in a sweep, the job's
        other settings of the model, data, fit and optimizer (not where its files go or how the
        trainer runs): how TensorBoard tells runs apart."""
        what = self.choices.get("model") or self.choices.get("study")
        name = f"{what}-{self.choices.get('data')}-s{self.seed}"
        if self.multirun:
            named = {"model", "data", "seed", "study"}
            infrastructure = ("paths.", "hydra.", "callbacks", "logger", "trainer.", "debug")
            swept = [
                f"{k}={v}"
                for k, v in self.overrides.items()
                if k not in named and not k.lstrip("+~").startswith(infrastructure)
            ]
            name = "-".join([name, *swept])
        return name.replace("/", "_").replace(" ", "")


def as_settings(overrides: list[str] | None) -> dict[str, str | None]:
    """["model=gmm", "~logger"] -> {"model": "gmm", "~logger": None}"""
    return dict((*o.split("=", 1), None)[:2] for o in overrides or [])


def run_dir_of(path: str | Path, key: str = "ckpt_path") -> tuple[Path, Path]:
    """(run directory, checkpoint) of a checkpoint inside a run or of a run directory (its
    `last.ckpt`); anything else is refused, naming `key`, before anything is written."""
    if not isinstance(path, (str, Path)) or not str(path):
        raise ConfigError(key, path, "a run directory or a checkpoint inside one")
    given = Path(path)
    ckpt = given / LAST if given.is_dir() else given
    if not ckpt.is_file():
        valid = "a run directory holding checkpoints/last.ckpt, or a checkpoint inside one"
        raise ConfigError(key, str(given), valid).at_top_level()
    run_dir = ckpt.resolve().parent.parent
    if not (run_dir / CONFIG).is_file():
        valid = "a checkpoint inside a run directory (none of .hydra/config.yaml found)"
        raise ConfigError(key, str(given), valid).at_top_level()
    return run_dir, ckpt


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """A Lightning checkpoint's contents, loaded without running code from it (`weights_only`);
    anything else (a text, empty, truncated or foreign file) is refused in one line naming
    `key`."""
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict) or not {"state_dict", "epoch"} <= checkpoint.keys():
            raise ValueError("no state_dict and epoch in it")
    except Exception as error:  # the boundary of torch.load: whatever the file is, one line
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        valid = f"a Lightning checkpoint of plain tensors ({reason})"
        raise ConfigError(key, str(path), valid).at_top_level() from None
    return checkpoint


def changed_settings(
    cfg: DictConfig,
    allowed: tuple[str, ...],
    command: str,
    why: str = "it would change what the run fits",
) -> dict[str, Any]:
    """The settings this command line sets, each one of `allowed` (else refused in one line,
    saying `why`), with the values Hydra parsed."""
    changes = {}
    for override in command_overrides(cfg):
        key = override_key(override)
        if key.split(".")[0] in COMMAND_ONLY:
            continue
        if key not in allowed:
            raise UserError(
                f"{command} cannot change {key}: {why}; it takes only {', '.join(allowed)}"
            )
        changes[key] = OmegaConf.select(cfg, key)
    return changes


def saved_config(run_dir: Path, changes: dict[str, Any] | None = None) -> DictConfig:
    """The run's own resolved config, with `changes` (setting -> value) applied."""
    run_cfg = OmegaConf.load(run_dir / CONFIG)
    for key, value in (changes or {}).items():
        OmegaConf.update(run_cfg, key, value, merge=False, force_add=True)
    return run_cfg


def record_config(run_dir: Path, run_cfg: DictConfig) -> None:
    """Write the run's config back (after a resume changed its budget), atomically."""
    path = run_dir / CONFIG
    tmp = path.with_suffix(".yaml.tmp")
    try:
        OmegaConf.save(run_cfg, tmp)
        os.replace(tmp, path)
    except OSError as error:
        raise UserError(f"cannot record the resumed settings in {path}: {error.strerror}") from None


def saved_identity(checkpoint: dict[str, Any], run_dir: Path) -> RunIdentity:
    """The identity a run's checkpoint carries; a checkpoint without one (written before runs
    recorded it) falls back to the run's own `.hydra/hydra.yaml`."""
    if IDENTITY in checkpoint:
        return RunIdentity.from_dict(checkpoint[IDENTITY])
    saved = (
        OmegaConf.load(run_dir / ".hydra" / "hydra.yaml")
        if (run_dir / ".hydra" / "hydra.yaml").is_file()
        else None
    )
    chosen = group_choices(OmegaConf.select(saved, "hydra.runtime.choices")) if saved else {}
    typed = OmegaConf.select(saved, "hydra.overrides.task") if saved else None
    return RunIdentity(chosen, int(OmegaConf.load(run_dir / CONFIG).seed), as_settings(typed))


def git_commit() -> str:
    """The project's commit (with "+dirty" for uncommitted changes), or "unknown"."""
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


@dataclass
class Continued:
    """What `resume=<run dir>` continues: the run's config (with the budget or devices this
    command changes, recorded in the run's own config), its identity, and what it measured."""

    cfg: DictConfig
    identity: RunIdentity
    logged: dict[str, float]  # the metrics its last.ckpt holds
    done: dict[str, Any] | None  # its metrics.json when the run is complete and nothing grew


def continued_run(cfg: DictConfig) -> Continued | None:
    """For `resume=<run dir>`: the run to continue in place; None for a new run. Refused in one
    line, before anything is written: a directory that is not a run, a setting that would change
    what the run fits, and `ckpt_path=` beside `resume=`."""
    import json

    if not cfg.get("resume"):
        return None
    if cfg.get("ckpt_path"):
        raise UserError(
            "give resume=<run dir> or ckpt_path=<checkpoint>, not both: resume continues a run "
            "in place from its last.ckpt, ckpt_path starts a new run from a checkpoint's state"
        )
    run_dir, ckpt = run_dir_of(cfg.resume, "resume")
    changes = changed_settings(cfg, RESUMABLE, f"resume={cfg.resume}", RESUME_WHY)
    run_cfg = saved_config(run_dir, changes)
    checkpoint = read_checkpoint(ckpt, "resume")
    identity = saved_identity(checkpoint, run_dir).with_overrides(changes)
    metrics_file = run_dir / "metrics.json"
    previous = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    done = previous.get("status") == "completed" and not _budget_grew(changes, checkpoint)
    if changes and not done:
        record_config(run_dir, run_cfg)
    run_cfg.ckpt_path, run_cfg.resume = str(ckpt), None
    run_cfg.paths.output_dir = str(run_dir)
    logged = dict(checkpoint.get(METRICS, {}))
    return Continued(run_cfg, identity, logged, previous if done else None)


def _budget_grew(changes: dict[str, Any], checkpoint: dict[str, Any]) -> bool:
    """Whether the changed budget leaves training to do after the checkpoint's state."""
    epochs, steps = checkpoint["epoch"] + 1, checkpoint["global_step"]
    grew = {
        "trainer.max_epochs": lambda v: v is None or v == -1 or v > epochs,
        "trainer.max_steps": lambda v: v is None or v == -1 or v > steps,
        "trainer.max_time": lambda v: True,
    }
    return any(grew[key](value) for key, value in changes.items() if key in grew)
