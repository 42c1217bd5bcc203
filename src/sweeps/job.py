"""One job of a multirun: its failure is recorded instead of ending the sweep, and DDP
children that Lightning starts as new processes run this job alone, not the whole sweep."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, read_write

from src.errors import UserError, first_line
from src.sweeps.records import mark_failed

log = logging.getLogger(__name__)
CONFIG_FLAGS = {"-cp": "--config-path", "-cn": "--config-name", "-cd": "--config-dir"}


def run_sweep_job(task: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> Any:
    """Run `task(cfg)`; on failure record it, print one stderr line and go on (the job log
    keeps the traceback). A sweeper gets the optimized metric, or the worst value (±inf) when
    the job failed or the metric is NaN: Optuna would abort the whole study on an exception or a
    NaN, while ±inf keeps it going and steers the sampler away from that region."""
    hydra_cfg = HydraConfig.get()
    try:
        with single_run_argv():
            metrics = task(cfg)
    except Exception as error:
        return _failed(hydra_cfg, error)
    name = cfg.get("optimized_metric")
    if name is not None and name not in metrics:  # a sweeper cannot rank this trial
        logged = ", ".join(k for k in sorted(metrics) if "/" in k)
        return _failed(
            hydra_cfg, UserError(f"optimized_metric={name} was not logged; the run logged {logged}")
        )
    value = metrics.get(name)
    return value if not isinstance(value, float) or math.isfinite(value) else _worst(hydra_cfg)


def _failed(hydra_cfg: DictConfig, error: Exception) -> float:
    """Record the failed job, print its one line, and give the sweeper the worst value."""
    mark_failed(hydra_cfg.runtime.output_dir, error)
    log.error("job failed: %s", error, exc_info=not isinstance(error, UserError))
    overrides = " ".join(hydra_cfg.overrides.task)
    print(f"error: job {hydra_cfg.job.num} ({overrides}): {first_line(error)}", file=sys.stderr)
    return _worst(hydra_cfg)


def _worst(hydra_cfg: DictConfig) -> float:
    return -math.inf if hydra_cfg.sweeper.get("direction") == "maximize" else math.inf


@contextmanager
def single_run_argv() -> Iterator[None]:
    """Lightning's DDP launcher (`strategy=ddp`) re-runs `sys.argv` for ranks > 0 with
    `hydra.run.dir=<HydraConfig run.dir>` appended. In a sweep that would re-run the whole sweep
    in every child; point it at this job alone: its overrides, single-run mode, its directory."""
    hydra_cfg = HydraConfig.get()
    argv = [sys.argv[0], *config_flags(sys.argv[1:]), *hydra_cfg.overrides.task, "hydra.mode=RUN"]
    with read_write(hydra_cfg):  # this job's copy: Hydra restores its own after the job
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved


def config_flags(args: list[str]) -> list[str]:
    """The command's `--config-path`, `--config-name` and `--config-dir` (or `-cp`, `-cn`,
    `-cd`), as `--flag=value`, read as Hydra's command line defines them; in a launcher's worker
    (joblib, submitit) argv is the worker's own command and holds none."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    for short, flag in CONFIG_FLAGS.items():
        parser.add_argument(short, flag, dest=flag)
    try:
        known = vars(parser.parse_known_args(args)[0])
    except (argparse.ArgumentError, SystemExit):  # a flag without its value: Hydra refused it
        return []
    return [f"{flag}={value}" for flag, value in known.items() if value]
