"""A Hydra callback: the launcher's and the sweeper's settings (`hydra.launcher.n_jobs=0`,
`hydra.sweeper.n_trials=-2`) are checked against the declared table
(src/utils/library_constraints.py) before the sweep starts, so a bad one stops in one line,
exit code 2, instead of a traceback from inside joblib or Optuna."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.errors import ConfigError
from src.utils.cli import EXIT_USER_ERROR


class SweepSettingsCheck(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from src.utils.instantiate import check_settings_of

        for part in ("launcher", "sweeper"):
            node = OmegaConf.select(config, f"hydra.{part}")
            if node is None or "_target_" not in node:
                continue
            settings = {
                k: v
                for k, v in OmegaConf.to_container(node, resolve=False).items()
                # interpolations (resolved by Hydra later) and nested nodes (the sampler) aside
                if k != "_target_" and not isinstance(v, dict) and "${" not in str(v)
            }
            try:
                check_settings_of(str(node._target_), settings, f"hydra.{part}")
            except ConfigError as error:
                print(f"error: {error}", file=sys.stderr, flush=True)
                sys.exit(EXIT_USER_ERROR)
