"""Settings handed to a library, checked against what its signature accepts, in one line.

Lightning, torch and friends describe their arguments with type annotations; a value of the
wrong type (`trainer.max_epochs=2.5`, `trainer.devices=abc`) would otherwise surface as a
traceback deep inside the library, sometimes after training has started. One mechanism for
every such setting: compare each value with its parameter's annotation (int, float, bool, str,
Literal, Optional and Union of these; anything else is left to the library) before the call.
An integer parameter whose default is a count (an int >= 1, e.g. `accumulate_grad_batches=1`)
takes counts only: 0 or a negative number there divides by zero or loops nowhere later.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from src.errors import ConfigError


def check_settings(settings: Mapping[str, Any], function: Callable, prefix: str) -> None:
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # unresolvable annotations: nothing to check against
        return
    for key, parameter in inspect.signature(function).parameters.items():
        if key in settings and key in hints:
            value = settings[key]
            valid = describe(hints[key])
            if valid is not None and not accepts(hints[key], value):
                raise ConfigError(f"{prefix}.{key}", value, valid).at_top_level()
            if _is_count(parameter.default) and _is_count(value) is False:
                raise ConfigError(f"{prefix}.{key}", value, "an integer >= 1").at_top_level()


def accepts(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(arg, value) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        real = isinstance(value, (int, float)) and not isinstance(value, bool)
        return real and not math.isnan(value)
    if annotation is str:
        return isinstance(value, str)
    return True  # a type this check does not know: the library judges it


def describe(annotation: Any) -> str | None:
    """What an annotation accepts, in words; None where the check does not apply."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [describe(arg) for arg in typing.get_args(annotation)]
        return None if None in parts else " or ".join(dict.fromkeys(parts))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(annotation)))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if annotation is type(None):
        return "null"
    return names.get(annotation)


def _is_count(value: Any) -> bool | None:
    """True for an int >= 1, False for another int, None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value >= 1
