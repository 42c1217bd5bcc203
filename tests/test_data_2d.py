"""2-D truths and data modules: exact densities, validation, pairing with models."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from src.data.moons import MoonsDataModule
from src.data.synthetic import SyntheticDataModule
from src.data.truths_2d import banana, gaussian_mixture
from src.errors import ConfigError, UserError
from src.train import train
from src.utils.constraints import make


def test_ring_mixture_defaults():
    """FFJORD's eight centres (4 × the axes and diagonals' unit points), not merely eight points
    at radius 4; equal weights, covariance 0.5² I."""
    truth = gaussian_mixture()
    comp = truth.component_distribution
    c = 4 / math.sqrt(2)
    ffjord = [(4, 0), (-4, 0), (0, 4), (0, -4), (c, c), (c, -c), (-c, c), (-c, -c)]
    distance = torch.cdist(comp.loc, torch.tensor(ffjord, dtype=torch.float64))
    assert (distance.min(0).values < 1e-12).all() and (distance.min(1).values < 1e-12).all()
    cov = 0.25 * torch.eye(2, dtype=torch.float64).expand(8, 2, 2)
    torch.testing.assert_close(comp.covariance_matrix, cov)
    torch.testing.assert_close(truth.mixture_distribution.probs, torch.full((8,), 0.125).double())


def test_mixture_in_three_dimensions_with_explicit_parameters():
    """log p against scipy's densities built from the same literal settings: a weight, mean or
    covariance entry put in the wrong place would show."""
    means = [[0, 0, 0], [1, 2, 3]]
    covariances = [[[1, 0.5, 0], [0.5, 1, 0], [0, 0, 2]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]]
    weights = [0.25, 0.75]
    truth = gaussian_mixture(2, 3, means=means, covariances=covariances, weights=weights)
    assert truth.sample((4,)).shape == (4, 3)
    x = np.array([[0.5, -1.0, 2.0], [1.0, 2.0, 3.0], [-2.0, 0.3, 0.0], [0.2, 0.9, 1.1]])
    expected = np.logaddexp(
        *(
            np.log(w) + stats.multivariate_normal(m, c).logpdf(x)
            for m, c, w in zip(means, covariances, weights, strict=True)
        )
    )
    torch.testing.assert_close(truth.log_prob(torch.from_numpy(x)), torch.from_numpy(expected))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"n_components": 2, "covariances": [[[1, 1], [1, 1]], [[1, 0], [0, 1]]]}, "covariances"),
        ({"n_components": 1, "covariances": [[[1, 0.5], [0.0, 1]]]}, "covariances"),
        ({"n_components": 2, "means": [[0, 0]]}, "means"),
        ({"n_components": 2, "weights": [0.9, 0.3]}, "weights"),
        ({"dim": 1}, "dim"),
        ({"std": 0.0}, "std"),
    ],
)
def test_bad_mixture_settings(kwargs, key):
    with pytest.raises(ConfigError) as error:
        make(gaussian_mixture, **kwargs)
    assert error.value.key == key


def test_singular_covariance_in_the_config_is_one_line(make_cfg):
    cfg = make_cfg(
        "experiment=gmm_em_mog2d",
        "data.truth.n_components=1",
        "model.n_components=1",
        "data.truth.covariances=[[[1,1],[1,1]]]",
        "debug=fast",
    )
    with pytest.raises(
        ConfigError, match=r"^data\.truth\.covariances=.* symmetric positive-definite"
    ):
        train(cfg)


def test_banana_density_is_exact_and_normalised():
    """σ₁ ≠ 1 and b ≠ 1, so that σ₁ and σ₁², or b and b², cannot stand in for each other."""
    truth = banana(scales=[1.5, 0.5], curvature=0.7)
    x = truth.sample((5,))
    x1, x2 = x[:, 0], x[:, 1]
    normal = torch.distributions.Normal
    expected = normal(0.0, 1.5).log_prob(x1) + normal(0.7 * (x1.square() - 2.25), 0.5).log_prob(x2)
    torch.testing.assert_close(truth.log_prob(x), expected)
    a = torch.linspace(-10, 10, 801, dtype=torch.float64)
    b = torch.linspace(-5, 75, 3201, dtype=torch.float64)
    gx, gy = torch.meshgrid(a, b, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    mass = truth.log_prob(grid).exp().sum() * (a[1] - a[0]) * (b[1] - b[0])
    assert float(mass) == pytest.approx(1.0, abs=1e-8)  # the Riemann sum errs by ~3e-11


def test_banana_samples_follow_the_recipe():
    """x₁ / σ₁ and (x₂ − b(x₁² − σ₁²)) / σ₂ are N(0, 1) (Kolmogorov–Smirnov): a bend of the
    wrong sign or size leaves the moments of x₂ alone but not this residual."""
    torch.manual_seed(0)
    x = banana(scales=[1.5, 0.5], curvature=0.7).sample((200_000,)).numpy()
    residual = (x[:, 1] - 0.7 * (x[:, 0] ** 2 - 2.25)) / 0.5
    assert stats.kstest(x[:, 0] / 1.5, "norm").pvalue > 1e-3
    assert stats.kstest(residual, "norm").pvalue > 1e-3


def test_synthetic_module_checks_a_declared_dimension():
    with pytest.raises(ConfigError, match="dim=3"):
        SyntheticDataModule(gaussian_mixture(), dim=3, n_train=10, n_val=10, n_test=10)
    dm = SyntheticDataModule(banana(), dim=2, n_train=50, n_val=10, n_test=30)
    assert dm.train_x.shape == (50, 2) and dm.train_x.dtype == torch.float32
    assert dm.oracle_log_prob.shape == (30,)


def test_moons_are_seeded_and_have_no_oracle():
    a, b = MoonsDataModule(300, 50, 80, seed=1), MoonsDataModule(300, 50, 80, seed=1)
    assert torch.equal(a.train_x, b.train_x) and a.train_x.shape == (300, 2)
    assert not torch.equal(a.train_x, MoonsDataModule(300, 50, 80, seed=2).train_x)
    equal_sizes = MoonsDataModule(50, 50, 50, seed=1).splits
    assert not torch.equal(equal_sizes["train"], equal_sizes["val"])  # a seed for each split
    assert a.oracle_log_prob is None and a.support == "continuous"
    with pytest.raises(ConfigError, match=r"^dim=3 is invalid"):
        make(MoonsDataModule, dim=3)


def test_model_dimension_must_match_the_data(make_cfg):
    with pytest.raises(UserError, match=r"events have shape \(3,\), the data's \(2,\)"):
        train(make_cfg("experiment=gmm_mog2d", "model.dim=3", "debug=fast"))


@pytest.mark.parametrize(
    "choices", [("model=gmm",), ("model=gmm", "fit=em"), ("model=realnvp",)], ids=str
)
def test_models_take_their_dimension_from_the_data(make_cfg, choices):
    metrics = train(make_cfg(*choices, "data=mog2d", "data.dim=3", "debug=fast"))
    assert math.isfinite(metrics["test/kl_gap"])
