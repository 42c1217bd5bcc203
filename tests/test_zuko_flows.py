"""zuko's NSF and MAF behind the density-model protocol: the standardisation's log-determinant,
a normalised density, a faithful sampler, a fit that learns, settings checked."""

from __future__ import annotations

import math

import pytest
import torch
import zuko
from torch.distributions import Independent, Normal

from src.data.truths_2d import banana
from src.errors import ConfigError
from src.models.zuko_flows import MAF, NSF
from src.train import train
from src.utils.constraints import make

F64 = torch.float64
MODELS = [NSF, MAF]


def _fitted_to_scaled_data(model_class, seed: int = 0, **kwargs):
    """A float64 flow standardised on data with scales (3, 0.5) around (4, −1), its layers
    pushed further from zuko's random start."""
    torch.manual_seed(seed)
    model = model_class(2, **kwargs).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(4000, 2, dtype=F64) * torch.tensor([3.0, 0.5], dtype=F64) + torch.tensor(
        [4.0, -1.0], dtype=F64
    )
    model.init_from_data(x)
    return model, x


@pytest.mark.parametrize("model_class", MODELS)
def test_log_prob_is_zuko_s_after_the_standardisation(model_class):
    """log p(x) = log p_z((x − m)/σ) − Σ log σ, m and σ the training data's."""
    model, data = _fitted_to_scaled_data(model_class)
    mean, std = data.mean(0), data.std(0)
    x = torch.randn(50, 2, dtype=F64) * 3
    with torch.no_grad():
        expected = model.flow().log_prob((x - mean) / std) - std.log().sum()
        torch.testing.assert_close(model.log_prob(x), expected, rtol=0, atol=1e-6)
    assert model.log_prob(x).shape == (50,) and model.sample(7).shape == (7, 2)
    assert model.support == "continuous" and model.event_shape == (2,)


def _grid(model, n: int = 300):
    """Cell centres over [−11, 19] × [−4, 2] (the data ± 6 std) and each cell's p·area."""
    xs = -11 + (torch.arange(n, dtype=F64) + 0.5) * 30 / n
    ys = -4 + (torch.arange(n, dtype=F64) + 0.5) * 6 / n
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    with torch.no_grad():
        log_p = model.log_prob(points)
    return points, log_p, log_p.exp() * (30 / n) * (6 / n)


@pytest.mark.parametrize("model_class", MODELS)
def test_density_integrates_to_one(model_class):
    """Fails without the standardisation's log-determinant (off by a factor 1/(3·0.5))."""
    model, _ = _fitted_to_scaled_data(model_class, seed=1)
    _, _, mass = _grid(model)
    assert float(mass.sum()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("model_class", MODELS)
def test_samples_follow_the_density(model_class):
    """Mean log p on samples = −entropy from the grid; quadrant frequencies = their masses."""
    model, _ = _fitted_to_scaled_data(model_class, seed=2)
    points, log_p_grid, mass = _grid(model)
    torch.manual_seed(3)
    drawn = model.sample(40_000)
    with torch.no_grad():
        log_p = model.log_prob(drawn)
    neg_entropy = float((mass * log_p_grid).sum())
    assert float(log_p.mean()) == pytest.approx(neg_entropy, abs=4 * float(log_p.std()) / 200)
    median = drawn.median(0).values
    for corner in ([1, 1], [1, -1], [-1, 1], [-1, -1]):
        sign = torch.tensor(corner, dtype=F64)
        frequency = ((drawn - median) * sign > 0).all(-1).double().mean()
        box_mass = mass[((points - median) * sign > 0).all(-1)].sum()
        assert float(frequency) == pytest.approx(float(box_mass), abs=0.01)


@pytest.mark.parametrize("model_class", MODELS)
def test_a_short_fit_lowers_the_nll(model_class, one_torch_thread):
    torch.manual_seed(4)
    x = banana().sample((2000,)).float()
    model = model_class(2, transforms=2, hidden_features=[32, 32])
    model.init_from_data(x)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(-model.log_prob(x).mean())
    for _ in range(150):
        loss = -model.log_prob(x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = float(-model.log_prob(x).mean())
    oracle = float(-banana().log_prob(x).mean())
    assert after < before - 0.3 and after < oracle + 0.15


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"dim": 1}, "dim"),
        ({"transforms": 0}, "transforms"),
        ({"hidden_features": []}, "hidden_features"),
        ({"hidden_features": [64, 0]}, "hidden_features"),
        ({"hidden_features": "64"}, "hidden_features"),
        ({"hidden_features": [64, 1.5]}, "hidden_features"),
    ],
)
@pytest.mark.parametrize("model_class", MODELS)
def test_bad_settings_name_the_key(model_class, kwargs, key):
    with pytest.raises(ConfigError) as error:
        make(model_class, **kwargs)
    assert error.value.key == key


@pytest.mark.parametrize("bins", [0, 2.5])
def test_nsf_bins_must_be_a_positive_integer(bins):
    with pytest.raises(ConfigError) as error:
        make(NSF, bins=bins)
    assert error.value.key == "bins"


def test_nsf_at_bound_five_is_zuko_s_nsf():
    """The adapter's MAF with a spline of bound 5 is zuko.flows.NSF: same weights from the same
    seed, same log-density."""
    torch.manual_seed(5)
    ours = NSF(2, transforms=3, hidden_features=[16, 16], bins=6, bound=5.0).double()
    torch.manual_seed(5)
    zukos = zuko.flows.NSF(2, bins=6, transforms=3, hidden_features=(16, 16), passes=2).double()
    z = torch.randn(40, 2, dtype=F64) * 3
    with torch.no_grad():
        torch.testing.assert_close(ours.flow().log_prob(z), zukos().log_prob(z), rtol=0, atol=0)


@pytest.mark.parametrize(("bound", "bent"), [(5.0, False), (8.0, True)])
def test_the_splines_bend_inside_the_bound_only(bound, bent):
    """At (6, −6) every coordinate is outside [−5, 5], so at bound 5 each layer is the identity
    and log p is the base's N(0, I) log-density; at bound 8 the point is inside and moved."""
    model, _ = _fitted_to_scaled_data(NSF, seed=6, bound=bound)
    model.standardize = type(model.standardize)(2).double()  # z = x
    z = torch.tensor([[6.0, -6.0]], dtype=F64)
    base = Independent(Normal(torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)), 1)
    with torch.no_grad():
        gap = float((model.log_prob(z) - base.log_prob(z)).abs())
    assert (gap > 1e-3) if bent else (gap < 1e-9)


@pytest.mark.parametrize("bound", [0, -1.0, math.inf, "8"])
def test_nsf_bound_must_be_a_positive_number(bound):
    with pytest.raises(ConfigError) as error:
        make(NSF, bound=bound)
    assert error.value.key == "bound"


@pytest.mark.parametrize(
    "overrides",
    [("model=nsf", "data=pinwheel"), ("model=maf", "data=mog2d", "data.dim=3")],
)
def test_runs_end_to_end_and_take_the_dimension_from_the_data(make_cfg, overrides):
    metrics = train(make_cfg(*overrides, "debug=fast"))
    assert math.isfinite(metrics["test/kl_gap"])
