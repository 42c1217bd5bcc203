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

from src.errors import RunInterrupted, UserError
from src.utils.cli import hydra_entry, run_cli
from src.utils.resolvers import register_resolvers
from src.utils.timing import mark

mark("interpreter")  # the interpreter, Hydra and OmegaConf are loaded
register_resolvers()

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, test on the final weights, write `metrics.json`; returns the final metrics.

    With `resume=<run dir>` it continues that run in place, as the run it is (src/utils/runs.py).
    """
    from src.build import assemble, quiet_known_noise
    from src.utils.hparams import flat_hparams, log_hparams
    from src.utils.metrics import as_floats, print_metrics, write_metrics
    from src.utils.runs import RunIdentity, continued_run

    mark("imports")
    quiet_known_noise()
    continued = continued_run(cfg)
    if continued is not None and continued.done is not None:
        print(
            f"run {continued.cfg.paths.output_dir} is complete; nothing changed (raise "
            f"trainer.max_epochs or trainer.max_steps to train it further)",
            flush=True,
        )
        return continued.done
    if continued is not None:
        cfg, identity, logged = continued.cfg, continued.identity, continued.logged
    else:
        identity, logged = RunIdentity.of_command(cfg), {}
    verb = "resuming" if continued is not None else "run"
    log.info("%s %s, seed %s, in %s", verb, identity.describe(), cfg.seed, cfg.paths.output_dir)
    run = assemble(cfg, identity, stage="fit")
    trainer, module, datamodule = run.trainer, run.module, run.datamodule
    mark("model")

    start = time.perf_counter()
    with stopped_cleanly(trainer, cfg, identity):
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True
        )
    fit_seconds = time.perf_counter() - start
    mark("fit")
    fit_metrics = logged | dict(trainer.callback_metrics)  # a resume with no epoch left: logged
    with stopped_cleanly(trainer, cfg, identity):
        trainer.test(module, datamodule=datamodule, verbose=False)
    mark("test")

    metrics = as_floats(fit_metrics | trainer.callback_metrics | {"fit_seconds": fit_seconds})
    broken = [
        k for k, v in metrics.items() if k.startswith(("val/", "test/")) and not math.isfinite(v)
    ]
    labels = {"status": "failed" if broken else "completed"} | identity.labels()
    labels |= checkpoint_facts(cfg, trainer) | module.run_labels
    if datamodule.weight_column is not None:  # the column that weighted every fit and metric
        labels["weights"] = datamodule.weight_column
    for logger in trainer.loggers:
        logger.log_metrics({"fit_seconds": fit_seconds}, step=trainer.global_step)
    chosen = {k: str(v) for k, v in identity.labels().items() if k != "overrides"}
    swept = {f"override/{k}": str(v) for k, v in identity.overrides.items()}
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


def checkpoint_facts(cfg: DictConfig, trainer) -> dict[str, Any]:
    """The checkpoint the test metrics come from and its counts (under ddp_spawn this process's
    trainer stays at 0), with the commit that ran it."""
    from pathlib import Path

    import torch

    from src.utils.runs import LAST, git_commit

    last = Path(cfg.paths.output_dir) / LAST
    epochs, step = trainer.current_epoch, trainer.global_step
    if last.is_file():
        saved = torch.load(last, map_location="cpu", weights_only=True, mmap=True)
        epochs, step = saved["epoch"] + 1, saved["global_step"]
    return {
        "git_commit": git_commit(),
        "checkpoint": str(last) if last.is_file() else None,
        "epochs": epochs,
        "global_step": step,
    }


@contextmanager
def stopped_cleanly(trainer, cfg: DictConfig, identity) -> Iterator[None]:
    """Ctrl+C, in training or in the test stage, leaves metrics.json with status interrupted
    and the resume command (Lightning turns the KeyboardInterrupt into a graceful SystemExit)."""
    from src.utils.metrics import as_floats, write_metrics

    try:
        yield
    except SystemExit:
        if not trainer.interrupted:
            raise
        if trainer.is_global_zero:
            metrics = {"status": "interrupted"} | identity.labels()
            metrics |= as_floats(trainer.callback_metrics)
            write_metrics(cfg.paths.output_dir, metrics)
        raise RunInterrupted(
            f"interrupted at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"continue with: python -m src.train resume={cfg.paths.output_dir}"
        ) from None


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> Any:
    """Returns the metric named by `optimized_metric`, for Hydra's sweepers (Optuna). In a
    sweep (-m) a failed job is recorded and the others go on (src/sweeps/job.py)."""
    from src.sweeps.job import run_sweep_job
    from src.utils.hydra_context import in_multirun

    mark("config")
    if in_multirun():
        return run_sweep_job(train, cfg)
    metrics = run_cli(train, cfg)
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    hydra_entry(main)
