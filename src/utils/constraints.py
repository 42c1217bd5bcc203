"""Declared constraints on settings, checked once where a class is instantiated from a config.

In the spirit of scikit-learn's `_parameter_constraints`: a class lists what each of its
`__init__` settings accepts, and `check` compares a config node with the list before the class
is built, raising one `ConfigError` that names the setting by its full config path:

    class GaussianMixture(nn.Module):
        constraints: ClassVar[dict[str, Constraint]] = {
            "n_components": Integer(low=1),
            "covariance_type": OneOf("full", "diag"),
            "reg_covar": Real(low=0),
        }

A rule across settings (split fractions val + test < 1, a list as long as another setting) goes
in an optional classmethod `check_together(settings) -> None` that raises a `ConfigError` with
the setting's own key (`check` adds the path) or a full path (`.at_top_level()`); it sees the
class's defaults overlaid with the given settings.

Each constraint has `accepts(value) -> bool` and `describe() -> str`, what it accepts in words
("an integer >= 1"). Values are plain Python (ints, floats, strings, None, lists); a bool is
never a number, NaN is never accepted, and a number is finite unless `Real(finite=False)`.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from src.errors import ConfigError

__all__ = [
    "FRACTION",
    "AnyOf",
    "Constraint",
    "Flag",
    "Integer",
    "ListOf",
    "Nullable",
    "OneOf",
    "Probabilities",
    "Real",
    "Text",
    "check",
    "check_declared",
    "check_fractions",
    "declare",
    "declared",
    "make",
]


class Constraint:
    """What a setting accepts."""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        """What is accepted, in words, as after 'expected': 'an integer >= 1'."""
        return self._words(plural=False)

    def _words(self, plural: bool) -> str:
        """The description as a singular noun phrase ('an integer >= 1') or a plural one
        ('integers >= 1', used inside a list's description)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.describe()}>"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _bounds(low: Any, high: Any, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def _within(value: Any, low: Any, high: Any, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


class Integer(Constraint):
    """An int (never a bool, never a float such as 2.0) within the bounds, both closed."""

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and _within(value, self.low, self.high, False, False)

    def _words(self, plural: bool) -> str:
        return ("integers" if plural else "an integer") + _bounds(self.low, self.high, False, False)


class Real(Constraint):
    """An int or a float (never a bool, never NaN) within the bounds; finite unless
    `finite=False`, which lets ±inf through where the bounds allow."""

    def __init__(
        self,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        finite: bool = True,
    ) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.finite = finite

    def accepts(self, value: Any) -> bool:
        if not _is_real(value) or math.isnan(value):
            return False
        if self.finite and math.isinf(value):
            return False
        return _within(value, self.low, self.high, self.low_open, self.high_open)

    def _words(self, plural: bool) -> str:
        bounded = self.low is not None and self.high is not None
        finite = "finite " if self.finite and not bounded else ""
        noun = f"{finite}numbers" if plural else f"a {finite}number"
        words = noun + _bounds(self.low, self.high, self.low_open, self.high_open)
        if not self.finite and self.high is None:
            words += " (inf allowed)"
        return words


class Flag(Constraint):
    """true or false only: Python reads any other value ('abc', 2) as true."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def _words(self, plural: bool) -> str:
        return "true or false"


class OneOf(Constraint):
    """One of the listed values, compared by type as well: True is not 1, 1.0 is not 1."""

    def __init__(self, *choices: Any) -> None:
        if not choices:
            raise ValueError("OneOf needs at least one choice")
        self.choices = choices

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)

    def _words(self, plural: bool) -> str:
        shown = [_plain(c) for c in self.choices]
        return shown[0] if len(shown) == 1 else "one of " + ", ".join(shown)


class Text(Constraint):
    """A string; `nonempty=True` refuses ''."""

    def __init__(self, nonempty: bool = False) -> None:
        self.nonempty = nonempty

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and (bool(value.strip()) or not self.nonempty)

    def _words(self, plural: bool) -> str:
        if self.nonempty:
            return "non-empty strings" if plural else "a non-empty string"
        return "strings" if plural else "a string"


class AnyOf(Constraint):
    """Accepted by any of the constraints: `AnyOf(OneOf("auto"), Integer(low=1))`."""

    def __init__(self, *constraints: Constraint) -> None:
        self.constraints = constraints

    def accepts(self, value: Any) -> bool:
        return any(c.accepts(value) for c in self.constraints)

    def _words(self, plural: bool) -> str:
        return " or ".join(dict.fromkeys(c._words(plural) for c in self.constraints))


class Nullable(AnyOf):
    """null, or accepted by the constraint."""

    def __init__(self, constraint: Constraint) -> None:
        super().__init__(constraint, OneOf(None))
        self.constraint = constraint


class ListOf(Constraint):
    """A list (a tuple too; never a string) of `length` items, or of at least `min_length`
    when `length` is None, each accepted by `item`."""

    def __init__(self, item: Constraint, length: int | None = None, min_length: int = 1) -> None:
        self.item, self.length, self.min_length = item, length, min_length

    def accepts(self, value: Any) -> bool:
        if not _is_list(value):
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return len(value) >= self.min_length and all(self.item.accepts(v) for v in value)

    def _words(self, plural: bool) -> str:
        items = self.item._words(plural=True)
        head = "lists" if plural else "a list"
        if self.length is not None:
            return f"{head} of {self.length} {items}"
        if self.min_length == 1:
            return f"{'non-empty lists' if plural else 'a non-empty list'} of {items}"
        if self.min_length > 1:
            return f"{head} of at least {self.min_length} {items}"
        return f"{head} of {items}"


class Probabilities(Constraint):
    """Non-negative finite weights that sum to 1 (within `tol`), `length` of them if given."""

    def __init__(self, length: int | None = None, tol: float = 1e-6) -> None:
        self.length, self.tol = length, tol
        self._items = ListOf(Real(low=0), length=length)

    def accepts(self, value: Any) -> bool:
        return self._items.accepts(value) and abs(sum(value) - 1.0) <= self.tol

    def _words(self, plural: bool) -> str:
        size = f"{self.length} " if self.length is not None else ""
        head = "lists" if plural else "a list"
        return f"{head} of {size}non-negative weights that sum to 1"


# a split fraction (validation, test): the one rule wherever a data set splits its rows
FRACTION = Real(0, 1, low_open=True, high_open=True)


def check_fractions(
    settings: Mapping[str, Any], val: str = "val_fraction", test: str = "test_fraction"
) -> None:
    """The rule across split fractions, for a `check_together`: val + test < 1 (some rows are
    left to train on)."""
    v, t = settings.get(val), settings.get(test)
    if FRACTION.accepts(v) and FRACTION.accepts(t) and v + t >= 1:
        raise ConfigError(test, t, f"a number in (0, 1) with {val} + {test} < 1 ({val}={v})")


def declare(
    constraints: Mapping[str, Constraint],
    together: Callable[[Mapping[str, Any]], None] | None = None,
) -> Callable[[Callable], Callable]:
    """The declaration for a function a config names as `_target_` (a truth such as
    `gaussian_mixture`): `@declare({"dim": Integer(low=1)})` sets its `constraints` (and its
    `check_together`), checked at the boundary as a class's are."""

    def mark(function: Callable) -> Callable:
        function.constraints = dict(constraints)  # type: ignore[attr-defined]
        if together is not None:
            function.check_together = together  # type: ignore[attr-defined]
        return function

    return mark


def declared(target: Any) -> dict[str, Constraint]:
    """A class's declared constraints, its bases' included (a subclass's entry wins); a
    function's from `declare`."""
    if not isinstance(target, type):
        return dict(getattr(target, "constraints", None) or {})
    merged: dict[str, Constraint] = {}
    for klass in reversed(getattr(target, "__mro__", (target,))):
        merged.update(vars(klass).get("constraints", None) or {})
    return merged


def check_declared(
    constraints: Mapping[str, Constraint], settings: Mapping[str, Any], path: str
) -> None:
    """The first setting a constraint refuses, as `ConfigError("<path>.<key>", ...)`."""
    for key, constraint in constraints.items():
        if key in settings and not constraint.accepts(settings[key]):
            where = f"{path}.{key}" if path else key
            raise ConfigError(where, settings[key], constraint.describe()).at_top_level()


def check(target: Any, settings: Mapping[str, Any], path: str) -> None:
    """Check `settings` (a config node's, resolved) against what `target` declares: each
    setting's constraint, then `target.check_together` on the defaults overlaid with them."""
    check_declared(declared(target), settings, path)
    together = getattr(target, "check_together", None)
    if callable(together):
        try:
            together({**defaults(target), **settings})
        except ConfigError as error:
            raise (error.under(path) if path else error) from None


def make(target: Any, /, **settings: Any) -> Any:
    """`target(**settings)` after the checks `build` makes at the boundary, for Python callers:
    `make(GaussianMixture, n_components=0)` raises `ConfigError("n_components", 0, ...)`."""
    check(target, settings, "")
    return target(**settings)


def defaults(target: Any) -> dict[str, Any]:
    """The defaults of `target.__init__`'s keyword settings."""
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in parameters.items() if p.default is not inspect.Parameter.empty}


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
