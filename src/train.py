"""Train a density model: `python -m src.train [group=option ...] [key=value ...]`.

`train(cfg)` is the plain, testable function; `main` is the thin Hydra wrapper. Torch and
Lightning are imported inside `train`, so `--help`, `--cfg job` and config errors answer fast.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hydra
from omegaconf import DictConfig

from src.errors import ConfigError, RunInterrupted, UserError
from src.utils.cli import hydra_entry, run_cli
from src.utils.runs import continued_config, run_identity
from src.utils.timing import mark

mark("interpreter")  # the interpreter, Hydra and OmegaConf are loaded

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Fit, test on the final weights, write `metrics.json`; returns the final metrics.

    With `resume=<run dir>` (or a `ckpt_path` inside a run dir) it continues that run in place.
    """
    import pytorch_lightning as pl

    from src.build import (
        build_datamodule,
        build_module,
        build_trainer,
        load_weights,
        quiet_known_noise,
    )
    from src.utils.hparams import flat_hparams, log_hparams
    from src.utils.metrics import as_floats, print_metrics, write_metrics

    mark("imports")
    quiet_known_noise()
    cfg = continued_config(cfg)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        raise ConfigError("seed", cfg.seed, "an integer in [0, 2³²)")
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    identity = run_identity(cfg, None)
    log.info(
        "run %s, seed %s, in %s",
        " ".join(
            f"{k}={identity[k]}"
            for k in ("model", "data", "fit", "study", "experiment")
            if k in identity
        ),
        cfg.seed,
        cfg.paths.output_dir,
    )
    datamodule = build_datamodule(cfg)
    mark("data")
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg)
    if cfg.get("ckpt_path"):
        load_weights(module, cfg.ckpt_path, cfg)  # refuses another model's checkpoint in one line
    mark("model")

    start = time.perf_counter()
    with stopped_cleanly(trainer, cfg):
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True
        )
    fit_seconds = time.perf_counter() - start
    mark("fit")
    fit_metrics = dict(trainer.callback_metrics)
    with stopped_cleanly(trainer, cfg):
        trainer.test(module, datamodule=datamodule, verbose=False)
    mark("test")

    metrics = as_floats(fit_metrics | trainer.callback_metrics | {"fit_seconds": fit_seconds})
    broken = [
        k for k, v in metrics.items() if k.startswith(("val/", "test/")) and not math.isfinite(v)
    ]
    labels = {"status": "failed" if broken else "completed"} | run_identity(cfg, trainer)
    labels |= getattr(module, "run_labels", {})  # text, e.g. an estimator's name
    for logger in trainer.loggers:
        logger.log_metrics({"fit_seconds": fit_seconds}, step=trainer.global_step)
    chosen = {k: str(v) for k, v in identity.items() if k != "overrides"}  # first in HPARAMS
    swept = {f"override/{k}": str(v) for k, v in identity["overrides"].items()}
    log_hparams(trainer.loggers, chosen | swept | flat_hparams(cfg), metrics)
    log.info("status %s; final metrics %s", labels["status"], metrics)
    if trainer.is_global_zero:
        print_metrics(metrics, cfg.paths.output_dir)  # shown first: a failed write loses nothing
        write_metrics(cfg.paths.output_dir, labels | metrics)
    mark("writes")
    if broken:
        raise UserError(
            f"the run failed: its final {broken[0]} is {metrics[broken[0]]} (status failed in "
            f"{cfg.paths.output_dir}/metrics.json); lower the learning rate or check the data"
        )
    return labels | metrics


@contextmanager
def stopped_cleanly(trainer, cfg: DictConfig) -> Iterator[None]:
    """Ctrl+C, in training or in the test stage, leaves metrics.json with status interrupted
    and the resume command (Lightning turns the KeyboardInterrupt into a graceful SystemExit)."""
    from src.utils.metrics import as_floats, write_metrics

    try:
        yield
    except SystemExit:
        if not trainer.interrupted:
            raise
        if trainer.is_global_zero:
            metrics = {"status": "interrupted"} | as_floats(trainer.callback_metrics)
            write_metrics(cfg.paths.output_dir, metrics)
        raise RunInterrupted(
            f"interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"continue with: python -m src.train resume={cfg.paths.output_dir}"
        ) from None


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    """Returns the metric named by `optimized_metric`, for Hydra's sweepers (Optuna). In a
    sweep (-m) a failed job is recorded and the others go on (src/sweeps/job.py)."""
    from src.sweeps.job import in_multirun, run_sweep_job

    mark("config")
    if in_multirun():
        return run_sweep_job(train, cfg)
    metrics = run_cli(train, cfg)
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    hydra_entry(main)
