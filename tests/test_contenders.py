"""The toy study's contenders: one budget for all, and NSF's training caught if it regresses."""

from __future__ import annotations

import csv
import json

import pytest

from src.errors import ConfigError
from src.train import train
from tests.conftest import compose_config

CONTENDERS = ("gmm_em", "nsf", "realnvp")


@pytest.mark.parametrize("contender", CONTENDERS)
def test_every_contender_of_the_study_gets_the_same_time_budget(contender, tmp_path):
    cfg = compose_config("experiment=toy2d_study", f"contender={contender}", output_dir=tmp_path)
    assert cfg.trainer.max_time == "00:00:00:40"
    assert (cfg.data.n_train, cfg.data.n_test) == (30000, 10000)
    assert cfg.trainer.enable_progress_bar is False  # two jobs share one console


def test_nsf_learns_eight_gaussians_within_a_hundred_steps(tmp_path, one_torch_thread):
    """The study's NSF on 2,000 points, 25 epochs of 4 batches (a few seconds): the validation
    KL gap falls from about 1 nat to below 0.3 (0.17 when measured), and the test gap agrees."""
    sizes = ["data.n_train=2000", "data.n_val=1000", "data.n_test=2000", "trainer.max_epochs=25"]
    quiet = ["~logger", "callbacks.figures=null", "callbacks.progress_bar=null"]
    cfg = compose_config(
        "contender=nsf", "data=eight_gaussians", *sizes, *quiet, output_dir=tmp_path
    )
    train(cfg)
    with (tmp_path / "curve.csv").open() as file:
        gaps = [float(row["val/kl_gap"]) for row in csv.DictReader(file)]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(gaps) == 25 and gaps[0] > 0.6
    assert gaps[-1] < 0.3 and metrics["test/kl_gap"] < 0.3


@pytest.mark.parametrize("epochs", [100_000, -1])
def test_trainer_max_time_ends_the_run(epochs, tmp_path, one_torch_thread):
    """The study's budget: `trainer.max_time` stops training (the default callbacks once held a
    Timer, which made Lightning ignore it), and a resume-safe last.ckpt records where."""
    quiet = ["~logger", "callbacks.figures=null", "callbacks.progress_bar=null"]
    budget = [f"trainer.max_epochs={epochs}", "trainer.max_time=00:00:00:02"]
    train(compose_config(*budget, *quiet, output_dir=tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "completed" and 0 < metrics["epochs"] < 10_000
    assert metrics["fit_seconds"] < 30


def test_max_time_beside_a_timer_callback_is_refused(tmp_path):
    timer = [
        "+callbacks.timer._target_=pytorch_lightning.callbacks.Timer",
        "+callbacks.timer.duration=00:01:00:00",
    ]
    cfg = compose_config("trainer.max_time=00:00:00:05", *timer, output_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"trainer.max_time=.* unset while a Timer callback"):
        train(cfg)
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()
