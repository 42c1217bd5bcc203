"""The one assembly: a run's config -> data × model × fit (or study) × trainer × callbacks.

Training, resuming, `src.eval`, `src.compare` and `load_run` all build a run here from its
resolved config, so a model is rebuilt with the settings the data determined (`dim`, `d`) and
the data's standardization, whichever command asks. Everything that cannot work is refused
here, before any training, in one line: the pairing of model, fit and data is checked in one
place (`src/pairing.py`).
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytorch_lightning as pl
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ProgressBar, Timer
from torch import nn

from src.callbacks.last_checkpoint import LastCheckpoint
from src.callbacks.lean import NoProfiler
from src.callbacks.learning_curve import LearningCurve
from src.callbacks.progress import EpochProgressBar
from src.callbacks.run_guard import RunGuard
from src.callbacks.threads import ThreadPolicy
from src.data.protocol import DataSource
from src.errors import ConfigError, UserError
from src.fits.base import RunModule
from src.fits.density_fit import DensityFit
from src.models.standardized import standardized
from src.pairing import check_data, check_pairing
from src.sweeps.curves import CURVE
from src.utils.checkpoint_io import LocalCheckpointIO
from src.utils.hydra_context import choice, launcher_jobs
from src.utils.instantiate import build
from src.utils.memory import bytes_per_point, eval_chunk, gib, machine_bytes
from src.utils.runs import (
    IDENTITY,
    RunIdentity,
    checked_seed,
    read_checkpoint,
    run_dir_of,
    saved_config,
    saved_identity,
)
from src.utils.threads import available_cores, check_threads, sweep_workers

log = logging.getLogger(__name__)

Stage = Literal["fit", "test", "load"]


@dataclass
class Run:
    """A run as built: its config and identity, the data, the fit or study, and (to fit or to
    test) the trainer."""

    cfg: DictConfig
    identity: RunIdentity
    datamodule: DataSource
    module: RunModule
    trainer: pl.Trainer | None = None

    @property
    def model(self) -> nn.Module | None:
        """The density model (in the data's units); None for a study."""
        return self.module.model if isinstance(self.module, DensityFit) else None


def assemble(cfg: DictConfig, identity: RunIdentity, stage: Stage = "fit") -> Run:
    """Build the run `cfg` describes. `fit`: the trainer with the run's callbacks and loggers;
    `test`: the run's trainer settings without them (src.eval); `load`: no trainer. With
    `cfg.ckpt_path` the module holds that checkpoint's weights (refused if of another model)."""
    pl.seed_everything(checked_seed(cfg.get("seed")), workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    trainer = None
    if stage == "fit":
        trainer = build_trainer(cfg, identity, module)  # every setting checked: then the disk
        writable(Path(cfg.paths.output_dir) / "checkpoints")
    elif stage == "test":
        trainer = build_test_trainer(cfg)
    if cfg.get("ckpt_path"):
        load_weights(module, cfg.ckpt_path, cfg)  # refuses another model's checkpoint in one line
    return Run(cfg, identity, datamodule, module, trainer)


def rebuild(path: str | Path, key: str = "ckpt_path") -> Run:
    """A trained run from its directory (or a checkpoint inside it): its own saved config, the
    checkpoint's weights, no trainer; the module is in eval mode."""
    run_dir, ckpt = run_dir_of(path, key)
    cfg = saved_config(run_dir, {"ckpt_path": str(ckpt), "resume": None})
    checkpoint = read_checkpoint(ckpt, key)
    run = assemble(cfg, saved_identity(checkpoint, run_dir), stage="load")
    run.module.eval()
    return run


def load_run(path: str | Path) -> tuple[nn.Module, DictConfig]:
    """`model, cfg = load_run(<run dir or checkpoint>)`: a trained density model (a plain
    `nn.Module` with `log_prob` and `sample`, in the data's units) and the run's config."""
    run = rebuild(path, "path")
    if run.model is None:
        raise UserError(f"{path} is a study run: it has no density model to load")
    return run.model, run.cfg


def writable(directory: Path) -> None:
    """Create the run's checkpoint directory and prove it takes a file, before any training."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-"):
            pass
    except OSError as error:
        raise ConfigError(
            "paths.output_dir",
            str(directory.parent),
            f"a directory whose checkpoints/ can be written ({error.strerror or error})",
        ) from None


def build_datamodule(cfg: DictConfig) -> DataSource:
    return build(cfg.data, "data")


def build_module(cfg: DictConfig, datamodule: DataSource) -> RunModule:
    """The study, or the fit (`fit=`) of the density model (`model=`) to the data."""
    if cfg.get("study"):
        if datamodule.support != "none":
            raise UserError(
                f"study={choice(cfg, 'study')} draws its own samples and takes no data set; "
                f"got data={choice(cfg, 'data')}: use data=none"
            )
        return build(cfg.study, "study", **_optimizer_for(cfg.study, cfg))
    if not cfg.get("model"):
        raise ConfigError("model", None, "a model (model=<name>) or a study (study=<name>)")
    settings = _from_data(cfg.model, datamodule)
    check_data(cfg, settings, datamodule)  # before the model exists: named by what the data are
    model = build(cfg.model, "model", **settings)
    # a data set that standardizes (data=table) has its model fitted in standardized units and
    # scored and sampled in the file's units (src/models/standardized.py)
    model = standardized(model, datamodule.standardization)
    fit_class = _fit_class(cfg)
    check_pairing(cfg, model, fit_class, datamodule)
    fit = build(cfg.fit, "fit", model=model, **_optimizer_for(cfg.fit, cfg))
    resuming = bool(cfg.get("ckpt_path"))
    fit.prepare(datamodule.train_x, resuming, datamodule.train_weights)  # e.g. K > N refused
    check_memory(cfg, model, datamodule)
    return fit


def check_memory(cfg: DictConfig, model: nn.Module, datamodule: DataSource) -> None:
    """Evaluate in chunks the model's size allows; refuse a training batch that cannot fit."""
    per_point = bytes_per_point(model)
    datamodule.eval_batch_size = eval_chunk(model, datamodule.eval_batch_size)
    batch = datamodule.batch_size or len(datamodule.train_x)
    if batch * per_point > machine_bytes() / 2:
        raise UserError(
            f"model={choice(cfg, 'model')} with a batch of {batch} points needs about "
            f"{gib(batch * per_point)} per step, more than this machine's {gib(machine_bytes())} "
            f"allows: use a smaller model or data.batch_size"
        )


def _fit_class(cfg: DictConfig) -> type:
    try:
        return get_class(cfg.fit._target_)
    except Exception:
        raise ConfigError(
            "fit._target_", cfg.fit.get("_target_"), "an importable fit class"
        ) from None


def _from_data(model_cfg: DictConfig, datamodule: DataSource) -> dict:
    """A model setting the data determine (`dim`, `d`), left null in the config, is taken from
    the data set: a table's number of columns or bins is known only once it is read."""
    known = {"dim": datamodule.dim, "d": datamodule.n_bins}
    return {
        key: value
        for key, value in known.items()
        if key in model_cfg and model_cfg[key] is None and value is not None
    }


def _optimizer_for(module_cfg: DictConfig, cfg: DictConfig) -> dict:
    """The configured optimizer (and scheduler), for a module whose class takes them."""
    try:
        parameters = inspect.signature(get_class(module_cfg._target_)).parameters
    except Exception:
        return {}
    if "optimizer" not in parameters:
        return {}
    extra = {"optimizer": build(cfg.optimizer, "optimizer")}
    if "scheduler" in parameters:
        extra["scheduler"] = _scheduler(cfg) if cfg.get("scheduler") else None
    return extra


def _scheduler(cfg: DictConfig) -> Any:
    """The scheduler factory; its settings are checked by `build` against the declared table
    (src/utils/library_constraints.py), so T_max=0 is refused before training, by name."""
    return build(cfg.scheduler, "scheduler")


def load_weights(module: pl.LightningModule, ckpt_path: str, cfg: DictConfig) -> None:
    """Load a checkpoint's weights without running code from it (`weights_only`). Anything that
    is not a checkpoint of this model with these settings is refused in one line: a text, empty,
    truncated or foreign file, another model's weights, or the same class trained with other
    settings (the model config saved in the checkpoint is compared with the run's)."""
    checkpoint = read_checkpoint(ckpt_path)
    state = checkpoint["state_dict"]
    saved = checkpoint.get(MODEL_CONFIG)
    wanted = _model_config(cfg)
    if saved is not None and saved != wanted:
        changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        shown = ", ".join(f"{k}={saved.get(k)!r}" for k in changed)
        valid = f"a checkpoint of the configured model (it was trained with {shown})"
        raise ConfigError("ckpt_path", str(ckpt_path), valid).at_top_level()
    try:
        module.load_state_dict(state)
    except RuntimeError as error:  # missing, unexpected or differently shaped weights
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 else lines[0]
        target = type(getattr(module, "model", module)).__name__
        valid = f"a checkpoint of the configured model {target} ({reason})"
        raise ConfigError("ckpt_path", str(ckpt_path), valid).at_top_level() from None


MODEL_CONFIG = "densitylab_model_config"


def _model_config(cfg: DictConfig) -> dict:
    """The run's model (or study) settings, resolved: what a checkpoint must have been made of."""
    node = cfg.get("study") or cfg.get("model")
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def build_trainer(cfg: DictConfig, identity: RunIdentity, module: RunModule) -> pl.Trainer:
    """Callbacks and loggers set to null (`callbacks.progress_bar=null`) are left out, and so
    are settings without a `_target_`: an experiment's tweaks of a callback not selected.
    A callback whose `monitor` is `auto` follows the module's own metric (`RunModule.monitor`),
    and is left out for a module that monitors nothing. Always on, whatever `callbacks=` says:
    `last.ckpt` after every epoch, the learning curve (`curve.csv`), the run guard (non-finite
    check, checkpoint on Ctrl+C, the run's identity in every checkpoint) and the thread policy
    (`threads`); the epoch progress bar unless `trainer.enable_progress_bar=false` or another
    bar is chosen."""
    threads = check_threads(cfg.get("threads", "auto"))
    callbacks = [
        build(c, f"callbacks.{k}", **_monitored(c, module))
        for k, c in _selected(cfg.get("callbacks"))
        if c.get("monitor") != AUTO or module.monitor is not None
    ]
    checkpoints = f"{cfg.paths.output_dir}/checkpoints"
    identity_record = {MODEL_CONFIG: _model_config(cfg), IDENTITY: identity.as_dict()}
    callbacks += [LastCheckpoint(checkpoints), RunGuard(checkpoints, identity_record)]
    callbacks.append(LearningCurve(Path(cfg.paths.output_dir) / CURVE))
    callbacks.append(ThreadPolicy(threads, sweep_workers(launcher_jobs(cfg), available_cores())))
    loggers = [
        build(c, f"logger.{k}", **_named(c, identity)) for k, c in _selected(cfg.get("logger"))
    ]
    if cfg.trainer.get("enable_progress_bar") is False:  # Lightning refuses a bar callback then
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    elif not any(isinstance(c, ProgressBar) for c in callbacks):  # e.g. callbacks=none
        callbacks.append(EpochProgressBar())  # the epoch bar, not Lightning's default
    lean = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}
    if not cfg.trainer.get("plugins"):
        lean["plugins"] = [LocalCheckpointIO()]
    check_bounded(cfg.trainer, callbacks, module)
    check_one_clock(cfg.trainer, callbacks)
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, **lean)
    return trainer


