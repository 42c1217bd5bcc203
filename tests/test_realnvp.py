"""RealNVP: invertibility, exact log-determinants, a normalised density, a faithful sampler."""

import pytest
import torch
from torch.autograd.functional import jacobian

from src.errors import ConfigError
from src.models.realnvp import AffineCoupling, RealNVP


def _random_flow(dim=2, seed=0, **kwargs) -> RealNVP:
    """A flow whose layers are far from the identity (their last layers start at zero)."""
    torch.manual_seed(seed)
    flow = RealNVP(dim, **kwargs).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0, 0.15)
        flow.transforms[0].shift.normal_()
        flow.transforms[0].log_scale.normal_(0, 0.3)
    return flow


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_inverse_undoes_forward_and_logdets_cancel(dim):
    flow = _random_flow(dim)
    x = torch.randn(64, dim, dtype=torch.float64) * 2
    z, forward_logdet = flow(x)
    back, inverse_logdet = flow.inverse(z)
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(forward_logdet + inverse_logdet, torch.zeros(64).double())
    assert forward_logdet.abs().min() > 1e-3  # a non-trivial transform


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_logabsdet_is_log_abs_det_of_the_jacobian(dim):
    flow = _random_flow(dim, seed=1)
    x = torch.randn(6, dim, dtype=torch.float64)
    _, logdet = flow(x)
    for point, expected in zip(x, logdet):
        jac = jacobian(lambda v: flow(v.unsqueeze(0))[0].squeeze(0), point)
        torch.testing.assert_close(torch.linalg.slogdet(jac).logabsdet, expected)


def test_coupling_logdet_is_the_sum_of_log_scales_not_of_scales():
    """The notes' 1ᵀ exp(s) differs from log|det J| = Σ s (checked by the Jacobian above)."""
    torch.manual_seed(2)
    layer = AffineCoupling(torch.tensor([1.0, 0.0]), 16, 2, 3.0).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(5, 2, dtype=torch.float64)
    s, _ = layer._scale_shift(x * layer.mask)
    _, logdet = layer(x)
    torch.testing.assert_close(logdet, s.sum(-1))
    assert not torch.allclose(logdet, s.exp().sum(-1) - 1)  # 1ᵀe^s, less the kept coordinate
    assert s.abs().max() <= 3.0  # bounded log-scales


def _grid(flow, lim=12.0, n=400):
    axis = torch.linspace(-lim, lim, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    with torch.no_grad():
        density = flow.log_prob(points).exp()
    return points, density, (axis[1] - axis[0]) ** 2


def test_density_integrates_to_one():
    flow = _random_flow(2, seed=3, n_layers=4, hidden=16)  # all its mass inside the grid
    _, density, cell = _grid(flow)
    assert float(density.sum() * cell) == pytest.approx(1.0, abs=2e-3)


def test_samples_follow_the_density():
    """Mean log p on samples = −entropy from the grid; box frequencies = box integrals."""
    flow = _random_flow(2, seed=4, n_layers=4, hidden=16)
    points, density, cell = _grid(flow)
    torch.manual_seed(5)
    drawn = flow.sample(100_000)
    with torch.no_grad():
        log_p = flow.log_prob(drawn)
    neg_entropy = float((density * density.clamp_min(1e-300).log()).sum() * cell)
    assert float(log_p.mean()) == pytest.approx(neg_entropy, abs=4 * float(log_p.std()) / 300)
    median = drawn.median(0).values
    in_box = (drawn < median).all(-1).double().mean()
    box_mass = density[(points < median).all(-1)].sum() * cell
    assert float(in_box) == pytest.approx(float(box_mass), abs=0.01)


def test_identity_at_initialisation_after_standardisation():
    flow = RealNVP(2).double()
    x = torch.randn(500, 2, dtype=torch.float64) * torch.tensor([3.0, 0.5]) + 4
    flow.init_from_data(x)
    z, _ = flow(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(2).double(), atol=1e-10, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(2).double())


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"dim": 1}, "dim"), ({"n_layers": 0}, "n_layers"), ({"scale_bound": -1.0}, "scale_bound")],
)
def test_bad_settings_raise_config_errors(kwargs, key):
    with pytest.raises(ConfigError) as error:
        RealNVP(**kwargs)
    assert error.value.key == key


@pytest.mark.slow  # the full experiment: about 2 minutes on one core
def test_realnvp_banana_reaches_the_quality_target(make_cfg):
    from src.train import train

    metrics = train(make_cfg("experiment=realnvp_banana", "callbacks=none", "~logger"))
    assert metrics["test/kl_gap"] <= 0.05
