"""Figures drawn as few artists (a histogram is one outline with the data's heights) that show
what they claim: every marginal of D-dimensional data, one colour scale, data kept visible."""

import numpy as np
import pytest
import torch
from matplotlib.collections import QuadMesh

from src.data.seed003 import Seed003DataModule
from src.data.synthetic import SyntheticDataModule
from src.data.truths_2d import gaussian_mixture
from src.models.flow1d import MixtureCDFFlow1d
from src.models.gmm import GaussianMixture
from src.plots import plotter
from src.plots.corner import corner


def test_fit_figure_histogram_is_the_training_density_over_80_bins():
    data = Seed003DataModule(num_train=2000, num_val=10, num_test=10)
    figures = plotter("continuous", 0, "fit")(MixtureCDFFlow1d(3), data)
    (outline,) = figures["density"].axes[0].patches
    heights, edges = outline.get_data()[:2]
    expected, expected_edges = np.histogram(data.train_x.double().numpy(), 80, density=True)
    np.testing.assert_allclose(heights, expected)
    np.testing.assert_allclose(edges, expected_edges)
    assert np.sum(heights * np.diff(edges)) == pytest.approx(1.0)


def test_samples_figure_histogram_is_of_the_models_samples():
    torch.manual_seed(0)
    data = Seed003DataModule(num_train=100, num_val=10, num_test=2000)
    model = MixtureCDFFlow1d(3)
    model.init_from_data(data.train_x)
    (outline,) = plotter("continuous", 0, "samples")(model, data)["samples"].axes[0].patches
    heights, edges = outline.get_data()[:2]
    centres = torch.from_numpy((edges[:-1] + edges[1:]) / 2)
    with torch.no_grad():  # 20 000 samples: the histogram follows the model's density
        density = model.log_prob(centres.float()).exp().double().numpy()
    assert np.abs(heights - density).max() < 0.1 * density.max()


def _mixture_data(dim: int, names: list[str] | None = None) -> SyntheticDataModule:
    data = SyntheticDataModule(gaussian_mixture(4, dim), n_train=300, n_val=10, n_test=300)
    data.column_names = names
    return data


def _panels(fig) -> tuple[list, list, str]:
    """(1-D marginal axes, 2-D marginal axes, the key's title): a pair panel holds a sample
    histogram (a mesh); the key is an axes drawn without axis lines."""
    shown = [ax for ax in fig.axes if ax.axison]
    pairs = [ax for ax in shown if any(isinstance(c, QuadMesh) for c in ax.collections)]
    (key,) = [ax.get_legend() for ax in fig.axes if not ax.axison]
    return [ax for ax in shown if ax not in pairs], pairs, key.get_title().get_text()


@pytest.mark.parametrize(
    "stage, tag, split", [("fit", "density", "train"), ("samples", "samples", "test")]
)
def test_corner_of_4_columns_has_every_marginal_named_by_its_column(stage, tag, split):
    names = ["sepal length", "sepal width", "petal length", "petal width"]
    data = _mixture_data(4, names)
    fig = plotter("continuous", 1, stage)(GaussianMixture(3, 4), data)[tag]
    diagonal, pairs, note = _panels(fig)
    assert (len(diagonal), len(pairs)) == (4, 4 * 3 // 2)
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()] == names
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == names[1:]
    assert note == ""  # nothing left out, nothing said
    pair_columns = [(j, i) for i in range(4) for j in range(i)]  # row by row, below the diagonal
    for ax, columns in zip(pairs, pair_columns):  # the data drawn above the samples' histogram
        mesh, points = ax.collections
        assert points.get_zorder() > mesh.get_zorder()
        expected = data.splits[split][:, list(columns)].numpy()
        np.testing.assert_array_equal(points.get_offsets(), expected)


def test_corner_of_8_columns_shows_the_first_6_and_says_so():
    fig = plotter("continuous", 1, "samples")(GaussianMixture(3, 8), _mixture_data(8))["samples"]
    fig.suptitle("GaussianMixture: test/nll = 1")  # the figure callback's heading
    diagonal, pairs, note = _panels(fig)
    assert (len(diagonal), len(pairs)) == (6, 6 * 5 // 2)
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_xlabel()] == [
        "x₁", "x₂", "x₃", "x₄", "x₅", "x₆"
    ]  # fmt: skip
    assert note == "first 6 of 8 columns"


def test_corner_diagonal_histograms_share_bins_and_count_mass_outside_them():
    points = np.random.default_rng(0).normal(size=(500, 3))
    samples = np.random.default_rng(1).normal(size=(4000, 3)) + 3  # a third beyond the data
    model, data = corner(samples, points, ["a", "b", "c"]).axes[0].patches
    (model_heights, edges), (data_heights, data_edges) = model.get_data()[:2], data.get_data()[:2]
    np.testing.assert_array_equal(edges, data_edges)
    assert edges[0] < points[:, 0].min() < points[:, 0].max() < edges[-1]
    inside = ((samples[:, 0] >= edges[0]) & (samples[:, 0] <= edges[-1])).mean()
    assert 0.2 < inside < 0.9
    assert np.sum(model_heights * np.diff(edges)) == pytest.approx(inside)
    np.testing.assert_allclose(data_heights, np.histogram(points[:, 0], edges, density=True)[0])


def test_2d_densities_share_one_colour_scale_and_test_points_lie_over_samples():
    torch.manual_seed(0)
    data = _mixture_data(2, ["height", "weight"])
    model = GaussianMixture(2, 2)
    model.init_from_data(data.train_x)
    fig = plotter("continuous", 1, "fit")(model, data)["density"]
    (model_image,), (truth_image,) = fig.axes[0].images, fig.axes[1].images
    assert model_image.get_clim() == truth_image.get_clim()
    vmax = max(model_image.get_array().max(), truth_image.get_array().max())
    assert model_image.get_clim() == (0, pytest.approx(vmax))
    panels = [ax for ax in fig.axes if ax.get_title()]  # not the colour bar
    assert [ax.get_title() for ax in panels] == ["model density", "truth density", "train data"]
    assert {(ax.get_xlabel(), ax.get_ylabel()) for ax in panels} == {("height", "weight")}
    ax = plotter("continuous", 1, "samples")(model, data)["samples"].axes[0]
    drawn, test = ax.collections
    assert test.get_zorder() > drawn.get_zorder()
    assert test.get_sizes()[0] > drawn.get_sizes()[0]
    np.testing.assert_array_equal(test.get_offsets(), data.splits["test"].numpy())
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("height", "weight")
