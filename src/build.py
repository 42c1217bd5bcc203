"""Assembles a run: model × data × fit × trainer, or a Monte Carlo study × trainer.

Everything that cannot work is refused here, before any training, in one line: the pairing of
model, fit and data is checked in one place (`check_pairing`).
"""

from __future__ import annotations

import inspect
import logging
import warnings
from typing import Any

import pytorch_lightning as pl
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from torch import nn

from src.callbacks.lean import NoProfiler, skip_no_op_hooks
from src.callbacks.run_guard import RunGuard
from src.callbacks.threads import ThreadPolicy
from src.errors import ConfigError, UserError
from src.models.protocol import DensityModel
from src.models.standardized import standardized
from src.utils.checkpoint_io import LocalCheckpointIO
from src.utils.instantiate import build
from src.utils.memory import bytes_per_point, eval_chunk, gib, machine_bytes
from src.utils.runs import run_name
from src.utils.settings import check_settings
from src.utils.threads import available_cores, check_threads, sweep_workers


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    return build(cfg.data, "data")


def build_module(cfg: DictConfig, datamodule: pl.LightningDataModule) -> pl.LightningModule:
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
    model = build(cfg.model, "model", **_from_data(cfg.model, datamodule))
    # a data set that standardizes (data=table) has its model fitted in standardized units and
    # scored and sampled in the file's units (src/models/standardized.py)
    model = standardized(model, getattr(datamodule, "standardization", None))
    fit_class = _fit_class(cfg)
    check_pairing(cfg, model, fit_class, datamodule)
    fit = build(cfg.fit, "fit", model=model, **_optimizer_for(cfg.fit, cfg))
    fit.prepare(datamodule.train_x, resuming=bool(cfg.get("ckpt_path")))  # e.g. K > N refused
    check_memory(cfg, model, datamodule)
    return fit


def check_memory(cfg: DictConfig, model: nn.Module, datamodule: pl.LightningDataModule) -> None:
    """Evaluate in chunks the model's size allows; refuse a training batch that cannot fit."""
    per_point = bytes_per_point(model)
    if hasattr(datamodule, "eval_batch_size"):
        datamodule.eval_batch_size = eval_chunk(model, datamodule.eval_batch_size)
    batch = getattr(datamodule, "batch_size", None) or len(datamodule.train_x)
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


def _from_data(model_cfg: DictConfig, datamodule: pl.LightningDataModule) -> dict:
    """A model setting the data determine (`dim`, `d`), left null in the config, is taken from
    the data set: a table's number of columns or bins is known only once it is read."""
    known = {"dim": getattr(datamodule, "dim", None), "d": getattr(datamodule, "n_bins", None)}
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


DENSITY_MODEL = "a module with log_prob(x), sample(n), support and event_shape"


def check_pairing(
    cfg: DictConfig, model: nn.Module, fit_class: type, datamodule: pl.LightningDataModule
) -> None:
    """The fit must be able to fit the model, and the model must take the data's events:
    a discrete model needs discrete data, a 2-D model 2-D data, and so on."""
    names = f"model={choice(cfg, 'model')} with fit={choice(cfg, 'fit')}"
    if not isinstance(model, DensityModel):
        raise UserError(f"model={choice(cfg, 'model')} is not a density model: {DENSITY_MODEL}")
    reason = fit_class.accepts(model)
    if reason:
        raise UserError(f"{names} cannot work: {reason}")
    names = f"model={choice(cfg, 'model')} with data={choice(cfg, 'data')}"
    support = getattr(model, "support", None)
    if support is not None and support != datamodule.support:
        raise UserError(
            f"{names} cannot work: the model is for {support} data, "
            f"the data are {datamodule.support}; choose data of the model's kind"
        )
    shape = getattr(model, "event_shape", None)
    if shape is not None and tuple(shape) != tuple(datamodule.event_shape):
        raise UserError(
            f"{names} cannot work: the model's events have shape {tuple(shape)}, "
            f"the data's {tuple(datamodule.event_shape)}"
        )


def choice(cfg: DictConfig, group: str) -> str:
    """The option chosen for a config group (its file name), as the user typed it."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group))
    choices = OmegaConf.select(cfg, "hydra.runtime.choices")  # composed with its hydra node
    if choices is not None:
        return str(choices.get(group))
    node = cfg.get(group)
    return str(node.get("_target_", "?")).rsplit(".", 1)[-1] if node else "None"


def load_weights(module: pl.LightningModule, ckpt_path: str, cfg: DictConfig) -> None:
    """Load a checkpoint's weights without running code from it (`weights_only`). Anything that
    is not a checkpoint of this model with these settings is refused in one line: a text, empty,
    truncated or foreign file, another model's weights, or the same class trained with other
    settings (the model config saved in the checkpoint is compared with the run's)."""
    import torch

    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        state = checkpoint["state_dict"]
    except Exception as error:  # the boundary of torch.load: whatever the file is, one line
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ConfigError(
            "ckpt_path", str(ckpt_path), f"a Lightning checkpoint of plain tensors ({reason})"
        ).at_top_level() from None
    saved = checkpoint.get(MODEL_CONFIG) if isinstance(checkpoint, dict) else None
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


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """Callbacks and loggers set to null (`callbacks.progress_bar=null`) are left out, and so
    are settings without a `_target_`: an experiment's tweaks of a callback not selected.
    The run guard (non-finite check, checkpoint on Ctrl+C) and the thread policy (`threads`,
    src/utils/threads.py) are always on."""
    threads = check_threads(cfg.get("threads", "auto"))
    callbacks = [build(c, f"callbacks.{k}") for k, c in _selected(cfg.get("callbacks"))]
    callbacks.append(
        RunGuard(f"{cfg.paths.output_dir}/checkpoints", {MODEL_CONFIG: _model_config(cfg)})
    )
    callbacks.append(ThreadPolicy(threads, sweep_workers(_launcher_jobs(cfg), available_cores())))
    loggers = [build(c, f"logger.{k}", **_named(c, cfg)) for k, c in _selected(cfg.get("logger"))]
    if cfg.trainer.get("enable_progress_bar") is False:  # Lightning refuses a bar callback then
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    check_settings(cfg.trainer, pl.Trainer.__init__, "trainer")
    lean = {} if cfg.trainer.get("profiler") else {"profiler": NoProfiler()}
    if not cfg.trainer.get("plugins"):
        lean["plugins"] = [LocalCheckpointIO()]
    trainer = build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False, **lean)
    skip_no_op_hooks(trainer.callbacks)  # with those Lightning added (a default progress bar)
    return trainer


def _launcher_jobs(cfg: DictConfig) -> object:
    """`hydra.launcher.n_jobs` of a parallel sweep this job runs in (joblib), else None."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get() if HydraConfig.initialized() else cfg.get("hydra")
    if hydra_cfg is None or str(hydra_cfg.get("mode")) != "RunMode.MULTIRUN":
        return None
    return OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=None)


def _named(logger_cfg: DictConfig, cfg: DictConfig) -> dict:
    """A TensorBoard run left unnamed (`version: ""`) is named after the run, e.g. gmm-mog2d-s0."""
    if "TensorBoardLogger" in str(logger_cfg.get("_target_")) and not logger_cfg.get("version"):
        return {"version": run_name(cfg)}
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
