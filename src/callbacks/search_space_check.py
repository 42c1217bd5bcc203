"""A Hydra callback: an Optuna search space is checked by the sweeper's own parser before the
study starts, so one that cannot be sampled (`interval(0.2, 0.005)`, `interval(-1, 1)` on a log
scale, a choice of lists) stops in one line naming the parameter, exit code 2, instead of a
traceback from inside the sweeper."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SearchSpaceCheck(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        if "optuna" not in str(sweeper.get("_target_", "")).lower():
            return
        from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

        for key, value in (sweeper.get("params") or {}).items():
            try:
                create_params_from_overrides([f"{key}={value}"])
            except Exception as error:  # the sweeper's parser or Optuna's distributions
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                print(
                    f"error: hydra.sweeper.params.{key}={value} cannot be sampled: {reason}",
                    file=sys.stderr,
                    flush=True,
                )
                sys.exit(2)
