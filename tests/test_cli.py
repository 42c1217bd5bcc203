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
    """`--cfg job` imports neither torch nor Lightning (~4 s): Python's own import log
    (`PYTHONPROFILEIMPORTTIME`) lists every module the command loaded."""
    start = time.perf_counter()
    shown = run_module(
        "src.train", "--cfg", "job", cwd=tmp_path, env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert shown.returncode == 0 and "MixtureCDFFlow1d" in shown.stdout
    assert time.perf_counter() - start < 10
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in shown.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "omegaconf" in imported  # the log is there
    assert imported.isdisjoint({"torch", "pytorch_lightning", "lightning", "matplotlib"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.n_components=0", "model.n_components=0 is invalid: expected an integer >= 1"),
        (
            "data.truth.stds=[0.5,-0.3,0.8]",
            "data.truth.stds=[0.5, -0.3, 0.8] is invalid: "
            "expected a non-empty list of finite numbers > 0",
        ),
        ("optimizer.lr=0", "optimizer.lr=0 is invalid: expected a finite number > 0"),
        (  # Hydra's defaults list raises a bare ValueError for it
            "logger=null",
            "Config group override must be a string or a list. Got NoneType (a config group "
            "cannot be null: to leave one out, write ~<group>, e.g. ~logger)",
        ),
    ],
)
def test_bad_setting_is_one_line_naming_it(override, message, tmp_path):
    """The whole of stderr is the one line; exit code 2 (a traceback exits with 1)."""
    result = cli("src.train", override, f"paths.log_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {message}"]
    assert not list(tmp_path.glob("*/runs/*/checkpoints"))  # refused before any training


def test_unknown_model_lists_the_choices(tmp_path):
    """Hydra's paragraph becomes one line, exit code 2, that lists every model option."""
    result = cli("src.train", "model=nosuchmodel", cwd=tmp_path)
    models = ", ".join(sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml")))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: In 'train': Could not find 'model/nosuchmodel'; "
        f"Available options in 'model': {models}"
    ]


def test_eval_without_a_checkpoint_is_one_line(tmp_path):
    missing = tmp_path / "missing.ckpt"
    result = cli("src.eval", f"ckpt_path={missing}", f"paths.log_dir={tmp_path}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: ckpt_path='{missing}' is invalid: expected a run directory holding "
        "checkpoints/last.ckpt, or a checkpoint inside one"
    ]
