"""A Hydra callback: the run (or sweep) has started, so stderr, held back while Hydra composed
the config (`src.utils.cli.hydra_entry`), flows again."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.utils.cli import release_stderr


class ReleaseStderr(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        release_stderr()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        release_stderr()
