"""`src.sample`: samples of a trained run in a file, with the data's column names and types."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from src import load_run
from src.errors import ConfigError
from src.sample import sample
from tests.conftest import compose_config, trained_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sample")
    counts = np.random.default_rng(0).poisson(4.0, size=300)
    np.savetxt(root / "counts.csv", counts, delimiter=",", header="n", comments="", fmt="%d")
    return {
        "em": trained_run(root, "em", "model=gmm", "fit=em", "data=mog2d", "data.n_train=500"),
        "discrete": trained_run(
            root, "discrete", "data=table", f"data.path={root / 'counts.csv'}", "model=histogram"
        ),
        "quakes": trained_run(root, "quakes", "experiment=earthquake_cavi", "data.n_train=300"),
    }


def drawn(run_dir: Path, out: Path, n: int, seed: int = 0) -> None:
    overrides = (f"ckpt_path={run_dir}", f"out={out}", f"n={n}", f"seed={seed}")
    sample(compose_config(*overrides, output_dir=out.parent, config_name="sample"))


def mixture_moments(model) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of Σ_k w_k N(μ_k, Σ_k): E x = Σ w μ, Cov = Σ w (Σ + μμᵀ) − E x E xᵀ."""
    w = torch.softmax(model.logits.double(), -1)
    mu, cov = model.loc.double(), model.covariance().double()
    mean = (w[:, None] * mu).sum(0)
    second = (w[:, None, None] * (cov + mu[:, :, None] * mu[:, None, :])).sum(0)
    return mean, second - torch.outer(mean, mean)


def test_mixture_samples_have_the_fitted_mixtures_moments(runs, tmp_path):
    n = 10_000
    drawn(runs["em"], tmp_path / "s.csv", n)
    with (tmp_path / "s.csv").open() as text:
        assert text.readline().strip() == "x1,x2"
    x = torch.from_numpy(np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1))
    model, _ = load_run(runs["em"])
    mean, cov = mixture_moments(model)
    assert x.shape == (n, 2)
    se_mean = cov.diagonal().sqrt() / math.sqrt(n)
    assert ((x.mean(0) - mean).abs() < 4 * se_mean).all(), (x.mean(0), mean)
    centred = x - mean
    products = centred[:, :, None] * centred[:, None, :]  # per-sample terms of the covariance
    se_cov = products.std(0) / math.sqrt(n)
    assert ((products.mean(0) - cov).abs() < 4 * se_cov).all(), (products.mean(0), cov)


def test_discrete_samples_are_integers_within_the_bins_under_the_columns_names(runs, tmp_path):
    drawn(runs["discrete"], tmp_path / "s.csv", 2000)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "n" and len(lines) == 2001
    assert all(line.isdigit() for line in lines[1:])
    values = np.loadtxt(tmp_path / "s.csv", skiprows=1, dtype=np.int64)
    model, _ = load_run(runs["discrete"])
    assert values.min() >= 0 and values.max() < model.d
    drawn(runs["discrete"], tmp_path / "s.npy", 50)
    assert np.load(tmp_path / "s.npy").dtype == np.int64


def test_earthquake_samples_are_locations_and_integer_counts(runs, tmp_path):
    drawn(runs["quakes"], tmp_path / "q.csv", 500)
    lines = (tmp_path / "q.csv").read_text().splitlines()
    assert lines[0] == "x,y,count"
    assert all(line.split(",")[2].isdigit() for line in lines[1:])


def test_the_same_seed_draws_the_same_file(runs, tmp_path):
    drawn(runs["em"], tmp_path / "a.csv", 300, seed=3)
    drawn(runs["em"], tmp_path / "b.csv", 300, seed=3)
    drawn(runs["em"], tmp_path / "c.csv", 300, seed=4)
    a, b, c = ((tmp_path / f"{k}.csv").read_text() for k in "abc")
    assert a == b and a != c


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("n=0", "n=0 is invalid: expected an integer >= 1"),
        ("n=2.5", "n=2.5 is invalid: expected an integer >= 1"),
        ("seed=-1", "seed=-1 is invalid"),
        ("out=s.txt", "out='s.txt' is invalid: expected a file name ending in .csv, .tsv, .npy"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(runs, tmp_path, setting, message):
    overrides = {"ckpt_path": str(runs["em"]), "out": str(tmp_path / "s.csv"), "n": "10"}
    key, value = setting.split("=")
    overrides[key] = value
    cfg = compose_config(
        *(f"{k}={v}" for k, v in overrides.items()), output_dir=tmp_path, config_name="sample"
    )
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.")):
        sample(cfg)
    assert list(tmp_path.iterdir()) == []
