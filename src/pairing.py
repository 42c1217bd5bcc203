"""Which model takes which data: the pairing of model, fit and data, checked in one place.

The run assembly (src/build.py) asks twice: before the model is built, from what its class
declares (`support`, a class-level `event_shape`, a `dim` setting), so a 1-D file for model=gmm
is named as one column for a model of vectors, not as `model.dim=None`; and once it is built,
from the model itself. A refusal is one line: what the model takes, what the data are (a file
by its columns) and the models of conf/model that take these data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import nn

from src.data.protocol import DataSource
from src.errors import UserError
from src.models.protocol import DensityModel
from src.utils.hydra_context import choice

DENSITY_MODEL = "a module with log_prob(x), sample(n), support and event_shape"
MODEL_CONFIGS = Path(__file__).resolve().parents[1] / "conf" / "model"
VALUES = {"continuous": "real numbers", "discrete": "counts"}


@dataclass(frozen=True)
class Takes:
    """The data a model takes: its `support` and its events' shape; `shape` None for vectors
    (D,) of any D >= `min_dim` (a class with a `dim` setting not yet given one)."""

    support: str
    shape: tuple[int, ...] | None
    min_dim: int = 2

    def fits(self, support: str, shape: tuple[int, ...]) -> bool:
        if support != self.support:
            return False
        if self.shape is None:
            return len(shape) == 1 and shape[0] >= self.min_dim
        return self.shape == shape


def takes(model_class: type, dim: Any = None) -> Takes | None:
    """What a model class takes, read off the class before it is built: its `support`, and a
    class-level `event_shape`, or vectors (dim,) for a class with a declared `dim` setting (at
    least 2: one column is 1-D data, of shape ()). None for a class that declares neither."""
    support = getattr(model_class, "support", None)
    shape = getattr(model_class, "event_shape", None)
    if not isinstance(support, str):
        return None
    if isinstance(shape, torch.Size):
        return Takes(support, tuple(shape))
    declared = getattr(model_class, "constraints", {}).get("dim")
    if declared is None:
        return None
    min_dim = max(2, getattr(declared, "low", None) or 0)
    return Takes(support, (dim,) if isinstance(dim, int) else None, min_dim)


def check_data(cfg: DictConfig, settings: dict, datamodule: DataSource) -> None:
    """Before the model is built, its class against the data: a 1-D file for model=gmm is
    refused as one column for a model of vectors, not as `model.dim=None` (a setting the
    user never set), and the refusal lists the models that take these data."""
    try:
        model_class = get_class(cfg.model._target_)
        dim = settings.get("dim", cfg.model.get("dim"))
    except Exception:  # an unimportable class or a bad setting: `build` names it
        return
    wanted = takes(model_class, dim)
    if wanted is not None:
        _refuse_mismatch(cfg, wanted, datamodule)


def check_pairing(
    cfg: DictConfig, model: nn.Module, fit_class: type, datamodule: DataSource
) -> None:
    """The fit must be able to fit the model, and the model must take the data's events:
    a discrete model needs discrete data, a 2-D model 2-D data, and so on (`check_data` has
    told the same from the model's class, where the class declares it)."""
    names = f"model={choice(cfg, 'model')} with fit={choice(cfg, 'fit')}"
    if not isinstance(model, DensityModel):
        raise UserError(f"model={choice(cfg, 'model')} is not a density model: {DENSITY_MODEL}")
    reason = fit_class.accepts(model)
    if reason:
        raise UserError(f"{names} cannot work: {reason}")
    _refuse_mismatch(cfg, Takes(model.support, tuple(model.event_shape)), datamodule)


def _refuse_mismatch(cfg: DictConfig, wanted: Takes, datamodule: DataSource) -> None:
    """One line: what the model takes, what the data are (a file by its columns) and the
    models of conf/model that take these data."""
    support, shape = datamodule.support, tuple(datamodule.event_shape)
    if wanted.fits(support, shape):
        return
    if support != wanted.support:
        reason = f"the model is for {wanted.support} data, the data are {support}"
    elif wanted.shape is None:
        reason = f"the model takes vectors of D ≥ {wanted.min_dim} columns"
    else:
        reason = f"the model's events have shape {wanted.shape}, the data's {shape}"
    others = _models_taking(support, shape)
    fixes = [f"model={_either(others)}"] if others else []
    if fixes and "dim" in cfg.model and wanted.support == support and len(shape) == 1:
        fixes[0] += f" with model.dim={shape[0]} or null (the data's)"  # model.dim was set
    if "dtype" in cfg.data and {support, wanted.support} == set(VALUES) and wanted.shape == shape:
        # a table read as the other kind fits the model
        what = "the counts as real numbers"
        if wanted.support == "discrete":
            what = "whole numbers as counts"
        fixes.append(f"data.dtype={wanted.support} to read {what}")
    if "columns" in cfg.data and wanted.support == support and wanted.shape == () and shape:
        fixes.append("one column with data.columns=[...]")
    names = f"model={choice(cfg, 'model')} with data={choice(cfg, 'data')}"
    use = f"for these data use {', or '.join(fixes)}" if fixes else "no model here takes them"
    raise UserError(f"{names} cannot work: {reason}: {_described(cfg, datamodule)}; {use}")


def _described(cfg: DictConfig, datamodule: DataSource) -> str:
    """The data by what they are: a file by its columns (`<file> has one column of counts
    (1-D data, n_bins=10)`), other data by their events (`data=mog1d holds 1-D events`)."""
    shape = tuple(datamodule.event_shape)
    dims = "1-D" if not shape else f"{shape[0]}-D" if len(shape) == 1 else f"shape {shape}"
    path = cfg.data.get("path")
    if not path or len(shape) > 1:
        return f"data={choice(cfg, 'data')} holds {dims} events"
    columns = "one column" if not shape else f"{shape[0]} columns"
    values = VALUES.get(datamodule.support)
    bins = f", n_bins={datamodule.n_bins}" if datamodule.n_bins is not None else ""
    return f"{path} has {columns}{f' of {values}' if values else ''} ({dims} data{bins})"


def _models_taking(support: str, shape: tuple[int, ...]) -> list[str]:
    """The options of conf/model whose class takes data of this support and shape, one per class
    (flow1d, not also its variant flow1d_notes)."""
    found: dict[str, str] = {}
    for path in sorted(MODEL_CONFIGS.glob("*.yaml")):
        try:
            target = OmegaConf.load(path)._target_
            wanted = takes(get_class(target))
        except Exception:  # an option that does not import is named when it is chosen
            continue
        if wanted is not None and wanted.fits(support, shape):
            found.setdefault(target, path.stem)
    return sorted(found.values())


def _either(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
