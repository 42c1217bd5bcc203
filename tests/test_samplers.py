"""Reparameterized samplers: right distribution, gradients that flow and match the analytic ones."""

import math

import pytest
import torch
from scipy import stats
from torch.distributions import Categorical, Exponential, Normal

from src.errors import ConfigError
from src.estimators.samplers import exponential, gaussian, gumbel_softmax


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_exponential_matches_torch_sampler():
    torch.manual_seed(1)
    rate = torch.tensor(2.5)
    ours = exponential(rate, 20_000, generator=_gen()).numpy()
    theirs = Exponential(rate).sample((20_000,)).numpy()
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert stats.kstest(ours, stats.expon(scale=1 / 2.5).cdf).pvalue > 1e-3


def test_gaussian_matches_torch_sampler():
    torch.manual_seed(2)
    mean, std = torch.tensor(-1.0), torch.tensor(0.5)
    ours = gaussian(mean, std, 20_000, generator=_gen()).numpy()
    theirs = Normal(mean, std).sample((20_000,)).numpy()
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3


def test_exponential_gradient_is_the_analytic_one():
    """E[x] = 1/λ, so d/dλ E[x] = −1/λ²; E[x²] = 2/λ², so d/dλ E[x²] = −4/λ³."""
    rate = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    x = exponential(rate, 400_000, generator=_gen())
    (g1,) = torch.autograd.grad(x.mean(), rate, retain_graph=True)
    (g2,) = torch.autograd.grad(x.square().mean(), rate)
    assert g1.item() == pytest.approx(-1 / 4, rel=0.01)
    assert g2.item() == pytest.approx(-4 / 8, rel=0.02)


def test_gaussian_gradient_is_the_analytic_one():
    """E[x²] = μ² + σ²: gradient (2μ, 2σ)."""
    mean = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    std = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    x = gaussian(mean, std, 400_000, generator=_gen())
    g_mean, g_std = torch.autograd.grad(x.square().mean(), (mean, std))
    assert g_mean.item() == pytest.approx(1.4, abs=0.02)
    assert g_std.item() == pytest.approx(2.6, rel=0.01)


