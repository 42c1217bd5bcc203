"""A Hydra callback: `resume=` is checked before Hydra creates anything, so a path that is not a
run, or a setting a resume cannot change, is refused in one line (exit code 2) without leaving
a `resumed/<time>/` directory behind, or creating the path it was given."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.errors import UserError
from src.utils.runs import RESUMABLE, RESUME_WHY, changed_settings, run_dir_of


class ResumeCheck(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.get("resume"):
            return
        try:
            if config.get("ckpt_path"):
                raise UserError("give resume=<run dir> or ckpt_path=<checkpoint>, not both")
            run_dir_of(config.resume, "resume")
            changed_settings(config, RESUMABLE, f"resume={config.resume}", RESUME_WHY)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)
