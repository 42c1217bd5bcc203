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
    module: str,
    *args: str,
    cwd: Path = ROOT,
    timeout: int = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` as a user types it, from `cwd`, with its output captured
    (`env`: extra environment variables)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)} | (env or {}),
        timeout=timeout,
    )


SHORT_RUN = ("trainer.max_epochs=2", "callbacks=none", "~logger")  # a trained run in seconds


def trained_run(root: Path, name: str, *overrides: str) -> Path:
    """Train `python -m src.train SHORT_RUN <overrides>` into `root/name`; its run directory."""
    out = root / name
    done = run_module("src.train", *SHORT_RUN, *overrides, f"paths.log_dir={out}", cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = out.glob("train/runs/*")
    return run_dir


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


def kill_after_first_epoch_and_resume(
    settings: list[str], tmp_path: Path, wait: float
) -> tuple[dict, dict, dict]:
    """Train `settings` in-process (the reference), then as a real process SIGKILLed `wait`
    seconds after its first last.ckpt (inside a later epoch), then `resume=` it.
    Returns (reference metrics, resumed metrics.json, the last.ckpt the kill left)."""
    import json
    import signal
    import time

    from src.train import train

    reference = train(compose_config(*settings, output_dir=tmp_path / "ref"))
    log_dir = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "src.train", *settings, f"paths.log_dir={log_dir}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not list(log_dir.glob("*/runs/*/checkpoints/last.ckpt")):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.05)
    time.sleep(wait)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (run_dir,) = log_dir.glob("*/runs/*")
    killed_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    result = run_module("src.train", f"resume={run_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    return reference, json.loads((run_dir / "metrics.json").read_text()), killed_at


def fit_trainer(cfg: DictConfig):
    """The trainer the run assembly builds to fit `cfg`."""
    from src.build import assemble
    from src.utils.runs import RunIdentity

    return assemble(cfg, RunIdentity.of_command(cfg)).trainer


def bare_trainer(max_epochs: int, **settings):
    """A Trainer with nothing around the fit: no logger, checkpoints, progress bar or summary."""
    import pytorch_lightning as pl

    return pl.Trainer(
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **settings,
    )
