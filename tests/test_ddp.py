"""Several devices: DDP on CPU processes equals one process, DDP inside a Hydra sweep, GPUs.

DDP tests are `slow`: every rank is a new Python process that imports torch and Lightning.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning_fabric.strategies.launchers.subprocess_script import _hydra_subprocess_cmd
from omegaconf import open_dict

from src.sweeps.job import single_run_argv
from src.train import train
from tests.conftest import CONF_DIR, compose_config, run_module

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
# Full batch: the mean of the two ranks' shard gradients is the full-data gradient, so DDP
# follows the single process's trajectory (up to float rounding), not just its distribution.
FULL_BATCH = ["data.batch_size=null", "data.n_train=2000", "data.n_val=500", "data.n_test=2000"]
# a short run tested on its whole test split (fast_dev_run would test only its first batch)
ONE_EPOCH_OF_TWO_STEPS = ("trainer.max_epochs=1", "+trainer.limit_train_batches=2")
ONE_EPOCH_OF_TWO_STEPS += ("callbacks=none", "logger=[]")
COMPARED = ("train/nll", "val/nll", "test/nll", "test/kl_gap", "test/kl_gap_se")


def test_ddp_children_of_a_sweep_job_run_that_job_alone(tmp_path, monkeypatch):
    """Lightning starts ranks > 0 of `strategy=ddp` by re-running sys.argv; inside a sweep job
    that command must be this job's overrides in single-run mode, in this job's directory."""
    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["seed=1"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = str(tmp_path / "sweep" / "3")
        cfg.hydra.runtime.cwd = str(tmp_path)
        cfg.hydra.overrides.task = ["seed=1", "model.n_components=4"]
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "--config-name=train", "seed=0,1"])
    HydraConfig.instance().set_config(cfg)
    try:
        with single_run_argv():
            command, cwd = _hydra_subprocess_cmd(local_rank=1)
    finally:
        HydraConfig.instance().cfg = None
    args = command[command.index("--config-name=train") :]  # after python and the script
    assert "-m" not in args and "seed=0,1" not in args
    assert args[:4] == ["--config-name=train", "seed=1", "model.n_components=4", "hydra.mode=RUN"]
    assert f'hydra.run.dir="{tmp_path / "sweep" / "3"}"' in args
    assert cwd == str(tmp_path)
    assert sys.argv == ["train.py", "-m", "--config-name=train", "seed=0,1"]  # put back


@pytest.mark.slow
def test_ddp_cpu_equals_one_process(make_cfg, tmp_path):
    """Each rank's batch is 1000 points: its whole shard when the ranks split the data, so one
    full-data step per epoch as in the single full-batch process; ranks that each held all 2000
    points would step twice per epoch. (With full batches on both sides such ranks computed the
    full-data gradient too and passed.)"""
    one = train(make_cfg(*FULL_BATCH, "trainer.max_epochs=4", "callbacks=none", "logger=[]"))
    ddp_cfg = make_cfg(
        *FULL_BATCH, "data.batch_size=1000", "trainer.max_epochs=4", "trainer=ddp_cpu"
    )
    with open_dict(ddp_cfg):
        ddp_cfg.paths.output_dir = str(tmp_path / "ddp")
        ddp_cfg.callbacks.figures.every_n_epochs = 2
    two = train(ddp_cfg)
    for key in COMPARED:
        assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-6), key
    run_dir = tmp_path / "ddp"  # rank 0's files, once
    # under ddp_spawn the parent's trainer stays at step 0 (Lightning sends back only the
    # weights and the logged metrics): metrics.json reads the counts from last.ckpt
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == one["global_step"] == two["global_step"] == 4
    assert one["epochs"] == two["epochs"] == last["epoch"] + 1
    assert json.loads((run_dir / "metrics.json").read_text())["test/nll"] == two["test/nll"]
    assert {"best.ckpt", "last.ckpt"} <= {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_ddp_inside_a_multirun(tmp_path):
    """Both launch styles in one sweep: spawned ranks (ddp_spawn) and re-run scripts (ddp)."""
    args = ["-m", "trainer=ddp_cpu", "trainer.strategy=ddp_spawn,ddp", "trainer.max_epochs=2"]
    args += ["callbacks=none", "logger=[]", *FULL_BATCH, f"paths.log_dir={tmp_path / 'out'}"]
    ran = run_module("src.train", *args, cwd=tmp_path, timeout=900)
    assert ran.returncode == 0, ran.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "out").glob("*/multiruns/*")  # no child started a sweep of its own
    assert not list((tmp_path / "out").glob("*/runs"))  # ddp children ran in the job's directory
    with (sweep_dir / "summary.csv").open() as handle:
        spawn, script = csv.DictReader(handle)
    assert spawn["status"] == script["status"] == "ok"
    for key in COMPARED:
        assert float(spawn[key]) == pytest.approx(float(script[key]), rel=1e-5), key


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_scores_on_a_gpu_as_on_the_cpu(experiment, tmp_path):
    """Two training steps, then validation and test, on the GPU and on the CPU: the same metrics,
    finite, and the same test NLL and KL gap up to float32 rounding (all 24 on an H200)."""
    runs = {}
    for device, extra in (("cpu", ()), ("gpu", ("trainer=gpu",))):
        (tmp_path / device).mkdir()
        settings = (f"experiment={experiment}", *ONE_EPOCH_OF_TWO_STEPS, *extra)
        runs[device] = train(compose_config(*settings, output_dir=tmp_path / device))
    numbers = {d: {k: v for k, v in m.items() if isinstance(v, float)} for d, m in runs.items()}
    assert numbers["gpu"].keys() == numbers["cpu"].keys()
    assert all(math.isfinite(v) for v in numbers["gpu"].values()), numbers["gpu"]
    for key in {"test/nll", "test/kl_gap"} & numbers["cpu"].keys():
        expected = pytest.approx(numbers["cpu"][key], rel=1e-4, abs=1e-4)
        assert numbers["gpu"][key] == expected, key


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_mixed_precision_scores_as_full_precision(tmp_path):
    """flow1d has no matrix products for autocast to lower: the same NLL within 1e-3."""
    nll = []
    for precision in ("32-true", "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"):
        (tmp_path / precision).mkdir()
        settings = ("debug=fast", "trainer=gpu", f"trainer.precision={precision}")
        nll.append(train(compose_config(*settings, output_dir=tmp_path / precision))["test/nll"])
    assert math.isfinite(nll[1]) and nll[1] == pytest.approx(nll[0], abs=1e-3)
