"""RealNVP: invertibility, exact log-determinants, a normalised density, a faithful sampler."""

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from src.errors import ConfigError
from src.models.realnvp import PERMUTATIONS, AffineCoupling, Permutation, RealNVP
from src.utils.constraints import make


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


@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("dim", [2, 3, 4, 5])
def test_inverse_undoes_forward_and_logdets_cancel(dim, permutation):
    flow = _random_flow(dim, permutation=permutation)
    x = torch.randn(64, dim, dtype=torch.float64) * 2
    z, forward_logdet = flow(x)
    back, inverse_logdet = flow.inverse(z)
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(forward_logdet + inverse_logdet, torch.zeros(64).double())
    assert forward_logdet.abs().min() > 1e-3  # a non-trivial transform


@pytest.mark.parametrize("permutation", PERMUTATIONS)
@pytest.mark.parametrize("dim", [2, 3, 4, 5])
def test_logabsdet_is_log_abs_det_of_the_jacobian(dim, permutation):
    flow = _random_flow(dim, seed=1, permutation=permutation)
    x = torch.randn(6, dim, dtype=torch.float64)
    _, logdet = flow(x)
    for point, expected in zip(x, logdet):
        jac = jacobian(lambda v: flow(v.unsqueeze(0))[0].squeeze(0), point)
        torch.testing.assert_close(torch.linalg.slogdet(jac).logabsdet, expected)


def test_coupling_logdet_is_the_sum_of_bounded_log_scales_not_of_scales():
    """One layer's log|det J| (autograd's Jacobian) is Σ s, not the notes' 1ᵀe^s; and s stays
    within ±scale_bound where the network's raw log-scales lie far beyond it."""
    torch.manual_seed(2)
    layer = AffineCoupling(torch.tensor([1.0, 0.0]), 16, 2, 3.0).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.normal_(0, 0.5)
    x = torch.randn(5, 2, dtype=torch.float64) * 20
    raw_s = layer.net(x * layer.mask)[:, 1]
    assert raw_s.abs().max() > 10  # the bound has something to do
    s, _ = layer._scale_shift(x * layer.mask)
    _, logdet = layer(x)
    for point, expected in zip(x, logdet):
        jac = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), point)
        torch.testing.assert_close(torch.linalg.slogdet(jac).logabsdet, expected)
    assert not torch.allclose(logdet, s.exp().sum(-1) - 1)  # 1ᵀe^s, less the kept coordinate
    assert s.abs().max() <= 3.0


def _grid(flow, lim=12.0, n=400):
    axis = torch.linspace(-lim, lim, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    with torch.no_grad():
        density = flow.log_prob(points).exp()
    return points, density, (axis[1] - axis[0]) ** 2


@pytest.mark.parametrize("permutation", PERMUTATIONS)
def test_density_integrates_to_one(permutation):
    flow = _random_flow(2, seed=3, n_layers=4, hidden=16, permutation=permutation)
    _, density, cell = _grid(flow)  # all its mass inside the grid
    assert float(density.sum() * cell) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("permutation", PERMUTATIONS)
def test_density_integrates_to_one_in_four_dimensions(permutation):
    """∫p = E_q[p/q] by importance sampling from a wide Gaussian q (standard error ~1%)."""
    flow = _random_flow(4, seed=3, n_layers=4, hidden=16, permutation=permutation)
    standardize = flow.transforms[0]
    torch.manual_seed(0)
    q = torch.distributions.Normal(standardize.shift, 2 * standardize.log_scale.exp())
    x = q.sample((200_000,))
    with torch.no_grad():
        weights = (flow.log_prob(x) - q.log_prob(x).sum(-1)).exp()
    standard_error = float(weights.std()) / math.sqrt(len(weights))
    assert float(weights.mean()) == pytest.approx(1.0, abs=5 * standard_error)
    assert flow.sample(10).shape == (10, 4)


def test_permutation_is_the_notes_example_and_preserves_volume():
    """The notes' Problem 3: σ = [1, 4, 6, 5, 3, 2] (1-based) has σ⁻¹ = [1, 6, 5, 2, 4, 3];
    the layer's Jacobian is P_σ = [e_σ(1) … e_σ(D)]ᵀ, |det| = 1, logabsdet 0 both ways."""
    perm = torch.tensor([1, 4, 6, 5, 3, 2]) - 1
    layer = Permutation(perm)
    assert (layer.inverse_perm + 1).tolist() == [1, 6, 5, 2, 4, 3]
    x = torch.randn(7, 6, dtype=torch.float64)
    y, logdet = layer(x)
    back, inverse_logdet = layer.inverse(y)
    assert torch.equal(y[:, 1], x[:, 3]) and torch.equal(back, x)
    assert not logdet.any() and not inverse_logdet.any() and logdet.shape == (7,)
    jac = jacobian(lambda v: layer(v.unsqueeze(0))[0].squeeze(0), x[0])
    assert torch.equal(jac, torch.eye(6, dtype=torch.float64)[perm])
    assert float(torch.linalg.det(jac).abs()) == 1.0


def _layers(flow: RealNVP) -> list[str]:
    return [type(t).__name__[0] for t in flow.transforms[1:]]


def test_alternate_is_the_default_and_keeps_today_s_layers():
    """No permutation layers and alternating masks: earlier checkpoints and numbers stand."""
    flow = RealNVP(3, n_layers=3)
    assert _layers(flow) == ["A", "A", "A"]
    assert [t.mask.tolist() for t in flow.transforms[1:]] == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]