def check_bounded(trainer_cfg: DictConfig, callbacks: list, module: RunModule) -> None:
    """`trainer.max_epochs=-1` trains forever unless something else ends it: `max_steps`,
    `max_time`, `fast_dev_run`, a Timer with a duration, an EarlyStopping, or a fit that stops
    by itself (EM, CAVI)."""
    if trainer_cfg.get("max_epochs") != -1 or module.stops_itself:
        return
    if trainer_cfg.get("max_steps", -1) not in (-1, None) or trainer_cfg.get("max_time"):
        return
    if trainer_cfg.get("fast_dev_run"):
        return
    if any(
        isinstance(c, EarlyStopping) or (isinstance(c, Timer) and c.time_remaining() is not None)
        for c in callbacks
    ):
        return
    raise ConfigError(
        "trainer.max_epochs",
        -1,
        "an integer >= 0, or -1 with a bound (trainer.max_steps, trainer.max_time, "
        "callbacks.timer.duration or an EarlyStopping callback): as it is the run never ends",
    )


def check_one_clock(trainer_cfg: DictConfig, callbacks: list) -> None:
    """Lightning ignores `trainer.max_time` when the callbacks already hold a Timer (it keeps
    the callback's duration, even none), so both set would drop the time budget unseen."""
    if trainer_cfg.get("max_time") and any(isinstance(c, Timer) for c in callbacks):
        raise ConfigError(
            "trainer.max_time",
            trainer_cfg.max_time,
            "unset while a Timer callback is chosen (Lightning keeps only the Timer's "
            "duration): give the Timer the duration, or leave it out",
        )


