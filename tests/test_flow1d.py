"""The mixture-of-CDF flow: a proper density, the change of variables, an exact sampler."""

import pytest
import torch
from scipy import stats
from torch.distributions import Categorical, MixtureSameFamily, Normal

from src.errors import ConfigError
from src.models.flow1d import MixtureCDFFlow1d
from src.utils.constraints import make


def make_flow(seed: int = 0, **kwargs) -> MixtureCDFFlow1d:
    torch.manual_seed(seed)
    flow = MixtureCDFFlow1d(n_components=4, **kwargs).double()
    with torch.no_grad():  # a spread of locations, scales and weights
        flow.log_scale.uniform_(-1.0, 0.5)
        flow.weight_logits.normal_()
    return flow


GRID = torch.linspace(-30, 30, 300_001, dtype=torch.float64)


@pytest.mark.parametrize("base", ["uniform", "normal"])
def test_density_integrates_to_one(base):
    flow = make_flow(base=base)
    assert torch.trapezoid(flow.log_prob(GRID).exp(), GRID).item() == pytest.approx(1.0, abs=1e-8)


def test_notes_flow_integrates_to_its_reported_integral_below_one():
    flow = make_flow(base="normal", normalized=False)
    integral = torch.trapezoid(flow.log_prob(GRID).exp(), GRID).item()
    assert integral == pytest.approx(flow.integral(), abs=1e-8)
    assert integral < 0.999


def mixture(flow: MixtureCDFFlow1d) -> MixtureSameFamily:
    """The density F' = Σ_k π_k N(μ_k, σ_k²) by torch.distributions, independent of the flow."""
    return MixtureSameFamily(
        Categorical(logits=flow.weight_logits.detach()),
        Normal(flow.loc.detach(), flow.log_scale.detach().exp()),
    )


def test_normal_base_has_the_same_density_but_a_gaussian_latent():
    """Both bases give the Gaussian mixture; the normal one through its own change of
    variables N(z)·|dz/dx| (log_prob alone never reads the base)."""
    uniform, normal = make_flow(base="uniform"), make_flow(base="normal")
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    truth = mixture(uniform).log_prob(x)
    torch.testing.assert_close(uniform.log_prob(x), truth)
    z_normal, log_dz = normal(x)
    torch.testing.assert_close(Normal(0.0, 1.0).log_prob(z_normal) + log_dz, truth)
    torch.testing.assert_close(torch.special.ndtr(z_normal), uniform(x)[0])


@pytest.mark.parametrize(
    "kwargs", [{"base": "uniform"}, {"base": "normal"}, {"base": "normal", "normalized": False}]
)
def test_log_prob_is_the_change_of_variables_with_autograd_derivative(kwargs):
    flow = make_flow(**kwargs)
    x = torch.linspace(-3, 3, 61, dtype=torch.float64, requires_grad=True)
    z, log_dz = flow(x)
    (dz_dx,) = torch.autograd.grad(z.sum(), x)
    uniform_base = kwargs["base"] == "uniform"
    log_base = torch.zeros_like(z) if uniform_base else torch.distributions.Normal(0, 1).log_prob(z)
    torch.testing.assert_close(log_dz, dz_dx.log())
    torch.testing.assert_close(flow.log_prob(x), log_base + dz_dx.log())


@pytest.mark.parametrize("kwargs", [{}, {"base": "normal", "normalized": False}])
def test_sampler_inverts_the_cdf(kwargs):
    flow = make_flow(**kwargs)
    u = torch.rand(2000, dtype=torch.float64) * 0.98 + 0.01
    target = u if flow.normalized else torch.special.ndtri(u) * 0.1
    x = flow.invert(target)
    assert (flow.cdf(x) - target).abs().max().item() <= 1e-5


def test_samples_follow_the_models_own_cdf():
    flow = make_flow()
    samples = flow.sample(5000)
    result = stats.kstest(samples.numpy(), lambda v: flow.cdf(torch.as_tensor(v)).detach().numpy())
    assert result.pvalue > 0.01


def test_notes_flow_samples_its_normalised_density():
    flow = make_flow(base="normal", normalized=False)
    samples = flow.sample(5000)
    span = flow.integral()  # the base draw is truncated to the range of G

    def cdf(v):
        g = flow.cdf(torch.as_tensor(v)).detach()
        return ((torch.special.ndtr(g) - (1 - span) / 2) / span).numpy()

    assert stats.kstest(samples.numpy(), cdf).pvalue > 0.01


def test_extreme_inputs_give_finite_values_and_gradients():
    """Finite, and right: a clamp that kept them finite would miss the float64 mixture."""
    x = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=torch.float64)
    flow = make_flow()
    truth = mixture(flow).log_prob(x)
    flow = flow.float()
    log_p = flow.log_prob(x.float())
    log_p.sum().backward()
    torch.testing.assert_close(log_p.double(), truth, rtol=1e-5, atol=1e-4)
    assert all(torch.isfinite(p.grad).all() for p in flow.parameters())


def test_init_from_data_places_components_on_the_data():
    flow = MixtureCDFFlow1d(n_components=3)
    x = torch.cat([torch.randn(1000) * 0.1 + c for c in (100.0, 200.0, 300.0)])
    flow.init_from_data(x)
    assert flow.loc.detach().tolist() == pytest.approx([100.0, 200.0, 300.0], abs=5.0)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"n_components": 0}, "n_components"),
        ({"base": "laplace"}, "base"),
        ({"normalized": False, "base": "uniform"}, "base"),
    ],
)
def test_bad_settings_name_the_setting(kwargs, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        make(MixtureCDFFlow1d, **kwargs)
