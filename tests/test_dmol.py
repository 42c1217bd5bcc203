"""Discretized mixture of logistics: normalisation, log-space stability, gradients, sampling."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare
from torch.autograd import gradcheck

from src.data.hw1 import HW1DataModule
from src.errors import ConfigError, UserError
from src.models.dmol import (
    LOG_SCALE_MIN,
    WIDE_LOG_SCALE,
    DiscretizedLogisticMixture,
    DMoLLogProb,
    dmol_log_prob,
    terms,
)
from src.utils.constraints import make

D64 = torch.float64
# far tails, floored, wide and beyond-float32-underflow scales, degenerate weights
EXTREME = (
    torch.tensor([1e4, -1e4, 5.0, 3.0, 0.0]),
    torch.tensor([-30.0, 0.0, 40.0, 200.0, WIDE_LOG_SCALE]),
    torch.tensor([1e4, -1e4, 0.0, 3.0, -2.0]),
)


def _random_params(k: int, d: int, dtype=D64) -> tuple[torch.Tensor, ...]:
    loc = torch.empty(k, dtype=dtype).uniform_(-3, d + 2)
    return loc, torch.empty(k, dtype=dtype).uniform_(-3, 3), 3 * torch.randn(k, dtype=dtype)


def _naive_pmf(loc, log_scale, logits, d: int) -> torch.Tensor:
    """The definition, in float64: σ(a) − σ(b) per bin, edge bins take the tails."""
    x = torch.arange(d, dtype=D64).unsqueeze(-1)
    s = log_scale.clamp(min=LOG_SCALE_MIN).exp()
    upper = torch.sigmoid((x + 0.5 - loc) / s)
    lower = torch.sigmoid((x - 0.5 - loc) / s)
    upper[-1], lower[0] = 1.0, 0.0
    return ((upper - lower) * torch.softmax(logits, -1)).sum(-1)


@pytest.mark.parametrize("d", [2, 3, 17, 100, 256])
@pytest.mark.parametrize("k", [1, 5])
def test_pmf_sums_to_one_and_matches_definition(d, k):
    torch.manual_seed(d * 10 + k)
    for _ in range(5):
        params = _random_params(k, d)
        pmf = dmol_log_prob(torch.arange(d), *params, d).exp()
        assert pmf.sum().item() == pytest.approx(1, abs=1e-12)
        torch.testing.assert_close(pmf, _naive_pmf(*params, d), atol=1e-12, rtol=1e-9)
        pmf32 = dmol_log_prob(torch.arange(d), *(p.float() for p in params), d).exp()
        assert pmf32.sum().item() == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("analytic", [False, True])
def test_extreme_parameters_give_finite_log_prob_and_gradients(analytic):
    d = 20
    params = [p.clone().requires_grad_() for p in EXTREME]
    x = torch.arange(d).repeat(3)
    fn = DMoLLogProb.apply if analytic else dmol_log_prob
    log_p = fn(x, *params, d)
    assert torch.isfinite(log_p).all()
    assert log_p[:d].exp().sum().item() == pytest.approx(1, abs=1e-5)
    log_p.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in params)


def test_tail_bins_keep_exact_log_mass():
    """Where σ(a) − σ(b) underflows to 0, the log-space mass is still exact: −100/s deep."""
    loc, log_scale, logits = torch.tensor([0.0]), torch.tensor([0.0]), torch.zeros(1)
    log_p = dmol_log_prob(torch.tensor([100, 150]), loc, log_scale, logits, 200)
    # log(σ(a) − σ(b)) ≈ −b + log(1 − e^{−1}) for b ≫ 1 (a − b = 1)
    expected = torch.tensor([-99.5, -149.5]) + torch.log1p(-torch.exp(torch.tensor(-1.0)))
    torch.testing.assert_close(log_p, expected)


def test_wide_scale_fallback_agrees_with_exact_width():
    """The width term's expansion −log s − 1/(2s) takes over smoothly at WIDE_LOG_SCALE."""
    x, loc, logits = torch.arange(7), torch.tensor([3.0], dtype=D64), torch.zeros(1, dtype=D64)
    below = dmol_log_prob(x, loc, torch.tensor([WIDE_LOG_SCALE - 1e-9], dtype=D64), logits, 7)
    above = dmol_log_prob(x, loc, torch.tensor([WIDE_LOG_SCALE + 1e-9], dtype=D64), logits, 7)
    torch.testing.assert_close(below, above, atol=1e-8, rtol=0)


@pytest.mark.parametrize("d", [2, 5, 30])
def test_analytic_gradients_gradcheck(d):
    torch.manual_seed(d)
    x = torch.cat([torch.arange(d), torch.randint(0, d, (20,))])
    for log_scale_shift in (0.0, WIDE_LOG_SCALE + 2):  # ordinary and wide-scale branches
        loc, log_scale, logits = _random_params(3, d)
        params = [p.requires_grad_() for p in (loc, log_scale + log_scale_shift, logits)]
        assert gradcheck(lambda *p: DMoLLogProb.apply(x, *p, d), params)


def test_analytic_gradients_equal_autograd_in_float32():
    torch.manual_seed(0)
    x = torch.randint(0, 20, (500,))
    for params in (_random_params(4, 20, torch.float32), EXTREME):
        grads = []
        for fn in (dmol_log_prob, DMoLLogProb.apply):
            leaves = [p.clone().requires_grad_() for p in params]
            (-fn(x, *leaves, 20).mean()).backward()
            grads.append([p.grad for p in leaves])
        for auto, hand in zip(*grads):
            torch.testing.assert_close(hand, auto, atol=1e-5, rtol=1e-4)