def build_test_trainer(cfg: DictConfig) -> pl.Trainer:
    """The run's own trainer settings (accelerator, devices, precision, strategy), to test."""
    quiet = {"enable_checkpointing": False, "enable_progress_bar": False}
    return build(cfg.trainer, "trainer", callbacks=[], logger=False, **quiet)


AUTO = "auto"


def _monitored(callback_cfg: DictConfig, module: RunModule) -> dict:
    """`monitor: auto` (ModelCheckpoint, EarlyStopping) becomes the module's own metric."""
    if callback_cfg.get("monitor") != AUTO:
        return {}
    return {"monitor": module.monitor}


def _named(logger_cfg: DictConfig, identity: RunIdentity) -> dict:
    """A TensorBoard run left unnamed (`version: ""`) is named after the run, e.g. gmm-mog2d-s0."""
    if "TensorBoardLogger" in str(logger_cfg.get("_target_")) and not logger_cfg.get("version"):
        return {"version": identity.name()}
    return {}


def _selected(group: DictConfig | None) -> list[tuple[str, DictConfig]]:
    return [(k, c) for k, c in (group or {}).items() if c and "_target_" in c]


def quiet_known_noise() -> None:
    """Hide Lightning's messages that say nothing about this run (tips, a torch deprecation)."""
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")
    warnings.filterwarnings("ignore", message=r".*configure_optimizers. returned .None.")
    warnings.filterwarnings("ignore", message=r"You passed in a `val_dataloader` but have no")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(
        lambda record: "litlogger" not in record.getMessage()
    )
