"""densitylab. In Python: `from src import load_run; model, cfg = load_run(<run dir>)`.

`load_run` (src/build.py) is imported on first use, so the command-line entry points
(`python -m src.train`, ...) do not pay for Lightning before they parse their arguments.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_run"]


def __getattr__(name: str) -> Any:
    if name == "load_run":
        from src.build import load_run

        return load_run
    raise AttributeError(f"module 'src' has no attribute {name!r}")