@pytest.mark.parametrize("permutation", ["reverse", "random"])
def test_permuting_flows_keep_one_half_and_permute_between_couplings(permutation):
    flow = RealNVP(5, n_layers=3, permutation=permutation)
    assert _layers(flow) == ["A", "P", "A", "P", "A"]
    assert all(t.mask.tolist() == [1, 1, 0, 0, 0] for t in flow.transforms[1::2])
    if permutation == "reverse":
        assert all(t.perm.tolist() == [4, 3, 2, 1, 0] for t in flow.transforms[2::2])


def test_random_permutations_come_from_their_own_seed():
    """Same seed, same permutations; and drawing them leaves the run's random stream alone:
    the couplings start as in a `reverse` flow built from the same global seed."""

    def perms(flow: RealNVP) -> list[list[int]]:
        return [t.perm.tolist() for t in flow.transforms if isinstance(t, Permutation)]

    torch.manual_seed(0)
    one = RealNVP(6, permutation="random", permutation_seed=1)
    torch.manual_seed(0)
    reverse = RealNVP(6, permutation="reverse")
    assert perms(one) == perms(RealNVP(6, permutation="random", permutation_seed=1))
    assert perms(one) != perms(RealNVP(6, permutation="random", permutation_seed=2))
    assert len({tuple(p) for p in perms(one)}) > 1
    assert all(torch.equal(a, b) for a, b in zip(one.parameters(), reverse.parameters()))


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
    [
        ({"dim": 1}, "dim"),
        ({"n_layers": 0}, "n_layers"),
        ({"scale_bound": -1.0}, "scale_bound"),
        ({"permutation": "shuffle"}, "permutation"),
        ({"permutation_seed": -1}, "permutation_seed"),
        ({"permutation_seed": 1.5}, "permutation_seed"),
        ({"hidden": 0}, "hidden"),
        ({"n_hidden": 0}, "n_hidden"),
        ({"permutation_seed": 2**63}, "permutation_seed"),  # torch's seeds are int64
    ],
)
def test_bad_settings_raise_config_errors(kwargs, key):
    with pytest.raises(ConfigError) as error:
        make(RealNVP, **kwargs)
    assert error.value.key == key


@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
def test_every_int64_permutation_seed_is_accepted(seed):
    flow = make(RealNVP, permutation="random", permutation_seed=seed, n_layers=2)
    assert sorted(flow.transforms[2].perm.tolist()) == [0, 1]


def test_defaults_are_the_documented_ones():
    """The constructor's defaults are conf/model/realnvp.yaml's, so a run and a notebook agree."""
    from omegaconf import OmegaConf

    conf = OmegaConf.load("conf/model/realnvp.yaml")
    flow = RealNVP()
    assert flow.event_shape == (2,) and len(flow.transforms) == 1 + conf.n_layers
    coupling = flow.transforms[1]
    assert coupling.scale_bound == conf.scale_bound
    assert coupling.net[0].out_features == conf.hidden


@pytest.mark.parametrize("n_hidden", [1, 2, 3])
def test_each_conditioner_has_n_hidden_hidden_layers(n_hidden):
    coupling = RealNVP(2, n_layers=1, hidden=5, n_hidden=n_hidden).transforms[1]
    linear = [layer for layer in coupling.net if isinstance(layer, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == (
        [(2, 5)] + [(5, 5)] * (n_hidden - 1) + [(5, 4)]
    )


def test_a_constant_coordinate_standardises_to_a_finite_density():
    """σ = 0 is clamped to 1e-6, so the log-density stays finite (−log 1e-6 on that axis)."""
    flow = RealNVP(2, n_layers=2)
    x = torch.stack([torch.randn(100), torch.full((100,), 3.0)], -1)
    flow.init_from_data(x)
    assert torch.isfinite(flow.log_prob(x)).all()
    assert float(flow.transforms[0].log_scale[1]) == pytest.approx(math.log(1e-6))


def test_a_permutation_name_built_at_run_time_selects_the_same_layers():
    """The name from a config is an equal string, not the same object as the literal."""
    name = "".join(["alter", "nate"])
    assert _layers(RealNVP(3, n_layers=3, permutation=name)) == ["A", "A", "A"]


@pytest.mark.slow  # the full experiment: about 2 minutes on one core
def test_realnvp_banana_reaches_the_quality_target(make_cfg):
    from src.train import train

    metrics = train(make_cfg("experiment=realnvp_banana", "callbacks=none", "~logger"))
    assert metrics["test/kl_gap"] <= 0.05
