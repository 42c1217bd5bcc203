"""Hydra instantiation that reports a bad setting by its full config path, in one line."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from src.errors import ConfigError, UserError


def build(cfg: DictConfig, path: str, **kwargs: Any) -> Any:
    """`hydra.utils.instantiate(cfg)`, turning a `ConfigError` raised inside into `path.key`."""
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
