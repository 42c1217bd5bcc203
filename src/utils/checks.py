"""Argument checks shared by models and data sources; each raises a `ConfigError`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from src.errors import ConfigError


def positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, value, "an integer >= 1")
    return value


def positive(key: str, value: Any) -> float:
    if not _is_real(value) or not value > 0 or math.isinf(value):
        raise ConfigError(key, value, "a finite number > 0")
    return float(value)


def finite(key: str, value: Any) -> float:
    if not _is_real(value) or not math.isfinite(value):
        raise ConfigError(key, value, "a finite number")
    return float(value)


def finite_list(key: str, values: Sequence[Any], length: int | None = None) -> list[float]:
    values = as_list(key, values, f"a list of {length or 'finite'} numbers")
    if length is not None and len(values) != length:
        raise ConfigError(key, values, f"a list of {length} numbers")
    if not values or not all(_is_real(v) and math.isfinite(v) for v in values):
        raise ConfigError(key, values, "a non-empty list of finite numbers")
    return [float(v) for v in values]


def positive_list(key: str, values: Sequence[Any], length: int | None = None) -> list[float]:
    values = as_list(key, values, f"a list of {length or 'finite'} numbers")
    if not all(_is_real(v) and v > 0 for v in values):
        raise ConfigError(key, values, "a list of finite numbers > 0")
    return finite_list(key, values, length)


def probability_vector(key: str, values: Sequence[Any], length: int | None = None) -> list[float]:
    """Non-negative weights summing to 1 (within 1e-6)."""
    values = finite_list(key, values, length)
    if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(key, values, "non-negative weights that sum to 1")
    return values


def as_list(key: str, values: Any, valid: str) -> list[Any]:
    """The values as a list; a number or a string where a list belongs is refused by name."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ConfigError(key, values, valid)
    return list(values)


def one_of(key: str, value: Any, choices: Sequence[Any]) -> Any:
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(map(str, choices)))
    return value


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
