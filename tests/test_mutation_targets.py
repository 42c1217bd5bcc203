"""ELBO targets, tests written to kill the survivors of `make mutation MODULE=targets`: the
log-densities against scipy's, normalisation by quadrature, the settings' checks by hand."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from src.errors import ConfigError
from src.estimators.targets import BananaTarget, GaussianTarget, NonZero
from src.utils.constraints import check

POINTS = torch.tensor([[0.3, -1.2], [-1.5, 2.0], [2.0, 0.1]], dtype=torch.float64)


def test_gaussian_target_log_prob_is_scipys():
    target = GaussianTarget(mean=[1.0, -1.0], std=[0.5, 2.0]).double()
    expected = stats.norm(1.0, 0.5).logpdf(POINTS[:, 0]) + stats.norm(-1.0, 2.0).logpdf(
        POINTS[:, 1]
    )
    torch.testing.assert_close(target.log_prob(POINTS), torch.from_numpy(expected))
    assert target.dim == 2 and target.mean.dtype == target.std.dtype == torch.float64


@pytest.mark.parametrize(("a", "b"), [(1.5, 0.7), (0.8, -2.0)])
def test_banana_log_prob_is_the_documented_density(a, b):
    """z₁ ~ N(0, a²), z₂ | z₁ ~ N(b(z₁² − a²), 1), with scipy's normal (a, b ≠ 1 so that a² = a³
    or b·x = x/b cannot hide a slip)."""
    target = BananaTarget(a=a, b=b)
    z1, z2 = POINTS[:, 0].numpy(), POINTS[:, 1].numpy()
    expected = stats.norm(0, a).logpdf(z1) + stats.norm(b * (z1**2 - a**2), 1).logpdf(z2)
    torch.testing.assert_close(target.log_prob(POINTS), torch.from_numpy(expected))
    assert target.log_prob(POINTS.float()).dtype == torch.float32


def test_banana_is_normalised():
    """Riemann sum of the density on a fine grid covering its mass (z₂'s mean b(z₁² − a²) < 40)."""
    target = BananaTarget(a=1.2, b=0.6)
    z1, z2 = torch.linspace(-8, 8, 801, dtype=torch.float64), torch.linspace(-12, 40, 2601)
    grid = torch.stack(torch.meshgrid(z1, z2.double(), indexing="ij"), -1)
    mass = target.log_prob(grid).exp().sum() * (z1[1] - z1[0]) * (z2[1] - z2[0]).double()
    assert mass.item() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(("value", "ok"), [(1.0, True), (-0.5, True), (0, False), (0.0, False)])
def test_non_zero_accepts_any_finite_number_but_zero(value, ok):
    assert NonZero().accepts(value) is ok
    assert NonZero().accepts(float("inf")) is False and NonZero().accepts(float("nan")) is False


def test_banana_settings_are_checked():
    check(BananaTarget, {"a": 0.5, "b": -1.0}, "")
    with pytest.raises(ConfigError, match=r"^b=0 is invalid: expected a finite number != 0$"):
        check(BananaTarget, {"a": 1.0, "b": 0}, "")
    with pytest.raises(ConfigError, match=r"^a=0 is invalid"):
        check(BananaTarget, {"a": 0, "b": 1.0}, "")


def test_gaussian_target_needs_one_std_per_mean():
    GaussianTarget.check_together({"mean": [0.0, 1.0], "std": [1.0, 2.0]})
    GaussianTarget.check_together({"mean": [0.0, 1.0]})
    expected = r"^std=\[1\.0\] is invalid: expected a list of 2 finite numbers > 0, one per mean$"
    with pytest.raises(ConfigError, match=expected):
        GaussianTarget.check_together({"mean": [0.0, 1.0], "std": [1.0]})
    with pytest.raises(
        ConfigError, match=r"^std=\[1\.0, 1\.0, 1\.0\] is invalid: expected a list of 2"
    ):
        GaussianTarget.check_together({"mean": [0.0, 1.0], "std": [1.0] * 3})


def test_a_high_dimensional_gaussian_target_is_accepted():
    """300 means and 300 stds: the lengths are equal ints, not the same object (ints above 256
    are not cached), so only a comparison by value accepts them."""
    GaussianTarget.check_together({"mean": [0.0] * 300, "std": [1.0] * 300})


def test_banana_defaults_are_the_unit_banana():
    target = BananaTarget()
    assert (target.a, target.b) == (1.0, 1.0)
    z = torch.tensor([[0.5, -0.75]], dtype=torch.float64)  # z₂ = 1·(0.25 − 1): on the ridge
    expected = stats.norm(0, 1).logpdf(0.5) + stats.norm(0, 1).logpdf(0.0)
    assert target.log_prob(z).item() == pytest.approx(expected)
