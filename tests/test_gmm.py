"""Gaussian mixture: log-space density, hand-derived gradients vs autograd, M-step optimality."""

import math

import pytest
import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from src.errors import ConfigError
from src.models.gmm import GaussianMixture
from src.models.gmm_grad import MixtureLogLikelihood
from src.models.gmm_ops import e_step, m_step
from src.utils.constraints import make


def _random_mixture(k=3, d=2, covariance_type="full", seed=0, **kwargs) -> GaussianMixture:
    torch.manual_seed(seed)
    gmm = GaussianMixture(k, d, covariance_type, **kwargs).double()
    with torch.no_grad():
        gmm.logits.normal_()
        gmm.loc.normal_(0, 2)
        gmm.raw_diag.normal_(0, 0.3)
        gmm.raw_lower.normal_(0, 0.5)
    return gmm


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_log_prob_matches_torch_distributions(covariance_type):
    gmm = _random_mixture(k=4, d=3, covariance_type=covariance_type)
    x = torch.randn(50, 3, dtype=torch.float64) * 2
    reference = MixtureSameFamily(
        Categorical(logits=gmm.logits), MultivariateNormal(gmm.loc, gmm.covariance())
    )
    torch.testing.assert_close(gmm.log_prob(x), reference.log_prob(x), rtol=1e-10, atol=1e-10)
    if covariance_type == "diag":
        off = gmm.covariance() - torch.diag_embed(gmm.covariance().diagonal(dim1=-2, dim2=-1))
        assert off.abs().max() == 0


def test_float32_and_samples():
    """In float32, log_prob is the float64 mixture's, and the samples have its mean
    m = Σ π_k μ_k and covariance Σ π_k (Σ_k + μ_k μ_kᵀ) − m mᵀ, within 4 standard errors."""
    gmm = _random_mixture()
    with torch.no_grad():
        pi, loc, cov = torch.softmax(gmm.logits, -1), gmm.loc.clone(), gmm.covariance()
        reference = MixtureSameFamily(Categorical(pi), MultivariateNormal(loc, cov))
    mean = pi @ loc
    covariance = (pi[:, None, None] * (cov + loc[:, :, None] * loc[:, None, :])).sum(0)
    covariance -= mean[:, None] * mean
    gmm = gmm.float()
    torch.manual_seed(0)
    x = gmm.sample(20_000)
    assert x.shape == (20_000, 2) and x.dtype == torch.float32
    log_p = gmm.log_prob(x)
    assert log_p.dtype == torch.float32
    torch.testing.assert_close(log_p.double(), reference.log_prob(x.double()), rtol=1e-5, atol=1e-4)
    centred = x.double() - mean
    products = centred[:, :, None] * centred[:, None, :]
    root_n = math.sqrt(len(x))
    assert (centred.mean(0).abs() < 4 * centred.std(0) / root_n).all()
    assert ((products.mean(0) - covariance).abs() < 4 * products.std(0) / root_n).all()


def test_analytic_backward_passes_gradcheck():
    torch.manual_seed(1)
    k, d = 3, 2
    x = torch.randn(7, d, dtype=torch.float64) * 2
    logits = torch.randn(k, dtype=torch.float64, requires_grad=True)
    loc = torch.randn(k, d, dtype=torch.float64, requires_grad=True)
    tril = torch.randn(k, d, d, dtype=torch.float64).tril(-1) + torch.diag_embed(
        torch.rand(k, d, dtype=torch.float64) + 0.5
    )
    tril.requires_grad_(True)
    # gradcheck perturbs every entry; only the lower triangle is a free parameter, so map
    # an unconstrained matrix onto it before the Function.
    assert torch.autograd.gradcheck(
        lambda a, m, t: MixtureLogLikelihood.apply(x, a, m, t.tril()), (logits, loc, tril)
    )


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_analytic_gradients_equal_autograd(covariance_type):
    x = torch.randn(40, 2, dtype=torch.float64) * 3
    weights = torch.rand(40, dtype=torch.float64)  # a non-uniform upstream gradient
    grads = []
    for analytic in (False, True):
        gmm = _random_mixture(covariance_type=covariance_type, analytic_grad=analytic)
        (weights @ gmm.log_prob(x)).backward()
        grads.append([p.grad for p in (gmm.logits, gmm.loc, gmm.raw_diag, gmm.raw_lower)])
    for auto, hand in zip(*grads):
        torch.testing.assert_close(hand, auto, rtol=1e-9, atol=1e-12)


