"""Discrete data: binned truths, the hw1 recipe reproduced exactly, digits, the experiments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.datasets import load_digits
from torch.distributions import Normal

from src.data.digits import DigitsDataModule
from src.data.discretized import BinnedDataModule, binned
from src.data.hw1 import HW1DataModule, hw1_truth, recipe_classes
from src.data.truths import mixture_of_gaussians_1d
from src.errors import ConfigError
from src.models.dmol import DMoLLogProb
from src.models.histogram import HistogramLogProb
from src.train import train
from src.utils.constraints import make


def test_binned_truth_masses_and_tails():
    base = Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    truth = binned(base, 4, -1.0, 1.0)  # edges −1, −0.5, 0, 0.5, 1; tails to bins 0 and 3
    expected = base.cdf(torch.tensor([-0.5, 0.0, 0.5], dtype=torch.float64))
    expected = torch.diff(torch.cat([torch.zeros(1), expected, torch.ones(1)]).double())
    torch.testing.assert_close(truth.probs, expected)
    assert truth.probs.sum().item() == pytest.approx(1, abs=1e-12)
    # clipping continuous draws into [low, high] before binning gives the same masses
    s = torch.randn(400_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    bins = ((s.clamp(-1, 1) + 1) / 0.5).floor().clamp(max=3).long()
    freq = torch.bincount(bins, minlength=4).double() / len(s)
    torch.testing.assert_close(freq, truth.probs, atol=4e-3, rtol=0)


def test_binned_datamodule_is_discrete_with_exact_oracle():
    """The truth's masses against scipy's CDF at the default edges −4, −3.5, …, 4, and the test
    split's CDF against theirs (the DKW bound holds for discrete data too): the oracle scores the
    points by the truth they were drawn from."""
    base = mixture_of_gaussians_1d([-2.0, 1.0], [0.5, 0.7], [0.4, 0.6])
    dm = BinnedDataModule(base, n_bins=16, n_train=500, n_val=100, n_test=2000, seed=1)
    edges = np.linspace(-4, 4, 17)[1:-1]
    cdf = 0.4 * stats.norm.cdf(edges, -2.0, 0.5) + 0.6 * stats.norm.cdf(edges, 1.0, 0.7)
    masses = torch.from_numpy(np.diff(cdf, prepend=0.0, append=1.0))
    torch.testing.assert_close(dm.truth.probs, masses)
    n = len(dm.splits["test"])
    empirical = torch.bincount(dm.splits["test"], minlength=16).cumsum(0) / n
    bound = math.sqrt(math.log(2 / 1e-3) / (2 * n))  # P(max |F_n − F| > bound) ≤ 1e-3
    assert (empirical - masses.cumsum(0)).abs().max() < bound
    assert dm.train_x.dtype == torch.long and dm.support == "discrete"
    assert dm.event_shape == torch.Size() and dm.n_bins == 16
    assert dm.train_x.min() >= 0 and dm.train_x.max() <= 15
    torch.testing.assert_close(dm.oracle_log_prob, dm.truth.log_prob(dm.splits["test"]).float())
    with pytest.raises(ConfigError, match="n_bins=1 is invalid"):
        make(BinnedDataModule, base=base, n_bins=1)


def test_hw1_recipe_reproduced():
    """Against the recipe written out independently, and a few pinned bin counts."""
    rng = np.random.RandomState(0)
    set1 = np.digitize(0.4 + 0.1 * rng.randn(1000), np.linspace(0, 1, 20))
    rng = np.random.RandomState(0)
    a, b = 0.3 + 0.1 * rng.randn(10000), 0.8 + 0.05 * rng.randn(10000)
    mask = rng.rand(10000) < 0.5
    set2 = np.digitize(np.clip(a * mask + b * (1 - mask), 0, 1), np.linspace(0, 1, 100))
    np.testing.assert_array_equal(recipe_classes(20), set1)
    np.testing.assert_array_equal(recipe_classes(100), set2)

    d20, d100 = HW1DataModule(20), HW1DataModule(100)
    assert (len(d20.train_x), len(d20.splits["test"])) == (800, 200)
    assert (len(d100.train_x), len(d100.splits["test"])) == (8000, 2000)
    assert d20.train_x.dtype == torch.long
    counts20 = torch.bincount(d20.train_x, minlength=20)
    assert counts20[4:12].tolist() == [19, 50, 98, 151, 163, 143, 95, 45]
    assert (int(d20.train_x.min()), int(d20.train_x.max())) == (2, 13)
    counts100 = torch.bincount(d100.train_x, minlength=100)
    assert counts100[[0, 1, 2, 30, 50, 80, 81, 97]].tolist() == [0, 7, 5, 201, 24, 316, 336, 2]
    assert torch.bincount(d100.splits["test"], minlength=100)[[1, 30, 80]].tolist() == [1, 51, 68]


@pytest.mark.parametrize("n_bins", [20, 100])
def test_hw1_truth_is_the_recipe_distribution(n_bins):
    """Exact masses vs 10⁶ fresh draws of the same recipe (a different seed), bin by bin."""
    truth = hw1_truth(n_bins)
    rng = np.random.RandomState(123)
    n = 1_000_000
    if n_bins == 20:
        s = 0.4 + 0.1 * rng.randn(n)
    else:
        mask = rng.rand(n) < 0.5
        s = np.clip(np.where(mask, 0.3 + 0.1 * rng.randn(n), 0.8 + 0.05 * rng.randn(n)), 0, 1)
    classes = np.minimum(np.digitize(s, np.linspace(0, 1, n_bins)), n_bins - 1)
    freq = torch.from_numpy(np.bincount(classes, minlength=n_bins) / n)
    se = (truth.probs * (1 - truth.probs) / n).sqrt()
    assert ((freq - truth.probs).abs() <= 5 * se + 1e-9).all()
    assert truth.probs.sum().item() == pytest.approx(1, abs=1e-12)
    if n_bins == 100:
        assert truth.probs[0] == 0  # clipping moves s < 0 to 0, which np.digitize puts in bin 1


def test_hw1_oracle_and_validation_split():
    dm = HW1DataModule(20)
    torch.testing.assert_close(dm.oracle_log_prob, dm.truth.log_prob(dm.splits["test"]).float())
    assert dm.splits["val"] is dm.splits["test"]
    carved = HW1DataModule(20, val_fraction=0.25)
    assert (len(carved.train_x), len(carved.splits["val"])) == (600, 200)
    torch.testing.assert_close(torch.cat([carved.train_x, carved.splits["val"]]), dm.train_x)
    with pytest.raises(ConfigError, match="n_bins=50 is invalid"):
        make(HW1DataModule, n_bins=50)
    with pytest.raises(ConfigError, match=r"val_fraction=1\.0 is invalid"):
        make(HW1DataModule, n_bins=20, val_fraction=1.0)


def test_digits_split_by_image_and_seeded():
    dm = DigitsDataModule(seed=0)
    sizes = [len(dm.splits[s]) for s in ("train", "val", "test")]
    assert sum(sizes) == 1797 * 64 and all(n % 64 == 0 for n in sizes)
    assert dm.train_x.dtype == torch.long and dm.n_bins == 17
    assert int(dm.train_x.min()) == 0 and int(dm.train_x.max()) == 16
    assert dm.oracle_log_prob is None
    # each image in exactly one split: the splits' images are a permutation of the data set's
    images = torch.cat([dm.splits[s].reshape(-1, 64) for s in ("train", "val", "test")])
    assert sorted(map(tuple, images.tolist())) == sorted(map(tuple, load_digits().data.tolist()))
    torch.testing.assert_close(DigitsDataModule(seed=0).splits["test"], dm.splits["test"])
    assert not torch.equal(DigitsDataModule(seed=1).splits["test"], dm.splits["test"])
    with pytest.raises(ConfigError, match="n_bins=16 is invalid"):
        make(DigitsDataModule, n_bins=16)


@pytest.mark.parametrize(
    "experiment",
    ["hw1_histogram_d20", "hw1_histogram_d100", "hw1_dmol_d20", "hw1_dmol_d100", "digits_dmol"],
)
def test_experiment_runs_fast(make_cfg, experiment):
    metrics = train(make_cfg(f"experiment={experiment}", "debug=fast"))
    assert np.isfinite(metrics["test/nll"])
    assert metrics["test/bits_per_dim"] == pytest.approx(metrics["test/nll"] / math.log(2))
    assert ("test/kl_gap" in metrics) == experiment.startswith("hw1")
    if "test/kl_gap" in metrics:  # model NLL − oracle NLL, not the other way round
        gap = metrics["test/nll"] - metrics["test/oracle_nll"]
        assert metrics["test/kl_gap"] == pytest.approx(gap, rel=1e-6)


@pytest.mark.parametrize("model", ["histogram", "dmol"])
def test_models_train_on_binned_synthetic_data(make_cfg, model):
    metrics = train(make_cfg(f"model={model}", "data=binned_mog1d", "debug=fast"))
    assert np.isfinite(metrics["test/kl_gap"])


def test_figures_drawn(tmp_path):
    from src.models.dmol import DiscretizedLogisticMixture
    from src.plots import plotter

    dm = HW1DataModule(20)
    model = DiscretizedLogisticMixture(20).eval()
    figures = {}
    for stage in ("fit", "samples"):
        figures |= plotter("discrete", 0, stage)(model, dm)
    assert set(figures) == {"pmf", "samples"}
    ax = figures["pmf"].axes[0]
    assert len(ax.patches) == 1 and {"truth", "train frequencies"} <= {
        t.get_text() for t in ax.get_legend().get_texts()
    }
    # the bars (one outline) are the model's pmf, one per bin centred on it; the dots the truth's
    heights, edges = ax.patches[0].get_data()[:2]
    with torch.no_grad():
        pmf = model.log_prob(torch.arange(20)).exp().double()
    torch.testing.assert_close(torch.from_numpy(heights), pmf)
    np.testing.assert_array_equal(edges, np.arange(21) - 0.5)
    (dots,) = [line for line in ax.lines if line.get_label() == "truth"]
    torch.testing.assert_close(torch.as_tensor(dots.get_ydata()), dm.truth.probs)


@pytest.mark.parametrize(
    ("overrides", "function"),
    [
        (("experiment=hw1_histogram_d20", "model.smoothing=1.0"), HistogramLogProb),
        (("experiment=hw1_dmol_d100",), DMoLLogProb),
    ],
    ids=["histogram", "dmol"],
)
def test_analytic_grad_option_trains(make_cfg, monkeypatch, overrides, function):
    """The option reaches the model (its hand-derived autograd Function runs) and its step agrees
    with autograd's: the same test NLL after it (Adam's first step sees little more than the
    gradient's signs; tests/test_histogram.py and tests/test_dmol.py check the values)."""
    nll = {}
    for analytic in (False, True):
        calls = spy(monkeypatch, function)
        metrics = train(make_cfg(*overrides, f"model.analytic_grad={analytic}", "debug=fast"))
        monkeypatch.undo()
        assert bool(calls) == analytic
        nll[analytic] = metrics["test/nll"]
    assert nll[True] == pytest.approx(nll[False], rel=1e-5)


def spy(monkeypatch, function: type[torch.autograd.Function]) -> list[int]:
    """A list that grows by one at each call of `function.apply`."""
    calls, apply = [], function.apply
    monkeypatch.setattr(function, "apply", lambda *args: calls.append(1) or apply(*args))
    return calls
