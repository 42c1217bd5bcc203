"""What `python -m src.train` / `src.eval` do around the plain function: one-line user errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from src.errors import UserError

EXIT_USER_ERROR = 2


def run_cli(task: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> dict[str, Any]:
    """Run `task(cfg)`; a `UserError` ends the process with its message as the last stderr line."""
    try:
        return task(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