def test_mean_gradient_is_responsibility_weighted_precision_times_residual():
    gmm = _random_mixture()
    x = torch.randn(30, 2, dtype=torch.float64)
    gmm.log_prob(x).sum().backward()
    _, resp = e_step(x, torch.log_softmax(gmm.logits, -1), gmm.loc, gmm.scale_tril())
    precision = torch.linalg.inv(gmm.covariance())  # test-only reference
    resid = x.unsqueeze(1) - gmm.loc  # [N, K, D]
    expected = torch.einsum("kn,kde,nke->kd", resp, precision, resid)
    torch.testing.assert_close(gmm.loc.grad, expected)


def test_notes_weight_gradient_misses_one_over_pi():
    """∂ℓ/∂π_k (π free, unconstrained) is Σ_n r_nk / π_k, not the notes' Σ_n r_nk."""
    gmm = _random_mixture()
    x = torch.randn(30, 2, dtype=torch.float64)
    pi = torch.softmax(gmm.logits.detach(), -1).requires_grad_(True)
    comp = MultivariateNormal(gmm.loc.detach(), scale_tril=gmm.scale_tril().detach())
    ll = torch.logsumexp(comp.log_prob(x.unsqueeze(1)) + pi.log(), -1).sum()
    (grad,) = torch.autograd.grad(ll, pi)
    resp = e_step(x, pi.detach().log(), gmm.loc.detach(), gmm.scale_tril().detach())[1]
    torch.testing.assert_close(grad, resp.sum(1) / pi.detach())
    assert not torch.allclose(grad, resp.sum(1))


def test_m_step_weights_are_the_lagrangian_stationary_point():
    """π_k = Σ_n r_nk / N, and the expected complete log-likelihood is stationary there."""
    torch.manual_seed(2)
    x = torch.randn(200, 2, dtype=torch.float64)
    resp = torch.softmax(torch.randn(3, 200, dtype=torch.float64), 0)  # [K, N]
    log_w, loc, tril = m_step(x, resp, 0.0, diagonal=False)
    torch.testing.assert_close(log_w.exp(), resp.mean(1))
    params = [log_w.clone().requires_grad_(True), loc.requires_grad_(True)]
    chol = tril.clone().requires_grad_(True)
    comp = MultivariateNormal(params[1], scale_tril=chol)
    q = (resp.T * (comp.log_prob(x.unsqueeze(1)) + torch.log_softmax(params[0], -1))).sum()
    for grad in torch.autograd.grad(q, [*params, chol]):
        assert grad.abs().max() < 1e-8


def test_reg_covar_floors_the_cholesky_diagonal():
    gmm = GaussianMixture(2, 2, reg_covar=1e-2).double()
    with torch.no_grad():
        gmm.raw_diag.fill_(-50.0)
    assert gmm.scale_tril().diagonal(dim1=-2, dim2=-1).min() >= math.sqrt(1e-2)
    assert torch.isfinite(gmm.log_prob(torch.zeros(3, 2, dtype=torch.float64))).all()


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"reg_covar": -1e-6}, "reg_covar"),
        ({"n_components": 0}, "n_components"),
        ({"covariance_type": "spherical"}, "covariance_type"),
        ({"init": "kmeans"}, "init"),
    ],
)
def test_bad_settings_raise_config_errors(kwargs, key):
    with pytest.raises(ConfigError) as error:
        make(GaussianMixture, **kwargs)
    assert error.value.key == key


def test_more_components_than_points_is_refused():
    with pytest.raises(ConfigError, match=r"model\.n_components=8 .*training points \(5\)"):
        GaussianMixture(8).init_from_data(torch.randn(5, 2))


@pytest.mark.parametrize("init", ["kmeans++", "random_from_data"])
def test_init_from_data_places_components_on_the_data(init):
    """k-means++ cannot seed both centres in one of two far-apart clusters; two random points
    land in one cluster half the time, so the least-potential draw of 20 separates them but for
    a chance of 2⁻²⁰."""
    torch.manual_seed(3)
    centres = torch.tensor([[-5.0, 0.0], [5.0, 0.0]])
    x = (centres[torch.arange(400) % 2] + 0.3 * torch.randn(400, 2)).double()
    gmm = GaussianMixture(2, 2, init=init, init_trials=20).double()
    gmm.init_from_data(x, generator=torch.Generator().manual_seed(0))
    found = gmm.loc.detach().sort(0).values
    assert torch.isfinite(gmm.log_prob(x)).all()
    torch.testing.assert_close(found[:, 0], torch.tensor([-5.0, 5.0]).double(), atol=0.1, rtol=0)


@pytest.mark.slow  # the full experiment: about half a minute on one core
def test_gradient_gmm_reaches_the_quality_target(make_cfg):
    from src.train import train

    metrics = train(make_cfg("experiment=gmm_mog2d", "callbacks=none", "~logger"))
    assert metrics["test/kl_gap"] <= 0.01
