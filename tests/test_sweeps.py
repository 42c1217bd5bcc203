"""Sweeps: the summary table, failed jobs, Optuna studies that resume, launchers."""

from __future__ import annotations

import csv
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from src.sweeps.records import RECORD, first_line, sweep_records, write_record
from src.sweeps.summary import best_index, table, to_markdown, write_summary
from tests.conftest import CONF_DIR, run_module

TINY = ["debug=fast"]  # one batch per stage: the sweep machinery is under test, not the models


def sweep(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return run_module("src.train", *args, f"paths.log_dir={cwd / 'out'}", cwd=cwd, timeout=timeout)


@pytest.fixture
def in_process(tmp_path, monkeypatch, capsys):
    """`python -m src.train <args>` run inside the test process (no second ~5 s of imports);
    returns (exit code, stderr). Hydra's global state and logging are put back afterwards."""
    import logging

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from src.train import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(*args: str) -> tuple[int, str]:
        out = f"paths.log_dir={tmp_path / 'out'}"
        argv = ["src/train.py", f"--config-path={CONF_DIR}", *args, out]
        monkeypatch.setattr(sys, "argv", argv)
        code = 0
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            GlobalHydra.instance().clear()
            HydraConfig.instance().cfg = None
            root.handlers[:], root.level = handlers, level
        return code, capsys.readouterr().err

    return run


def summary_rows(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as handle:
        return list(csv.DictReader(handle))


def only(pattern: str, root: Path) -> Path:
    (found,) = root.glob(pattern)
    return found


# --- the table, without running anything -------------------------------------------------


def record(job: int, status: str, nll: float | None = None, **extra) -> dict:
    metrics = {} if nll is None else {"val/nll": nll, "test/nll": nll + 0.1}
    return {"job": job, "status": status, "overrides": [f"seed={job}"], "metrics": metrics} | extra


def test_best_row_is_the_lowest_finite_metric_of_a_finished_job():
    rows = [
        record(0, "ok", 1.5),
        record(1, "failed", 0.1),  # metrics of a failed job never win
        record(2, "ok", math.nan),
        record(3, "ok", 1.2),
        record(4, "running"),
    ]
    assert best_index(rows, "val/nll") == 3
    assert best_index(rows, "val/nll", maximize=True) == 0
    assert best_index([record(0, "failed")], "val/nll") is None
    flat = table(rows, "val/nll", maximize=False)
    assert [r["best"] for r in flat] == ["", "", "", "*", ""]
    assert list(flat[0])[:5] == ["best", "job", "status", "overrides", "val/nll"]
    assert list(flat[0])[-2:] == ["error", "run_dir"]


def test_markdown_escapes_cells_and_states_the_goal():
    rows = table([record(0, "failed", error="ValueError: a|b")], "val/nll", maximize=False)
    text = to_markdown(rows, "val/nll", maximize=False)
    assert "lowest `val/nll`" in text and "a\\|b" in text
    assert text.count("\n| ") == 2  # header + one row


def test_summary_is_rebuilt_from_every_job_record(tmp_path):
    for job, nll in enumerate([2.0, 1.0]):
        job_dir = tmp_path / str(job)
        job_dir.mkdir()
        write_record(job_dir, **record(job, "ok", nll), started=job, run_dir=str(job_dir))
    write_record(tmp_path / "1", status="failed", error="boom")  # a later write merges
    assert [r["status"] for r in sweep_records(tmp_path)] == ["ok", "failed"]
    rows = write_summary(tmp_path, "val/nll")
    assert [r["best"] for r in rows] == ["*", ""]
    assert summary_rows(tmp_path)[1]["error"] == "boom"
    assert (tmp_path / "summary.md").read_text().count("| * |") == 1


def test_first_line_names_the_error_type():
    assert first_line(ValueError("bad value\nmore detail")) == "ValueError: bad value"
    assert first_line(KeyError()) == "KeyError"


def test_slurm_launcher_config_composes_with_documented_settings():
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    for key in ("partition", "timeout_min", "gpus_per_node", "tasks_per_node", "array_parallelism"):
        assert key in launcher


# --- real sweeps from the command line ---------------------------------------------------


def test_failed_job_is_recorded_and_the_others_still_run(in_process, tmp_path):
    code, stderr = in_process("-m", "model.n_components=0,3", *TINY)
    assert code == 1, stderr
    assert "Traceback" not in stderr
    assert "model.n_components=0 is invalid" in stderr
    assert "1 of 2 jobs failed" in stderr
    sweep_dir = only("out/*/multiruns/*", tmp_path)
    failed, ok = summary_rows(sweep_dir)
    assert failed["status"] == "failed" and failed["error"].startswith("ConfigError: model.")
    assert ok["status"] == "ok" and ok["best"] == "*" and float(ok["val/nll"]) > 0
    assert "model.n_components=3" in ok["overrides"]
    # each job has its own directory, config and log
    assert {Path(r["run_dir"]).name for r in (failed, ok)} == {"0", "1"}
    for job in ("0", "1"):
        assert (sweep_dir / job / ".hydra" / "overrides.yaml").is_file()
        assert (sweep_dir / job / "debug.log").is_file()
        assert (sweep_dir / job / RECORD).is_file()
    assert (sweep_dir / "1" / "metrics.json").is_file()
    assert "* |" in (sweep_dir / "summary.md").read_text()


def optuna_trials(db: Path) -> list[tuple[int, str, float | None]]:
    query = (
        "SELECT t.number, t.state, v.value FROM trials t"
        " LEFT JOIN trial_values v ON v.trial_id = t.trial_id ORDER BY t.number"
    )
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def test_optuna_study_survives_a_failed_trial_and_resumes(in_process, tmp_path):
    args = ["hparams_search=flow1d_optuna", "hydra.sweeper.n_trials=1", *TINY]
    assert in_process(*args)[0] == 0
    study_dir = only("out/debug/optuna/flow1d_seed003", tmp_path)
    db = study_dir / "optuna.db"
    ((number, state, value),) = optuna_trials(db)
    assert (number, state) == (0, "COMPLETE") and 0 < value < 10
    # re-run (here with a setting that fails): the same study continues with trial 1, which
    # counts as the worst value for the sampler; the sweep exits with 1
    code, stderr = in_process(*args, "model.n_components=0")
    assert code == 1 and "Using an existing study" in stderr and "1 of 1 jobs failed" in stderr
    number, state, value = optuna_trials(db)[1]
    assert (number, state) == (1, "COMPLETE") and value > 1e300
    rows = summary_rows(study_dir)  # one table for the whole study, every invocation
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[0]["best"] == "*" and rows[0]["run_dir"] != rows[1]["run_dir"]
    assert all("optimizer.lr=" in r["overrides"] for r in rows)


@pytest.mark.slow
def test_fail_fast_stops_at_the_first_failed_job(tmp_path):
    ran = sweep("-m", "model.n_components=0,3", "fail_fast=true", *TINY, cwd=tmp_path)
    assert ran.returncode == 1
    sweep_dir = only("out/*/multiruns/*", tmp_path)
    assert [r["status"] for r in summary_rows(sweep_dir)] == ["failed"]
    assert not (sweep_dir / "1").exists()


@pytest.mark.slow
def test_every_experiment_is_swept_once(tmp_path):
    experiments = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
    ran = sweep("-m", f"experiment={','.join(experiments)}", *TINY, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    rows = [r for d in (tmp_path / "out").glob("*/multiruns/*") for r in summary_rows(d)]
    assert len(rows) == len(experiments)
    assert all(r["status"] == "ok" for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("search", ["dmol_optuna", "gmm_optuna", "realnvp_optuna"])
def test_model_optuna_search_runs(search, tmp_path):
    ran = sweep(f"hparams_search={search}", "hydra.sweeper.n_trials=2", *TINY, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    (db,) = (tmp_path / "out").glob("*/optuna/*/optuna.db")
    assert [state for _, state, _ in optuna_trials(db)] == ["COMPLETE", "COMPLETE"]
    assert len(summary_rows(db.parent)) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "launcher",
    [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=submitit_local"]],
    ids=["joblib", "submitit"],
)
def test_parallel_launchers_give_each_job_its_own_directory(launcher, tmp_path):
    ran = sweep("-m", *launcher, "seed=0,1", "model.n_components=0,3", *TINY, cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr[-3000:]  # the two n_components=0 jobs fail
    sweep_dir = only("out/*/multiruns/*", tmp_path)
    rows = summary_rows(sweep_dir)
    assert sorted(r["status"] for r in rows) == ["failed", "failed", "ok", "ok"]
    assert len({r["run_dir"] for r in rows}) == 4
    assert sum(r["best"] == "*" for r in rows) == 1
