"""Shared fixtures: compose the real Hydra configs, run training in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = str(ROOT / "conf")


def run_module(
    module: str, *args: str, cwd: Path = ROOT, timeout: int = 600
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` as a user types it, from `cwd`, with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        timeout=timeout,
    )


@pytest.fixture
def one_torch_thread():
    """Small problems run fastest on one torch thread when the cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def compose_config(*overrides: str, output_dir: Path, config_name: str = "train") -> DictConfig:
    """The config `python -m src.train <overrides>` would run, writing into `output_dir`."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path):
    """make_cfg("model=flow1d", "debug=fast") -> a composed config writing into tmp_path."""

    def make(*overrides: str, config_name: str = "train") -> DictConfig:
        return compose_config(*overrides, output_dir=tmp_path, config_name=config_name)

    return make