def test_floor_on_log_scale_passes_no_gradient():
    """A component astride a bin edge: its mass moves with its scale just above the floor,
    not below it, where the hand-written backward must agree with autograd's clamp."""

    def log_scale_grad(fn, log_scale: float) -> torch.Tensor:
        values = ([3.5005, 10.0], [log_scale, 0.5], [0.0, 0.0])
        loc, log_scales, logits = (torch.tensor(v, dtype=D64, requires_grad=True) for v in values)
        fn(torch.arange(20), loc, log_scales, logits, 20).sum().backward()
        return log_scales.grad[0]

    for fn in (dmol_log_prob, DMoLLogProb.apply):
        assert log_scale_grad(fn, -30.0) == 0
        assert log_scale_grad(fn, LOG_SCALE_MIN + 0.01).abs() > 0.1


def test_weight_gradient_respects_the_simplex():
    """∂ log p/∂w = r − π sums to zero; the notes' free-π gradient e^ℓ/p does not."""
    torch.manual_seed(1)
    loc, log_scale, logits = _random_params(4, 20)
    logits.requires_grad_()
    x = torch.randint(0, 20, (50,))
    DMoLLogProb.apply(x, loc, log_scale, logits, 20).sum().backward()
    assert logits.grad.sum().abs() < 1e-10
    pi = torch.softmax(logits.detach(), -1).requires_grad_()
    log_mix = torch.logsumexp(pi.log() + terms(x, loc, log_scale, 20).log_mass, -1)
    (free,) = torch.autograd.grad(log_mix.sum(), pi)
    assert free.sum() > 1  # each point contributes Σ_k e^{ℓ_k}/p ≥ 1


def test_sample_matches_own_pmf():
    torch.manual_seed(3)
    model = DiscretizedLogisticMixture(d=20, n_components=3)
    with torch.no_grad():
        model.loc.copy_(torch.tensor([-1.0, 8.0, 17.5]))
        model.log_scale.copy_(torch.tensor([0.3, 0.5, -0.5]))
        model.logits.copy_(torch.tensor([0.0, 0.5, -0.3]))
    n = 40_000
    drawn = model.sample(n)
    assert drawn.dtype == torch.long and drawn.min() >= 0 and drawn.max() <= 19
    expected = model.pmf().detach().double() * n
    observed = torch.bincount(drawn, minlength=20).double()
    assert expected.min() >= 5  # every cell valid for the chi-square approximation
    assert chisquare(observed.numpy(), expected.numpy() * n / expected.sum().item()).pvalue > 1e-3
    assert observed[0] > 0.15 * n  # bin 0 collects the tail below 0.5 of the μ = −1 component


@pytest.mark.parametrize("d", [2, 7, 100, 1000])
def test_initialisation_works_for_any_d(d):
    model = DiscretizedLogisticMixture(d=d, n_components=4)
    pmf = model.pmf()
    assert pmf.sum().item() == pytest.approx(1, abs=1e-5)
    assert pmf.min() > 1e-4 / d  # every bin gets mass: no component starts outside the range
    assert model.loc.min() >= -0.5 and model.loc.max() <= d - 0.5


def test_init_from_data_puts_means_at_quantiles():
    """At the data's (k + ½)/K quantiles, not merely inside the data's range."""
    x = HW1DataModule(20).train_x
    model = DiscretizedLogisticMixture(20, 4)
    model.init_from_data(x)
    levels = torch.tensor([0.125, 0.375, 0.625, 0.875], dtype=D64)
    quantiles = torch.quantile(x.double(), levels, interpolation="nearest")
    assert model.loc.tolist() == quantiles.tolist()


@pytest.mark.slow
def test_train_nll_reaches_lbfgs_reference():
    """The experiment's optimiser reaches the best full-batch L-BFGS restart (benchmark) ± 1e-3."""
    torch.set_num_threads(1)
    x = HW1DataModule(20).train_x
    model = DiscretizedLogisticMixture(20, 4)
    model.init_from_data(x)
    opt = torch.optim.Adam(model.parameters(), lr=0.2, betas=(0.9, 0.9))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 1000)
    for _ in range(1000):
        opt.zero_grad()
        (-model.log_prob(x).mean()).backward()
        opt.step()
        schedule.step()
    assert -model.log_prob(x).mean().item() < 2.066154 + 1e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"d": 1}, "d=1 is invalid"),
        ({"n_components": 0}, "n_components=0 is invalid"),
        ({"n_components": -2}, "n_components=-2 is invalid"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make(DiscretizedLogisticMixture, **kwargs)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.tensor([0, 3, 20]), "data value 20 is outside .* \\(d=20\\)"),
        (torch.tensor([-3, 5]), "data value -3 is outside .* \\(d=20\\)"),
        (torch.tensor([0.5, 2.0]), "data value 0.5 is not an integer .* \\(d=20\\)"),
    ],
)
def test_data_outside_bins_refused(x, message):
    model = DiscretizedLogisticMixture(20)
    with pytest.raises(UserError, match=message):
        model.init_from_data(x)
    with pytest.raises(UserError, match=message):
        model.eval().log_prob(x)


def test_cli_settings_refused_with_config_path(make_cfg):
    from src.train import train

    with pytest.raises(ConfigError, match=r"model\.n_components=0 is invalid"):
        train(make_cfg("experiment=hw1_dmol_d20", "model.n_components=0", "debug=fast"))
    with pytest.raises(ConfigError, match=r"model\.d=1 is invalid"):
        train(make_cfg("experiment=hw1_dmol_d20", "model.d=1", "debug=fast"))
