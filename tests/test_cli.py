"""The real command line: a run, its re-test by src.eval, and one-line errors for bad input."""

import json
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_module


def cli(module: str, *args: str, cwd: Path):
    return run_module(module, *args, cwd=cwd, timeout=300)


def only_run_dir(root: Path) -> Path:
    (run_dir,) = root.glob("*/runs/*")
    return run_dir


def test_train_then_eval_reproduces_the_test_metrics(tmp_path):
    short = ["trainer.max_epochs=2", "data.n_train=300", "data.n_test=1000", "callbacks=none"]
    trained = cli("src.train", *short, f"paths.log_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    run_dir = only_run_dir(tmp_path / "out")
    assert {".hydra", "metrics.json", "tensorboard", "train.log"} <= {
        p.name for p in run_dir.iterdir()
    }
    assert str(run_dir) in trained.stdout
    log = (run_dir / "train.log").read_text()  # the README's name for it
    assert f"run model=flow1d data=mog1d fit=mle, seed 0, in {run_dir}" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "status completed; final metrics" in log and repr(metrics["test/nll"]) in log
    assert metrics["model"] == "flow1d" and metrics["fit"] == "mle" and metrics["seed"] == 0
    # callbacks=none writes no checkpoint: re-run with the default callbacks to get last.ckpt
    trained = cli("src.train", *short[:3], f"paths.log_dir={tmp_path / 'ckpt'}", cwd=tmp_path)
    run_dir = only_run_dir(tmp_path / "ckpt")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    evaluated = cli(
        "src.eval", f"ckpt_path={ckpt}", f"paths.log_dir={tmp_path / 'eval'}", cwd=tmp_path
    )
    assert evaluated.returncode == 0, evaluated.stderr
    ran = json.loads((run_dir / "metrics.json").read_text())
    retested = json.loads((only_run_dir(tmp_path / "eval") / "metrics.json").read_text())
    for key in ("test/nll", "test/oracle_nll", "test/kl_gap", "test/kl_gap_se"):
        assert retested[key] == pytest.approx(ran[key], abs=1e-6)


def test_help_and_config_answer_fast(tmp_path):
    start = time.perf_counter()
    shown = cli("src.train", "--cfg", "job", cwd=tmp_path)
    assert shown.returncode == 0 and "MixtureCDFFlow1d" in shown.stdout
    assert time.perf_counter() - start < 10  # no torch/Lightning import (which alone takes ~4 s)
    assert "import torch" not in (ROOT / "src" / "train.py").read_text().split("def train")[0]


@pytest.mark.parametrize(
    "override", ["model.n_components=0", "data.truth.stds=[0.5,-0.3,0.8]", "optimizer.lr=0"]
)
def test_bad_setting_is_one_line_naming_it(override, tmp_path):
    result = cli("src.train", override, f"paths.log_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {override.split('=')[0]}=") and "expected" in last
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*/runs/*/checkpoints"))  # refused before any training


def test_unknown_model_lists_the_choices(tmp_path):
    result = cli("src.train", "model=nosuchmodel", cwd=tmp_path)
    assert result.returncode != 0
    assert "Could not find 'model/nosuchmodel'" in result.stderr and "flow1d" in result.stderr


def test_eval_without_a_checkpoint_is_one_line(tmp_path):
    result = cli(
        "src.eval",
        f"ckpt_path={tmp_path / 'missing.ckpt'}",
        f"paths.log_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: ckpt_path=")
