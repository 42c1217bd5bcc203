"""Sweeps: the summary table, failed jobs, Optuna studies that resume, launchers."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.errors import first_line
from src.sweeps.aggregate import compare
from src.sweeps.records import RECORD, sweep_records, write_record
from src.sweeps.runs import find_runs
from src.sweeps.summary import best_runs, setting_keys, table, to_markdown, write_summary
from tests.conftest import CONF_DIR, run_module
from tests.fake_runs import fake_run, scored

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


def summary_rows(sweep_dir: Path, name: str = "summary.csv") -> list[dict[str, str]]:
    with (sweep_dir / name).open() as handle:
        return list(csv.DictReader(handle))


def comparison_rows(sweep_dir: Path) -> list[dict[str, str]]:
    return summary_rows(sweep_dir, "comparison.csv")


def only(pattern: str, root: Path) -> Path:
    (found,) = root.glob(pattern)
    return found


# --- the table, without running anything -------------------------------------------------


def seed_sweep(root: Path) -> list:
    """A seed-only sweep whose val/nll is lowest for seed 0 and kl_gap lowest for seed 2
    (each seed draws its own splits, so val/nll says nothing across them)."""
    for seed, gap in enumerate([0.03, 0.02, 0.01]):
        fake_run(root, str(seed), "gmm", "mog2d", seed, scored(gap, 3.5, 3.0 + seed, seed))
    return find_runs([root])


def test_best_job_goes_by_kl_gap_per_data_set_never_by_val_nll(tmp_path):
    runs = seed_sweep(tmp_path)
    nll = {"status": "completed", "test/nll": 0.5, "val/nll": 0.1}
    fake_run(tmp_path, "3", "realnvp", "moons", 0, nll)  # no truth: by test/nll
    fake_run(tmp_path, "4", "realnvp", "moons", 1, scored(None, 0.4, 0.2, 1))
    fake_run(tmp_path, "5", "realnvp", "moons", 2, None)  # killed: no metrics
    failed = scored(None, 0.1, 0.1, 3)  # the lowest test/nll of all, but the run failed
    fake_run(tmp_path, "6", "realnvp", "moons", 3, failed, status="failed")
    runs = find_runs([tmp_path])
    assert [r["best"] for r in table(runs)] == ["", "", "*", "", "*", "", ""]
    assert best_runs(runs, compare(runs)) == {2, 4}


def test_each_setting_has_its_own_column_and_the_overrides_come_last(tmp_path):
    rows = table(seed_sweep(tmp_path), optimized=("val/nll", False))
    assert list(rows[0])[:8] == [
        "best",
        "job",
        "status",
        "model",
        "data",
        "fit",
        "seed",
        "paths.log_dir",
    ]
    assert list(rows[0])[8] == "val/nll"  # an Optuna sweep's optimized metric, first
    assert list(rows[0])[-3:] == ["error", "run_dir", "overrides"]
    assert [r["seed"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["overrides"] == "model=gmm data=mog2d seed=0 paths.log_dir=out"


def test_markdown_lists_shared_settings_once_escapes_cells_and_states_both_goals(tmp_path):
    runs = seed_sweep(tmp_path)
    write_record(tmp_path / "1", status="failed", error="ValueError: a|b")
    runs = find_runs([tmp_path])
    text = to_markdown(table(runs), setting_keys(runs), optimized=("val/nll", True))
    assert "lowest `test/kl_gap`" in text and "Optuna optimises `val/nll` (highest)" in text
    assert "Same in every job: model=gmm data=mog2d fit=mle paths.log_dir=out" in text
    assert "| best | job | status | seed |" in text and "a\\|b" in text
    assert text.count("\n| ") == 4  # header + three jobs


def test_tables_are_rebuilt_from_the_run_directories_and_job_records(tmp_path):
    seed_sweep(tmp_path)
    for job in range(3):
        write_record(tmp_path / str(job), job=job, status="ok", started=job)
    write_record(tmp_path / "1", status="failed", error="boom")  # a later write merges
    assert [r["status"] for r in sweep_records(tmp_path)] == ["ok", "failed", "ok"]
    rows = write_summary(tmp_path)
    assert [(r["status"], r["best"]) for r in rows] == [("ok", ""), ("failed", ""), ("ok", "*")]
    assert summary_rows(tmp_path)[1]["error"] == "boom"
    assert (tmp_path / "summary.md").read_text().count("| * |") == 1
    (over_seeds,) = comparison_rows(tmp_path)  # the failed seed 1 is counted, not averaged
    assert (over_seeds["seeds"], over_seeds["n_failed"]) == ("0 2", "1")
    assert float(over_seeds["test/kl_gap:mean"]) == pytest.approx(0.02)
    # the mean of 0.03 and 0.01 is that of all three seeds too; their se is not (0.0058)
    assert float(over_seeds["test/kl_gap:se"]) == pytest.approx(0.01)  # sd 0.01·√2, n = 2


def test_first_line_names_the_error_type():
    assert first_line(ValueError("bad value\nmore detail")) == "ValueError: bad value"
    assert first_line(KeyError()) == "KeyError"


def test_slurm_launcher_config_composes_with_documented_settings():
    """The project's settings (conf/hydra/launcher/slurm.yaml) win over submitit's defaults
    (e.g. its array_parallelism 16 and mem_gb 8 over submitit's 256 and None)."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher)
    assert launcher["_target_"].endswith("SlurmLauncher")
    ours = yaml.safe_load((Path(CONF_DIR) / "hydra" / "launcher" / "slurm.yaml").read_text())
    ours.pop("defaults")
    assert {key: launcher[key] for key in ours} == ours


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
    assert ok["model.n_components"] == "3" and "model.n_components=3" in ok["overrides"]
    over_seeds = {r["model.n_components"]: r for r in comparison_rows(sweep_dir)}
    assert (over_seeds["0"]["n_seeds"], over_seeds["0"]["n_failed"]) == ("0", "1")
    assert (over_seeds["3"]["n_seeds"], over_seeds["3"]["n_failed"]) == ("1", "0")
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
    assert code == 1 and "1 of 1 jobs failed" in stderr
    number, state, value = optuna_trials(db)[1]  # trial 1 of the same study: it continued
    assert (number, state) == (1, "COMPLETE") and value > 1e300
    rows = summary_rows(study_dir)  # one table for the whole study, every invocation
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[0]["best"] == "*" and rows[0]["run_dir"] != rows[1]["run_dir"]
    # Hydra numbers each command's jobs from 0; Optuna numbers the study's trials
    assert [(r["job"], r["trial"]) for r in rows] == [("0", "0"), ("0", "1")]
    assert all("optimizer.lr=" in r["overrides"] for r in rows)
    # the resumed study's sampler continued its sequence: trial 1 is not trial 0 again
    assert rows[0]["optimizer.lr"] != rows[1]["optimizer.lr"]


def test_a_trial_without_its_optimized_metric_fails_in_one_line(in_process, tmp_path):
    """Before, Optuna got None back and the study ended in a traceback."""
    args = ["hparams_search=flow1d_optuna", "hydra.sweeper.n_trials=1", *TINY]
    code, stderr = in_process(*args, "optimized_metric=val/missing")
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 2 and errors[1] == "error: 1 of 1 jobs failed"
    assert "optimized_metric=val/missing was not logged; the run logged " in errors[0]
    assert "val/nll" in errors[0].rpartition("logged")[2]
    ((_, state, value),) = optuna_trials(
        only("out/debug/optuna/flow1d_seed003", tmp_path) / "optuna.db"
    )
    assert state == "COMPLETE" and value > 1e300  # the worst value: the study goes on


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
    over_seeds = {r["model.n_components"]: r for r in comparison_rows(sweep_dir)}
    assert (over_seeds["3"]["seeds"], over_seeds["0"]["n_failed"]) == ("0 1", "2")


@pytest.mark.parametrize(
    "space", ["tag(log, interval(0.2, 0.005))", "tag(log, interval(-1.0, 0.1))", "interval(1, 0)"]
)
def test_an_optuna_space_that_cannot_be_sampled_stops_in_one_line(space, capsys):
    from src.callbacks.search_space_check import SearchSpaceCheck

    sweeper = {"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"}
    config = OmegaConf.create({"hydra": {"sweeper": sweeper | {"params": {"optimizer.lr": space}}}})
    with pytest.raises(SystemExit) as stop:
        SearchSpaceCheck().on_multirun_start(config)
    assert stop.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: hydra.sweeper.params.optimizer.lr={space} cannot be sampled")
    good = OmegaConf.create({"hydra": {"sweeper": sweeper | {"params": {"x": "interval(0, 1)"}}}})
    SearchSpaceCheck().on_multirun_start(good)  # a valid space passes
