"""Data that do not fit the model are refused before the model is built, in one line that says
what the data are (a file by its columns), what the model takes, and which models take these
data; the first model it names really trains on them.

The model's kind is read off its class (`src.build.takes`): `support` and a class-level
`event_shape`, or vectors for a class with a `dim` setting. So `model=gmm` on a one-column file
is named as such, not as `model.dim=None is invalid` (a setting the user never set).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from src.errors import UserError
from src.models.flow1d import MixtureCDFFlow1d
from src.models.gmm import GaussianMixture
from src.models.histogram import Histogram
from src.pairing import MODEL_CONFIGS, Takes, takes
from src.train import train
from tests.conftest import compose_config, run_module

ONE_EPOCH = ("trainer.max_epochs=1", "logger=csv", "callbacks.figures=null")


def files(root: Path) -> dict[str, Path]:
    """A column of real numbers, a column of counts (0…9) and three columns of real numbers."""
    rng = np.random.default_rng(0)
    texts = {
        "one.csv": "x\n" + "".join(f"{v:.4f}\n" for v in rng.normal(size=200)),
        "counts.csv": "k\n" + "".join(f"{k}\n" for k in [*range(10), *rng.integers(0, 10, 190)]),
        "three.csv": "x,y,z\n"
        + "".join(",".join(f"{v:.4f}" for v in r) + "\n" for r in rng.normal(size=(200, 3))),
    }
    for name, text in texts.items():
        (root / name).write_text(text)
    return {name: root / name for name in texts}


ONE = "{file} has one column of real numbers (1-D data)"
COUNTS = "{file} has one column of counts (1-D data, n_bins=10)"
THREE = "{file} has 3 columns of real numbers (3-D data)"
CASES = {
    "1-D file, model of vectors": (
        "one.csv",
        ("model=gmm",),
        f"the model takes vectors of D ≥ 2 columns: {ONE}; for these data use model=flow1d",
    ),
    "1-D file, a flow of vectors": (
        "one.csv",
        ("model=realnvp",),
        f"the model takes vectors of D ≥ 2 columns: {ONE}; for these data use model=flow1d",
    ),
    "real numbers, discrete model": (
        "one.csv",
        ("model=histogram",),
        f"the model is for discrete data, the data are continuous: {ONE}; for these data use "
        "model=flow1d, or data.dtype=discrete to read whole numbers as counts",
    ),
    "counts, continuous model": (
        "counts.csv",
        ("model=flow1d",),
        f"the model is for continuous data, the data are discrete: {COUNTS}; for these data use "
        "model=dmol or histogram, or data.dtype=continuous to read the counts as real numbers",
    ),
    "counts, model of vectors": (
        "counts.csv",
        ("model=gmm",),
        f"the model is for continuous data, the data are discrete: {COUNTS}; for these data use "
        "model=dmol or histogram",
    ),
    "3 columns, model.dim=2": (
        "three.csv",
        ("model=gmm", "model.dim=2"),
        f"the model's events have shape (2,), the data's (3,): {THREE}; for these data use "
        "model=gmm, maf, nsf or realnvp with model.dim=3 or null (the data's)",
    ),
    "3 columns, 1-D model": (
        "three.csv",
        ("model=flow1d",),
        f"the model's events have shape (), the data's (3,): {THREE}; for these data use "
        "model=gmm, maf, nsf or realnvp, or one column with data.columns=[...]",
    ),
}


def expected(name: str, paths: dict[str, Path]) -> tuple[str, tuple[str, ...], str]:
    file, model, message = CASES[name]
    chosen = model[0].removeprefix("model=")
    line = f"model={chosen} with data=table cannot work: {message.format(file=paths[file])}"
    return file, model, line


def suggested(line: str) -> tuple[str, ...]:
    """The first model the line names, with the model.dim it says to set."""
    model = re.search(r"for these data use model=(\w+)", line).group(1)
    dim = re.search(r"with model\.dim=(\d+)", line)
    return (f"model={model}", *([f"model.dim={dim.group(1)}"] if dim else []))


@pytest.mark.parametrize("name", CASES)
def test_data_the_model_cannot_take_are_named_and_the_named_model_trains(
    tmp_path, name, one_torch_thread
):
    paths = files(tmp_path)
    file, model, line = expected(name, paths)
    data = ("data=table", f"data.path={paths[file]}")
    with pytest.raises(UserError) as error:
        train(compose_config(*data, *model, *ONE_EPOCH, output_dir=tmp_path / "refused"))
    assert str(error.value) == line
    fixed = compose_config(*data, *suggested(line), *ONE_EPOCH, output_dir=tmp_path / "fixed")
    metrics = train(fixed)
    assert metrics["status"] == "completed" and math.isfinite(metrics["test/nll"])


@pytest.mark.slow  # each case is a fresh interpreter importing Lightning
@pytest.mark.parametrize("name", CASES)
def test_the_command_line_prints_the_one_line_and_exits_2(tmp_path, name):
    paths = files(tmp_path)
    file, model, line = expected(name, paths)
    done = run_module(
        "src.train", "data=table", f"data.path={paths[file]}", *model, *ONE_EPOCH,
        f"paths.log_dir={tmp_path / 'out'}", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines() == [f"error: {line}"]
    assert not list((tmp_path / "out").glob("*/runs/*/checkpoints/*.ckpt"))


def test_every_model_option_declares_what_it_takes():
    """The check before the build reads each class; a model class that declared neither a
    class-level `event_shape` nor a `dim` setting would be checked only once built."""
    for path in sorted(MODEL_CONFIGS.glob("*.yaml")):
        model_class = get_class(OmegaConf.load(path)._target_)
        assert takes(model_class) is not None, path.name
    assert takes(GaussianMixture) == Takes("continuous", None, 2)
    assert takes(GaussianMixture, 3) == Takes("continuous", (3,), 2)
    assert takes(MixtureCDFFlow1d) == Takes("continuous", ())
    assert takes(Histogram).fits("discrete", ()) and not takes(Histogram).fits("continuous", ())
    assert not takes(GaussianMixture).fits("continuous", ())  # one column is shape (), not (1,)
    assert takes(torch.nn.Linear) is None
