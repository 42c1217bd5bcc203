"""Bad settings across every model and data set, each through the real command line.

Each case runs `python -m src.train` (or `src.eval`) in a subprocess: exit code 2, stderr is one
line naming the setting and what is valid (so no traceback), and a file that existed before is
untouched.
The cases run a few at a time (each process pays the torch/Lightning import), which still
takes minutes: the module is marked slow. `tests/test_bad_settings.py` checks the core cases
in-process and `tests/test_cli.py` a few through the command line in the default suite.
"""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.train import train
from tests.conftest import compose_config, run_module

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
HW1 = ("model=histogram", "data=hw1_d20")
MOG2D = ("model=gmm", "data=mog2d")
QUAKE = ("model=earthquake", "fit=cavi", "data=earthquake")

# (command line, what the one stderr line says: the setting, its value and what is valid)
CASES: dict[str, tuple[tuple[str, ...], str]] = {
    "flow1d n_components": (
        ("model.n_components=0",),
        "model.n_components=0 is invalid: expected an integer >= 1",
    ),
    "flow1d base": (
        ("model.base=laplace",),
        "model.base='laplace' is invalid: expected one of uniform, normal",
    ),
    "mog1d std": (
        ("data.truth.stds=[0.5,-0.3,0.8]",),
        "data.truth.stds=[0.5, -0.3, 0.8] is invalid: expected a non-empty list of finite numbers",
    ),
    "mog1d weights": (
        ("data.truth.weights=[0.5,0.6,-0.1]",),
        "data.truth.weights=[0.5, 0.6, -0.1] is invalid: expected a list of non-negative weights",
    ),
    "batch size": (
        ("data.batch_size=0",),
        "data.batch_size=0 is invalid: expected an integer >= 1",
    ),
    "train size": (("data.n_train=0",), "data.n_train=0 is invalid: expected an integer >= 1"),
    "learning rate": (
        ("optimizer.lr=0",),
        "optimizer.lr=0 is invalid: expected a finite number > 0",
    ),
    "optimizer name": (
        ("optimizer._target_=torch.optim.Nope",),
        "optimizer._target_='torch.optim.Nope' is invalid: expected an importable class",
    ),
    "trainer epochs": (
        ("trainer.max_epochs=-5",),
        "trainer.max_epochs=-5 is invalid: expected an integer >= -1 or null",
    ),
    "discrete model, continuous data": (
        ("model=histogram",),
        "model=histogram with data=mog1d cannot work: the model is for discrete data",
    ),
    "continuous model, discrete data": (
        ("data=hw1_d20",),
        "model=flow1d with data=hw1_d20 cannot work: the model is for continuous data",
    ),
    "histogram d": ((*HW1, "model.d=1"), "model.d=1 is invalid: expected an integer >= 2"),
    "data beyond the model's bins": (
        ("model=dmol", "data=hw1_d20", "model.d=10"),
        "is outside the bins {0, …, 9} (d=10)",
    ),
    "dmol components": (
        ("model=dmol", "data=hw1_d20", "model.n_components=0"),
        "model.n_components=0 is invalid: expected an integer >= 1",
    ),
    "histogram smoothing": (
        (*HW1, "model.smoothing=-1"),
        "model.smoothing=-1 is invalid: expected a finite number >= 0",
    ),
    "gmm reg_covar": (
        (*MOG2D, "model.reg_covar=-1"),
        "model.reg_covar=-1 is invalid: expected a finite number >= 0",
    ),
    "gmm more components than points": (
        (*MOG2D, "model.n_components=50000"),
        "model.n_components=50000 is invalid: expected at most the number of training points",
    ),
    "gmm dimension": (
        (*MOG2D, "model.dim=3"),
        "model=gmm with data=mog2d cannot work: the model's events have shape (3,), the data's",
    ),
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
        "data.truth.covariances=[[[1, 1], [1, 1]]] is invalid: expected 1 symmetric positive-def",
    ),
    "realnvp layers": (
        ("model=realnvp", "data=banana", "model.n_layers=0"),
        "model.n_layers=0 is invalid: expected an integer >= 1",
    ),
    "earthquake tau": ((*QUAKE, "model.tau=0"), "model.tau=0 is invalid: expected a finite number"),
    "earthquake beta": (
        (*QUAKE, "data.beta=-1"),
        "data.beta=-1 is invalid: expected a finite number",
    ),
    "earthquake weights": (
        (*QUAKE, "data.weights=[0.5,0.6,0,0]"),
        "data.weights=[0.5, 0.6, 0.0, 0.0] is invalid: expected non-negative weights that sum to 1",
    ),
    "earthquake csv missing": (
        ("model=earthquake", "fit=cavi", "data=earthquake_csv", "data.path=missing.csv"),
        "data.path='missing.csv' is invalid: expected an existing CSV file",
    ),
    "estimator samples": (
        (
            "experiment=seed003_estimators_fast",
            "study.estimator=score_baseline",
            "study.n_samples=1",
        ),
        "study.n_samples=1 is invalid: expected an integer >= 2",
    ),
    "estimator sigma": (
        ("experiment=seed003_estimators_fast", "study.init_sigma=0"),
        "study.init_sigma=0 is invalid: expected a finite number > 0",
    ),
    "ruin probability": (
        ("experiment=gamblers_ruin", "study.p=1.5"),
        "study.p=1.5 is invalid: expected a number in (0, 1)",
    ),
    "ruin proposal": (
        ("experiment=gamblers_ruin", "study.q=1.0"),
        "study.q=1.0 is invalid: expected a number in (0, 1)",
    ),
    "unwritable output dir": (
        ("paths.log_dir=/proc/densitylab",),
        "paths.log_dir=/proc/densitylab is invalid: expected a directory this user can create",
    ),
    "resume of nothing": (
        ("resume=/nonexistent/run",),
        "resume='/nonexistent/run' is invalid: expected a run directory holding checkpoints/",
    ),
}


