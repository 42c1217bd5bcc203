"""Every option of every config group composes, and every experiment runs end to end."""

import json
import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.train import train
from tests.conftest import CONF_DIR, compose_config

GROUPS = sorted(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF_DIR) / g).glob("*.yaml"))]
EXPERIMENTS = [option for group, option in OPTIONS if group == "experiment"]


def _settings(node: dict, path: tuple = ()):
    """Every leaf of a config file as (path of keys, value), `defaults` and comments left out. A
    key may hold a dot itself (`hydra.sweeper.params.model.n_components` is 4 keys, not 5)."""
    for key, value in node.items():
        if key == "defaults":
            continue
        if isinstance(value, dict) and value:
            yield from _settings(value, (*path, key))
        else:
            yield (*path, key), value


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_into_the_run(group, option, tmp_path):
    """Choosing an option puts every one of its own settings into the composed run, Hydra's
    (a sweep's search space, its launcher) included (unless an experiment's own override or a
    later default replaces it: those are checked separately)."""
    path = Path(CONF_DIR) / group / f"{option}.yaml"
    text = path.read_text()
    own = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    if not text.startswith("# @package _global_"):
        own = {group: own}
    cfg = compose_config(f"{group}={option}", output_dir=tmp_path)
    composed = OmegaConf.to_container(cfg, resolve=False)
    checked = 0
    for keys, value in _settings(own):
        if keys == ("paths", "output_dir"):
            continue  # the run directory the tests choose
        found = composed
        for key in keys:
            found = found.get(key) if isinstance(found, dict) else None
        found = getattr(found, "name", found)  # hydra.mode: an enum, MULTIRUN in the file
        assert found == value or (value == {} and found is None), (keys, found, value)
        checked += 1
    assert checked  # every option has settings: one with nothing to check would pass anyway


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
def test_every_experiment_runs_with_debug_fast(experiment, make_cfg, tmp_path):
    """It runs through its test stage: finite test metrics, returned and in metrics.json."""
    metrics = train(make_cfg(f"experiment={experiment}", "debug=fast"))
    tested = {k: v for k, v in metrics.items() if k.startswith("test/")}
    assert metrics["status"] == "completed" and tested
    assert all(isinstance(v, float) and math.isfinite(v) for v in tested.values()), tested
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["status"] == "completed" and {k: saved[k] for k in tested} == tested
