"""Figures drawn as few artists: a histogram is one outline with the data's heights."""

import numpy as np
import pytest
import torch

from src.data.seed003 import Seed003DataModule
from src.models.flow1d import MixtureCDFFlow1d
from src.plots import plotter


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
