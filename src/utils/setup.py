"""Builds a run's parts from its config and refuses what cannot work before any training."""

from __future__ import annotations

import logging
import warnings

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch import nn

from src.callbacks.run_guard import RunGuard
from src.errors import ConfigError, UserError
from src.lightning.density_module import DensityModule
from src.utils.instantiate import build


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    return build(cfg.data, "data")


def build_module(cfg: DictConfig, datamodule: pl.LightningDataModule) -> pl.LightningModule:
    """The model config gives either a density model, trained by maximum likelihood with the
    configured optimizer, or a LightningModule with its own fitting procedure (EM, CAVI)."""
    built = build(cfg.model, "model")
    if isinstance(built, pl.LightningModule):
        check_pairing(getattr(built, "model", built), datamodule, cfg)
        return built
    check_pairing(built, datamodule, cfg)
    if hasattr(built, "init_from_data") and not cfg.get("ckpt_path"):
        built.init_from_data(datamodule.train_x)
    return DensityModule(built, optimizer=build_optimizer(cfg, built), scheduler=_scheduler(cfg))


def build_optimizer(cfg: DictConfig, model: nn.Module):
    """The optimizer factory, tried once on the model so a bad setting fails before training."""
    factory = build(cfg.optimizer, "optimizer")
    lr = getattr(factory, "keywords", {}).get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ConfigError("optimizer.lr", lr, "a number > 0")
    try:
        factory(params=model.parameters())
    except (ValueError, TypeError) as error:
        raise UserError(
            f"optimizer: {cfg.optimizer._target_} rejects its settings: {error}"
        ) from None
    return factory


def _scheduler(cfg: DictConfig):
    return build(cfg.scheduler, "scheduler") if cfg.get("scheduler") else None


def check_pairing(model: object, datamodule: pl.LightningDataModule, cfg: DictConfig) -> None:
    """A discrete model needs discrete data, a 2-D model 2-D data, and so on."""
    names = f"model={_choice(cfg, 'model')} with data={_choice(cfg, 'data')}"
    support = getattr(model, "support", None)
    if support is not None and support != datamodule.support:
        raise UserError(
            f"{names} cannot work: the model is for {support} data, "
            f"the data are {datamodule.support}; choose a {support} data set"
        )
    shape = getattr(model, "event_shape", None)
    if shape is not None and tuple(shape) != tuple(datamodule.event_shape):
        raise UserError(
            f"{names} cannot work: the model's events have shape {tuple(shape)}, "
            f"the data's {tuple(datamodule.event_shape)}"
        )


def _choice(cfg: DictConfig, group: str) -> str:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, "?"))
    return str(cfg[group].get("_target_", "?")).rsplit(".", 1)[-1]


def load_weights(module: pl.LightningModule, ckpt_path: str) -> None:
    """Load a checkpoint's weights without running code from it (`weights_only`), refusing
    one whose weights do not fit the configured model."""
    import pickle

    import torch

    try:
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
    except (pickle.UnpicklingError, KeyError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0][:200]
        raise ConfigError(
            "ckpt_path", str(ckpt_path), f"a Lightning checkpoint of plain tensors ({reason})"
        ) from None
    try:
        module.load_state_dict(state)
    except RuntimeError as error:  # missing, unexpected or differently shaped weights
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = lines[1] if len(lines) > 1 else lines[0]
        target = type(getattr(module, "model", module)).__name__
        valid = f"a checkpoint of the configured model {target} ({reason})"
        raise ConfigError("ckpt_path", str(ckpt_path), valid) from None


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """Callbacks and loggers set to null (`callbacks.progress_bar=null`) are left out, and so
    are settings without a `_target_`: an experiment's tweaks of a callback not selected.
    The run guard (non-finite check, checkpoint on Ctrl+C) is always on."""
    callbacks = [build(c, f"callbacks.{k}") for k, c in _selected(cfg.get("callbacks"))]
    callbacks.append(RunGuard(f"{cfg.paths.output_dir}/checkpoints"))
    loggers = [build(c, f"logger.{k}") for k, c in _selected(cfg.get("logger"))]
    return build(cfg.trainer, "trainer", callbacks=callbacks, logger=loggers or False)


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
