"""A Hydra callback: refuse an output directory that cannot be written, in one line, before
Hydra's own attempt fails with a paragraph that names no setting."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class OutputDirCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _create(config.hydra.run.dir, config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _create(config.hydra.sweep.dir, config)


def _create(directory: str, config: DictConfig) -> None:
    """Create the directory Hydra is about to use (as it would), or exit naming the setting."""
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        log_dir = config.get("paths", {}).get("log_dir", directory)
        print(
            f"error: paths.log_dir={log_dir} is invalid: expected a directory this user can "
            f"create and write ({error.strerror}: {directory})",
            file=sys.stderr,
            flush=True,
        )
        sys.exit(2)
