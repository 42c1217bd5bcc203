"""Every option of every config group composes, and every experiment runs end to end."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.train import train
from tests.conftest import CONF_DIR, compose_config

GROUPS = sorted(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name != "hydra")
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((Path(CONF_DIR) / g).glob("*.yaml"))]
EXPERIMENTS = [option for group, option in OPTIONS if group == "experiment"]


def _settings(node, prefix=""):
    """Every leaf of a config file as (dotted key, value), `defaults` and comments left out."""
    for key, value in node.items():
        if key == "defaults":
            continue
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            yield from _settings(value, dotted)
        else:
            yield dotted, value


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_into_the_run(group, option, tmp_path):
    """Choosing an option puts every one of its own settings into the composed run (unless an
    experiment's own override or a later default replaces it: those are checked separately)."""
    path = Path(CONF_DIR) / group / f"{option}.yaml"
    text = path.read_text()
    own = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    if not text.startswith("# @package _global_"):
        own = {group: own}
    cfg = compose_config(f"{group}={option}", output_dir=tmp_path)
    composed = OmegaConf.to_container(cfg, resolve=False)
    checked = 0
    for key, value in _settings(own):
        if key.startswith("hydra.") or key == "paths.output_dir":
            continue  # Hydra's own node; the run directory the tests choose
        found = composed
        for part in key.split("."):
            found = found.get(part) if isinstance(found, dict) else None
        assert found == value or (value == {} and found is None), (key, found, value)
        checked += 1
    job_keys = [k for k, _ in _settings(own) if not k.startswith("hydra.")]
    assert checked >= len(job_keys) - 1  # every setting of the option was checked


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
    assert metrics["status"] == "completed"
    assert all(isinstance(v, (float, str, int, dict, type(None))) for v in metrics.values())
