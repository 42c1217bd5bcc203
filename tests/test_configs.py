"""Every option of every config group composes, and every experiment runs end to end."""

from pathlib import Path

import pytest

from src.train import train
from tests.conftest import CONF_DIR, compose_config

GROUPS = sorted(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF_DIR) / g).glob("*.yaml"))]
EXPERIMENTS = [option for group, option in OPTIONS if group == "experiment"]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option, tmp_path):
    cfg = compose_config(f"{group}={option}", output_dir=tmp_path)
    assert cfg.model._target_ and cfg.data._target_


def test_every_group_has_options():
    assert {
        "model",
        "data",
        "optimizer",
        "trainer",
        "logger",
        "callbacks",
        "debug",
        "experiment",
    } <= set(GROUPS)
    assert {"default", "gpu", "ddp", "ddp_cpu"} <= {o for g, o in OPTIONS if g == "trainer"}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_with_debug_fast(experiment, make_cfg):
    metrics = train(make_cfg(f"experiment={experiment}", "debug=fast"))
    assert metrics and all(isinstance(v, (float, str)) for v in metrics.values())