def test_samplers_pass_gradcheck_with_fixed_noise():
    rate = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: exponential(r, 4, generator=_gen()), (rate,))
    mean = torch.tensor([0.1, -0.3], dtype=torch.float64, requires_grad=True)
    std = torch.tensor([0.4, 1.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, s: gaussian(m, s, 4, generator=_gen()), (mean, std))
    logits = torch.tensor([0.2, -1.0, 0.5], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a: gumbel_softmax(a, 4, temperature=0.7, generator=_gen()), (logits,)
    )


def test_gumbel_argmax_follows_the_categorical():
    probs = torch.tensor([0.1, 0.2, 0.5, 0.2])
    n = 40_000
    y = gumbel_softmax(probs.log(), n, temperature=0.5, generator=_gen())
    ours = torch.bincount(y.argmax(-1), minlength=4)
    assert stats.chisquare(ours.numpy(), (probs * n).numpy()).pvalue > 1e-3
    torch.manual_seed(3)
    theirs = torch.bincount(Categorical(probs).sample((n,)), minlength=4)
    table = torch.stack([ours, theirs]).numpy()
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_gumbel_softmax_is_a_relaxed_one_hot_with_gradients():
    """y = softmax((θ + g)/τ), so τ log(y_i/y_j) − (θ_i − θ_j) = g_i − g_j, a difference of
    independent Gumbels: Logistic(0, 1). That pins the temperature and the noise, which any
    softmax's sum to one would not."""
    logits = torch.tensor([0.0, 1.0, -0.5], requires_grad=True)
    soft = gumbel_softmax(logits, 1000, temperature=0.3, generator=_gen())
    assert torch.allclose(soft.sum(-1), torch.ones(1000))
    assert soft.max(-1).values.mean() < 0.99  # relaxed: not all mass on one category
    log_y, theta = soft.detach().double().log(), logits.detach().double()
    for i, j in ((0, 1), (1, 2)):
        noise = 0.3 * (log_y[:, i] - log_y[:, j]) - (theta[i] - theta[j])
        assert stats.kstest(noise.numpy(), stats.logistic.cdf).pvalue > 1e-3
    (grad,) = torch.autograd.grad((soft * torch.tensor([1.0, 2.0, 3.0])).sum(), logits)
    assert grad.abs().min() > 0


def test_hard_gumbel_softmax_is_one_hot_with_the_soft_gradient():
    logits = torch.tensor([0.3, -0.2, 0.9], requires_grad=True)
    weights = torch.tensor([1.0, -2.0, 3.0])
    hard = gumbel_softmax(logits, 500, temperature=0.5, hard=True, generator=_gen())
    soft = gumbel_softmax(logits, 500, temperature=0.5, generator=_gen())
    assert set(hard.detach().unique().tolist()) == {0.0, 1.0}
    assert torch.equal(hard.detach().argmax(-1), soft.detach().argmax(-1))
    assert torch.equal(hard.detach().sum(-1), torch.ones(500))
    (g_hard,) = torch.autograd.grad((hard * weights).sum(), logits)
    (g_soft,) = torch.autograd.grad((soft * weights).sum(), logits)
    assert torch.allclose(g_hard, g_soft) and g_hard.abs().min() > 0


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: exponential(torch.tensor(0.0), 3), "rate"),
        (lambda: gaussian(torch.tensor(0.0), torch.tensor(-1.0), 3), "std"),
        (lambda: gumbel_softmax(torch.zeros(3), 3, temperature=0.0), "temperature"),
        (lambda: gumbel_softmax(torch.zeros(3), 3, temperature=-1.0), "temperature"),
    ],
)
def test_bad_parameters_are_refused(call, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        call()


def test_hard_gumbel_softmax_of_batched_logits_is_one_hot_on_the_last_dim():
    """Logits (B, K): the relaxed sample is a distribution over the K categories and the
    straight-through sample the one-hot of its argmax (F.one_hot, not the sampler's scatter)."""
    logits = torch.tensor([[0.3, -0.2, 0.9], [1.0, 0.0, -1.0]])
    hard = gumbel_softmax(logits, 6, temperature=0.5, hard=True, generator=_gen())
    soft = gumbel_softmax(logits, 6, temperature=0.5, generator=_gen())
    expected = torch.nn.functional.one_hot(soft.argmax(-1), 3).to(soft)
    torch.testing.assert_close(hard, expected)
    torch.testing.assert_close(soft.sum(-1), torch.ones(6, 2))  # normalised over K, not B


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_uniform_draw_of_exactly_0_or_1_still_gives_finite_samples(monkeypatch, dtype):
    """torch.rand never returns 1 on the CPU, but half precision and other generators round up to
    it: the samplers clamp u into [tiny, 1 − eps] so −log(1 − u) and −log(−log u) stay finite,
    and the clamped ends give the values those formulas give at u = 1 − eps and u = tiny."""
    ends = torch.tensor([0.0, 1.0], dtype=dtype)
    monkeypatch.setattr(torch, "rand", lambda shape, **kw: ends.expand(shape).contiguous())
    eps, tiny = torch.finfo(dtype).eps, torch.finfo(dtype).tiny
    x = exponential(torch.ones((), dtype=dtype), 2)
    torch.testing.assert_close(x, torch.tensor([-math.log1p(-tiny), -math.log(eps)], dtype=dtype))
    y = gumbel_softmax(torch.zeros(2, dtype=dtype), 1, temperature=1.0)
    g = torch.tensor([-math.log(-math.log(tiny)), -math.log(-math.log1p(-eps))], dtype=dtype)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y[0], torch.softmax(g, -1))


def test_samplers_are_the_documented_transforms_of_the_generators_noise():
    """With a fixed generator the samplers are x = μ + σε and x = −log(1 − u)/λ of that
    generator's own ε ~ N(0, 1) and u ~ U(0, 1): common random numbers across calls (a sign
    flip of ε would keep the law but not the transform the docstring promises)."""
    mean, std = torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.3])
    eps = torch.randn((3, 2), generator=_gen())
    torch.testing.assert_close(gaussian(mean, std, 3, generator=_gen()), mean + std * eps)
    rate = torch.tensor([0.5, 4.0])
    u = torch.rand((3, 2), generator=_gen())
    torch.testing.assert_close(exponential(rate, 3, generator=_gen()), -torch.log1p(-u) / rate)


def test_hard_gumbel_softmax_is_exactly_one_hot_where_the_relaxed_sample_underflows():
    """At τ = 0.01 most relaxed entries underflow to 0 in float32: the straight-through forward
    value must still be the exact one-hot (no 0/0 or 0 mod 0 from the soft part)."""
    logits = torch.tensor([0.0, 1.0, -2.0, 0.5])
    soft = gumbel_softmax(logits, 200, temperature=0.01, generator=_gen())
    assert (soft == 0).any()
    hard = gumbel_softmax(logits, 200, temperature=0.01, hard=True, generator=_gen())
    expected = torch.nn.functional.one_hot(soft.argmax(-1), 4).to(soft)
    torch.testing.assert_close(hard, expected, rtol=0, atol=1e-6)
