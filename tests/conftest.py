"""Shared fixtures: compose the real Hydra configs, run training in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def compose_config(*overrides: str, output_dir: Path, config_name: str = "train") -> DictConfig:
    """The config `python -m src.train <overrides>` would run, writing into `output_dir`."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path):
    """make_cfg("model=flow1d", "debug=fast") -> a composed config writing into tmp_path."""

    def make(*overrides: str, config_name: str = "train") -> DictConfig:
        return compose_config(*overrides, output_dir=tmp_path, config_name=config_name)

    return make