@pytest.fixture(scope="module")
def another_models_run(tmp_path_factory) -> Path:
    """A flow1d run directory with its checkpoint and `.hydra/config.yaml` (src.eval reads it),
    to be refused by a GMM."""
    run_dir = tmp_path_factory.mktemp("flow1d_run")
    cfg = compose_config("trainer.max_epochs=1", "data.n_train=100", output_dir=run_dir)
    train(cfg)
    config = OmegaConf.to_container(cfg, resolve=False)
    config.pop("hydra")
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(config), run_dir / ".hydra" / "config.yaml")
    return run_dir


@pytest.fixture(scope="module")
def results(tmp_path_factory, another_models_run):
    log_dir = tmp_path_factory.mktemp("outputs")
    sentinel = log_dir / "train" / "runs" / "earlier" / "metrics.json"
    sentinel.parent.mkdir(parents=True)
    sentinel.write_text('{"test/nll": 1.0}\n')
    ckpt = another_models_run / "checkpoints" / "last.ckpt"
    elsewhere = shutil.copy(ckpt, tmp_path_factory.mktemp("elsewhere") / "flow1d.ckpt")
    commands = {name: ("src.train", *args) for name, (args, _) in CASES.items()}
    # a checkpoint from outside any run starts a new run from its weights; src.eval rebuilds
    # the run the checkpoint is in, with this command's settings
    commands["checkpoint of another model"] = ("src.train", *MOG2D, f"ckpt_path={elsewhere}")
    commands["eval of another model"] = ("src.eval", *MOG2D, f"ckpt_path={ckpt}")

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


REFUSED = "is invalid: expected a checkpoint of the configured model"
EXPECTED = {name: named for name, (_, named) in CASES.items()} | {
    "checkpoint of another model": REFUSED,
    "eval of another model": REFUSED,
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_setting_is_refused_in_one_line(name, results):
    """Exit code 2, the whole of stderr one line naming the setting, nothing written lost."""
    done, sentinel = results
    result = done[name]
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines() or [""]
    assert line.startswith("error: ") and EXPECTED[name] in line, result.stderr[-2000:]
    assert sentinel.read_text() == '{"test/nll": 1.0}\n'
