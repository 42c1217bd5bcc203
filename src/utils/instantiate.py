"""The one instantiation boundary: every class a run is made of (model, data, fit, study,
callback, logger, trainer, optimizer, scheduler) is built here from its config node.

`build` resolves the node, checks its settings against what the class declares (its
`constraints` and `check_together`, src/utils/constraints.py), or, for a library class that
cannot declare, against the table of src/utils/library_constraints.py and then the settings'
annotations (src/utils/settings.py); only then does it instantiate. Whatever goes wrong is one
line naming the setting by its full config path: a declared constraint, a `ConfigError` raised
inside, or a library's own argument error at construction (the key its message names, else the
node's settings).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.errors import ConfigError, UserError
from src.utils.constraints import check, check_declared, declared, defaults
from src.utils.library_constraints import entry_for
from src.utils.settings import check_settings

# what a library raises for an argument it refuses at construction
ARGUMENT_ERRORS = (ValueError, TypeError, ZeroDivisionError, AssertionError)


def build(cfg: DictConfig, path: str, **kwargs: Any) -> Any:
    """Check `cfg`'s settings (and `kwargs`, the objects passed beside them), then
    `hydra.utils.instantiate(cfg, **kwargs)`; every error is one line naming `path.key`."""
    check_node(cfg, path, kwargs)
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        nested = _nested_key(str(error), path)
        if isinstance(cause, ConfigError):
            raise cause.under(nested) from None
        if isinstance(cause, UserError):
            raise cause from None
        target = cfg.get("_target_", "?")
        if isinstance(cause, ImportError) or "Error locating target" in str(error):
            raise ConfigError(
                f"{path}._target_", target, "an importable class or function"
            ) from None
        if isinstance(cause, ARGUMENT_ERRORS):
            raise _argument_error(cfg, path, nested, cause) from None
        reason = str(cause or error).strip().splitlines()[0]
        raise UserError(f"{path}: cannot build {target}: {reason}") from error


def check_node(
    cfg: DictConfig | Mapping, path: str, kwargs: Mapping[str, Any] | None = None
) -> None:
    """The node's settings against its class's declarations, nested `_target_` nodes first
    (`data.truth`). A node that cannot be resolved or imported is left to `instantiate`, which
    names it."""
    try:
        node = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    except OmegaConfBaseException:
        return
    if isinstance(node, Mapping):
        _check_tree(node, path, dict(kwargs or {}))


def check_settings_of(target: str, settings: Mapping[str, Any], path: str) -> None:
    """The checks of `build` for a node that is not built here (Hydra's launcher and sweeper,
    checked by a Hydra callback): the table's entry, then the annotations."""
    _check_tree({"_target_": target, **settings}, path, {})


def _check_tree(node: Mapping[str, Any], path: str, extra: dict[str, Any]) -> None:
    for key, value in node.items():
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, Mapping) and "_target_" in item:
                where = f"{path}.{key}" if not isinstance(value, list) else f"{path}.{key}[{i}]"
                _check_tree(item, where, {})
    target = node.get("_target_")
    if not isinstance(target, str):
        return
    try:
        klass = get_object(target)
    except Exception:  # instantiate names `<path>._target_` in one line
        return
    if not callable(klass):
        return
    given = {k: v for k, v in node.items() if not str(k).startswith("_") and not _is_node(v)}
    settings = {**given, **extra}
    check(klass, settings, path)
    checked = set(declared(klass))
    entry = entry_for(target, klass)
    if entry is not None:
        check_declared(entry.constraints, settings, path)
        checked |= set(entry.constraints)
        if entry.together is not None:
            try:
                entry.together({**defaults(klass), **settings})
            except ConfigError as error:
                raise error.under(path) from None
    # the fallback: a setting nobody declared is compared with its annotation
    signature_of = klass.__init__ if inspect.isclass(klass) else klass
    check_settings({k: v for k, v in given.items() if k not in checked}, signature_of, path)


def _is_node(value: Any) -> bool:
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, Mapping) and "_target_" in item for item in items)


def _argument_error(cfg: DictConfig, path: str, nested: str, cause: BaseException) -> UserError:
    """A library's own refusal, in one line: the setting its message names, else the node's."""
    node = cfg
    if nested != path and nested.startswith(path + "."):
        node = OmegaConf.select(cfg, nested.removeprefix(path + "."), default=cfg)
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    try:
        settings = OmegaConf.to_container(node, resolve=True)
    except OmegaConfBaseException:
        settings = {}
    settings = {
        k: v for k, v in (settings or {}).items() if not str(k).startswith("_") and not _is_node(v)
    }
    name = str(node.get("_target_", "?")).rsplit(".", 1)[-1]
    named = [k for k in settings if re.search(rf"(?<![\w.]){re.escape(str(k))}(?!\w)", reason)]
    if named:
        key = max(named, key=len)
        valid = f"what {name} accepts ({reason})"
        return ConfigError(f"{nested}.{key}", settings[key], valid).at_top_level()
    shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
    return UserError(f"{nested}: {name} rejects its settings ({shown}): {reason}")


def _nested_key(message: str, path: str) -> str:
    """Hydra appends `full_key: data.truth` when the error came from a nested node."""
    for line in reversed(message.splitlines()):
        if line.startswith("full_key: "):
            key = line.removeprefix("full_key: ")
            return key if key.startswith(path) else f"{path}.{key}"
    return path
