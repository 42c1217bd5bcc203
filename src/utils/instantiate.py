"""Hydra instantiation that reports a bad setting by its full config path, in one line."""

from __future__ import annotations

import typing
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from src.errors import ConfigError, UserError
from src.utils.settings import accepts, describe


def build(cfg: DictConfig, path: str, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate(cfg)`, turning a `ConfigError` raised inside into `path.key`."""
    _check_flags(cfg, path)
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, ConfigError):
            nested = _nested_key(str(error), path)
            raise cause.under(nested) from None
        if isinstance(cause, UserError):
            raise cause from None
        target = cfg.get("_target_", "?")
        if isinstance(cause, ImportError) or "Error locating target" in str(error):
            raise ConfigError(
                f"{path}._target_", target, "an importable class or function"
            ) from None
        reason = str(cause or error).strip().splitlines()[0]
        raise UserError(f"{path}: cannot build {target}: {reason}") from error


def _nested_key(message: str, path: str) -> str:
    """Hydra appends `full_key: data.truth` when the error came from a nested node."""
    for line in reversed(message.splitlines()):
        if line.startswith("full_key: "):
            key = line.removeprefix("full_key: ")
            return key if key.startswith(path) else f"{path}.{key}"
    return path


def _check_flags(cfg: DictConfig, path: str) -> None:
    """A setting its class annotates `bool` takes true or false only: Python reads any other
    value ("abc", 2) as true, so a mistyped setting would silently switch an option on."""
    try:
        hints = typing.get_type_hints(get_class(cfg._target_).__init__)
    except Exception:  # a function, or a class that cannot be imported: left to instantiate
        return
    for key in (k for k, annotation in hints.items() if annotation is bool and k in cfg):
        try:
            value = cfg[key]
        except OmegaConfBaseException:  # an unresolvable interpolation: instantiate names it
            continue
        if not accepts(bool, value):
            raise ConfigError(f"{path}.{key}", value, describe(bool)).at_top_level()
