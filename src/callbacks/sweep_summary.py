"""Hydra callback: the sweep's summary table, kept current after every job.

Registered in conf/hydra/default.yaml. Acts only in multirun mode (`-m`). Each job writes its
record (overrides, status, error, final metrics, run directory) and rebuilds `summary.csv` /
`summary.md` in the sweep directory, so a killed sweep still leaves the table of the jobs that
finished. At the end of the sweep the process exits with status 1 when any of its jobs failed;
with `fail_fast=true` it stops at the first failure.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src.sweeps.records import (
    RECORD,
    first_line,
    read_metrics,
    read_record,
    sweep_records,
    write_record,
)
from src.sweeps.summary import write_summary

SQLITE = "sqlite:///"


class SweepSummary(Callback):
    def __init__(self) -> None:
        self.started = 0.0

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create the sweep directory and the Optuna database's folder, which the sweeper
        opens before any job runs (SQLite cannot create a folder)."""
        self.started = time.time()
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        storage = config.hydra.sweeper.get("storage")
        if isinstance(storage, str) and storage.startswith(SQLITE):
            Path(storage[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _writes(config):
            write_record(
                config.hydra.runtime.output_dir,
                job=config.hydra.job.num,
                overrides=list(config.hydra.overrides.task),
                status="running",
                error="",
                metrics={},
                run_dir=config.hydra.runtime.output_dir,
                started=time.time(),
            )

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not _writes(config):
            return
        job_dir = Path(config.hydra.runtime.output_dir)
        failed = read_record(job_dir / RECORD).get("status") == "failed"  # set by the job
        fields: dict[str, Any] = {"status": "failed" if failed else "ok"}
        if job_return.status == JobStatus.FAILED:
            fields = {"status": "failed", "error": first_line(job_return._return_value)}
        write_record(job_dir, metrics=read_metrics(job_dir), **fields)
        write_summary(config.hydra.sweep.dir, *_goal(config))
        if fields["status"] == "failed" and config.get("fail_fast"):
            job = config.hydra.job.num
            print(f"error: job {job} failed; fail_fast=true stops the sweep", file=sys.stderr)
            sys.exit(1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        write_summary(sweep_dir, *_goal(config))
        ours = [r for r in sweep_records(sweep_dir) if r.get("started", 0) >= self.started]
        failed = [r for r in ours if r.get("status") != "ok"]
        print(f"sweep summary: {sweep_dir / 'summary.md'}", flush=True)
        if failed:
            print(f"error: {len(failed)} of {len(ours)} jobs failed", file=sys.stderr)
            sys.exit(1)


def _writes(config: DictConfig) -> bool:
    """Multirun jobs only, and only the first task of a multi-task (SLURM DDP) job."""
    in_sweep = config.hydra.get("mode") == RunMode.MULTIRUN
    return in_sweep and os.environ.get("SLURM_PROCID", "0") == "0"


def _goal(config: DictConfig) -> tuple[str, bool]:
    """The optimized metric and whether it is maximised (an Optuna `direction: maximize`)."""
    direction = config.hydra.sweeper.get("direction")
    return str(config.get("optimized_metric", "val/nll")), direction == "maximize"
