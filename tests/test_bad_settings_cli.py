"""Bad settings across every model and data set, each through the real command line.

Each case runs `python -m src.train` (or `src.eval`) in a subprocess: exit code 2, the last
stderr line names the setting, no traceback, and a file that existed before is untouched.
The cases run a few at a time (each process pays the torch/Lightning import), which still
takes minutes: the module is marked slow. `tests/test_bad_settings.py` checks the core cases
in-process and `tests/test_cli.py` a few through the command line in the default suite.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from src.train import train
from tests.conftest import compose_config, run_module

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
HW1 = ("model=histogram", "data=hw1_d20")
MOG2D = ("model=gmm", "data=mog2d")
QUAKE = ("model=earthquake", "fit=cavi", "data=earthquake")

# (command line, text the last stderr line must contain)
CASES: dict[str, tuple[tuple[str, ...], str]] = {
    "flow1d n_components": (("model.n_components=0",), "model.n_components=0"),
    "flow1d base": (("model.base=laplace",), "model.base="),
    "mog1d std": (("data.truth.stds=[0.5,-0.3,0.8]",), "data.truth.stds="),
    "mog1d weights": (("data.truth.weights=[0.5,0.6,-0.1]",), "data.truth.weights="),
    "batch size": (("data.batch_size=0",), "data.batch_size=0"),
    "train size": (("data.n_train=0",), "data.n_train=0"),
    "learning rate": (("optimizer.lr=0",), "optimizer.lr=0"),
    "optimizer name": (("optimizer._target_=torch.optim.Nope",), "optimizer._target_="),
    "trainer epochs": (("trainer.max_epochs=-5",), "max_epochs"),
    "discrete model, continuous data": (("model=histogram",), "model=histogram with data=mog1d"),
    "continuous model, discrete data": (("data=hw1_d20",), "model=flow1d with data=hw1_d20"),
    "histogram d": ((*HW1, "model.d=1"), "model.d=1"),
    "data beyond the model's bins": (("model=dmol", "data=hw1_d20", "model.d=10"), "d=10"),
    "dmol components": (
        ("model=dmol", "data=hw1_d20", "model.n_components=0"),
        "model.n_components=0",
    ),
    "histogram smoothing": ((*HW1, "model.smoothing=-1"), "model.smoothing="),
    "gmm reg_covar": ((*MOG2D, "model.reg_covar=-1"), "model.reg_covar="),
    "gmm more components than points": (
        (*MOG2D, "model.n_components=50000"),
        "model.n_components=",
    ),
    "gmm dimension": ((*MOG2D, "model.dim=3"), "3"),
    "mog2d singular covariance": (
        (
            "data=mog2d",
            "model=gmm",
            "data.truth.covariances=[[[1,1],[1,1]]]",
            "data.truth.n_components=1",
            "data.truth.means=[[0,0]]",
            "data.truth.weights=[1.0]",
            "model.n_components=1",
        ),
        "data.truth.covariances",
    ),
    "realnvp layers": (("model=realnvp", "data=banana", "model.n_layers=0"), "model.n_layers=0"),
    "earthquake tau": ((*QUAKE, "model.tau=0"), "model.tau=0"),
    "earthquake beta": ((*QUAKE, "data.beta=-1"), "data.beta=-1"),
    "earthquake weights": ((*QUAKE, "data.weights=[0.5,0.6,0,0]"), "data.weights="),
    "earthquake csv missing": (
        ("model=earthquake", "fit=cavi", "data=earthquake_csv", "data.path=missing.csv"),
        "missing.csv",
    ),
    "estimator samples": (
        (
            "experiment=seed003_estimators_fast",
            "study.estimator=score_baseline",
            "study.n_samples=1",
        ),
        "study.n_samples=1",
    ),
    "estimator sigma": (
        ("experiment=seed003_estimators_fast", "study.init_sigma=0"),
        "study.init_sigma=0",
    ),
    "ruin probability": (("experiment=gamblers_ruin", "study.p=1.5"), "study.p=1.5"),
    "ruin proposal": (("experiment=gamblers_ruin", "study.q=1.0"), "study.q="),
    "unwritable output dir": (
        ("paths.log_dir=/proc/densitylab",),
        "paths.log_dir=/proc/densitylab",
    ),
    "resume of nothing": (("resume=/nonexistent/run",), "resume='/nonexistent/run'"),
}


@pytest.fixture(scope="module")
def another_models_checkpoint(tmp_path_factory) -> Path:
    """A flow1d checkpoint, to be refused by a GMM."""
    run_dir = tmp_path_factory.mktemp("flow1d_run")
    train(compose_config("trainer.max_epochs=1", "data.n_train=100", output_dir=run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def results(tmp_path_factory, another_models_checkpoint):
    log_dir = tmp_path_factory.mktemp("outputs")
    sentinel = log_dir / "train" / "runs" / "earlier" / "metrics.json"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text('{"test/nll": 1.0}\n')
    commands = {name: ("src.train", *args) for name, (args, _) in CASES.items()}
    commands["checkpoint of another model"] = (
        "src.train",
        *MOG2D,
        f"ckpt_path={another_models_checkpoint}",
    )
    commands["eval of another model"] = (
        "src.eval",
        *MOG2D,
        f"ckpt_path={another_models_checkpoint}",
    )

    def run(command: tuple[str, ...]) -> subprocess.CompletedProcess:
        module, *args = command
        log = (
            ()
            if any(a.startswith("paths.log_dir=") for a in args)
            else (f"paths.log_dir={log_dir}",)
        )
        return run_module(module, *args, *log, timeout=300)

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(commands, pool.map(run, commands.values())))
    return done, sentinel


EXPECTED = {name: named for name, (_, named) in CASES.items()} | {
    "checkpoint of another model": "ckpt_path=",
    "eval of another model": "ckpt_path=",
}


def test_the_table_is_large():
    assert len(EXPECTED) >= 25


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_setting_is_refused_in_one_line(name, results):
    done, sentinel = results
    result = done[name]
    last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    assert result.returncode == 2, result.stderr[-2000:]
    assert last.startswith("error: ") and EXPECTED[name] in last, last
    assert "Traceback" not in result.stderr
    assert sentinel.read_text() == '{"test/nll": 1.0}\n'
