"""Errors a user can fix: printed as one line, never as a traceback."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """Bad input or settings; the message alone tells the user what to change."""


class RunInterrupted(UserError):
    """Ctrl+C: the run stopped cleanly (metrics.json says so) and can be resumed."""


class ConfigError(UserError, ValueError):
    """One setting is invalid: names the setting, the bad value and what would be valid."""

    def __init__(self, key: str, value: Any, valid: str) -> None:
        self.key, self.value, self.valid = key, value, valid
        self.top_level = False
        super().__init__(f"{key}={_show(value)} is invalid: expected {valid}")

    def at_top_level(self) -> ConfigError:
        """Mark `key` as a full config path already (e.g. `optimizer.lr` checked by a fit)."""
        self.top_level = True
        return self

    def under(self, prefix: str) -> ConfigError:
        """The same error with the setting's full config path, e.g. `model.n_components`."""
        if self.top_level:
            return self
        return ConfigError(f"{prefix}.{self.key}", self.value, self.valid)


def first_line(error: BaseException) -> str:
    """`Type: first line of the message`, enough to tell failures apart in a table or a cell."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)
