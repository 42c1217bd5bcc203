"""Hydra callback: the sweep's summary table, kept current after every job.

Registered in conf/hydra/default.yaml. Acts only in multirun mode (`-m`). Each job writes its
record (status, error, Optuna trial number) and rebuilds the sweep directory's tables from the
run directories (`summary.csv`/`.md` per job, `comparison.csv`/`.md` over seeds;
src/sweeps/summary.py), so a killed sweep still leaves the tables of the jobs that finished. At
the end of the sweep the process exits with status 1 when any of its jobs failed; with
`fail_fast=true` it stops at the first failure.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from src.errors import first_line
from src.sweeps.aggregate import MARKDOWN as COMPARISON
from src.sweeps.records import RECORD, read_record, sweep_records, write_record
from src.sweeps.summary import MARKDOWN, Optimized, write_summary
from src.utils.optuna_storage import SQLITE, trials_so_far

TRIAL_OFFSET = ".trial_offset"  # in an Optuna study's directory: trials before this command


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
        if _optuna(config):
            offset = Path(config.hydra.sweep.dir) / TRIAL_OFFSET
            sweeper = config.hydra.sweeper
            done = trials_so_far(sweeper.get("storage"), sweeper.get("study_name"))
            offset.write_text(f"{done}\n")

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not _writes(config):
            return
        job = config.hydra.job.num
        trial = None
        if _optuna(config):  # jobs may run in other processes: the offset comes from a file
            trial = int((Path(config.hydra.sweep.dir) / TRIAL_OFFSET).read_text()) + job
        write_record(
            config.hydra.runtime.output_dir,
            job=job,
            trial=trial,
            status="running",
            error="",
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
            fields = {"status": "failed", "error": job_error(job_return)}
        write_record(job_dir, **fields)
        write_summary(config.hydra.sweep.dir, _optimized(config))
        if fields["status"] == "failed" and config.get("fail_fast"):
            job = config.hydra.job.num
            print(f"error: job {job} failed; fail_fast=true stops the sweep", file=sys.stderr)
            sys.exit(1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        write_summary(sweep_dir, _optimized(config))
        ours = [r for r in sweep_records(sweep_dir) if r.get("started", 0) >= self.started]
        failed = [r for r in ours if r.get("status") != "ok"]
        print(f"sweep summary: {sweep_dir / MARKDOWN}", flush=True)
        print(f"over seeds: {sweep_dir / COMPARISON}", flush=True)
        if failed:
            print(f"error: {len(failed)} of {len(ours)} jobs failed", file=sys.stderr)
            sys.exit(1)


def job_error(job_return: JobReturn) -> str:
    """A failed job's exception in one line: Hydra's public `return_value` re-raises it (after
    a line of its own on stderr, left out: the sweep prints its own)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            _ = job_return.return_value
    except Exception as error:
        return first_line(error)
    return "failed"


def _writes(config: DictConfig) -> bool:
    """Multirun jobs only, and only the first task of a multi-task (SLURM DDP) job."""
    in_sweep = config.hydra.get("mode") == RunMode.MULTIRUN
    return in_sweep and os.environ.get("SLURM_PROCID", "0") == "0"


def _optuna(config: DictConfig) -> bool:
    return "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower()


def _optimized(config: DictConfig) -> Optimized | None:
    """An Optuna sweep's metric and whether it is maximised (`direction: maximize`)."""
    if not _optuna(config):
        return None
    maximize = config.hydra.sweeper.get("direction") == "maximize"
    return str(config.get("optimized_metric", "val/nll")), maximize
