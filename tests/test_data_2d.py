"""2-D truths and data modules: exact densities, validation, pairing with models."""

import math

import pytest
import torch

from src.data.moons import MoonsDataModule
from src.data.synthetic import SyntheticDataModule
from src.data.truths_2d import banana, gaussian_mixture
from src.errors import ConfigError, UserError
from src.train import train


def test_ring_mixture_defaults():
    truth = gaussian_mixture()
    loc = truth.component_distribution.loc
    assert loc.shape == (8, 2)
    torch.testing.assert_close(loc.norm(dim=-1), torch.full((8,), 4.0).double())
    torch.testing.assert_close(truth.mixture_distribution.probs, torch.full((8,), 0.125).double())


def test_mixture_in_three_dimensions_with_explicit_parameters():
    truth = gaussian_mixture(
        n_components=2,
        dim=3,
        means=[[0, 0, 0], [1, 2, 3]],
        covariances=[[[1, 0.5, 0], [0.5, 1, 0], [0, 0, 2]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]]],
        weights=[0.25, 0.75],
    )
    x = truth.sample((4,))
    assert x.shape == (4, 3)
    manual = torch.logsumexp(
        torch.stack([c.log_prob(x) for c in _components(truth)])
        + truth.mixture_distribution.logits.unsqueeze(-1),
        0,
    )
    torch.testing.assert_close(truth.log_prob(x), manual)


def _components(truth):
    comp = truth.component_distribution
    return [
        torch.distributions.MultivariateNormal(comp.loc[k], comp.covariance_matrix[k])
        for k in range(len(comp.loc))
    ]


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
        gaussian_mixture(**kwargs)
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
    truth = banana(scales=[1.0, 0.5], curvature=1.0)
    x = truth.sample((5,))
    x1, x2 = x[:, 0], x[:, 1]
    normal = torch.distributions.Normal
    expected = normal(0.0, 1.0).log_prob(x1) + normal(x1.square() - 1.0, 0.5).log_prob(x2)
    torch.testing.assert_close(truth.log_prob(x), expected)
    a = torch.linspace(-7, 7, 701, dtype=torch.float64)
    b = torch.linspace(-4, 50, 2701, dtype=torch.float64)
    gx, gy = torch.meshgrid(a, b, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    mass = truth.log_prob(grid).exp().sum() * (a[1] - a[0]) * (b[1] - b[0])
    assert float(mass) == pytest.approx(1.0, abs=1e-3)


def test_banana_samples_have_the_right_moments():
    torch.manual_seed(0)
    x = banana(scales=[1.0, 0.5], curvature=1.0).sample((200_000,))
    # x₁ ~ N(0, 1); E x₂ = E[x₁² − 1] = 0; Var x₂ = Var(x₁²) + 0.25 = 2.25
    torch.testing.assert_close(x.mean(0), torch.zeros(2).double(), atol=0.02, rtol=0)
    assert float(x[:, 1].var()) == pytest.approx(2.25, rel=0.03)


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
    assert a.oracle_log_prob is None and a.support == "continuous"
    with pytest.raises(ConfigError):
        MoonsDataModule(dim=3)


def test_model_dimension_must_match_the_data(make_cfg):
    with pytest.raises(UserError, match=r"events have shape \(3,\), the data's \(2,\)"):
        train(make_cfg("experiment=gmm_mog2d", "model.dim=3", "debug=fast"))


@pytest.mark.parametrize(
    "choices", [("model=gmm",), ("model=gmm", "fit=em"), ("model=realnvp",)], ids=str
)
def test_models_take_their_dimension_from_the_data(make_cfg, choices):
    metrics = train(make_cfg(*choices, "data=mog2d", "data.dim=3", "debug=fast"))
    assert math.isfinite(metrics["test/kl_gap"])
