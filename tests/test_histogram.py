"""Softmax histogram and the shared softmax VJP: gradients, closed form, bad input, pairing."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from src.data.hw1 import HW1DataModule
from src.errors import ConfigError, UserError
from src.models.histogram import Histogram, HistogramLogProb, closed_form_probs
from src.models.softmax_vjp import softmax, softmax_vjp
from src.train import train
from src.utils.constraints import make

D64 = torch.float64


@pytest.mark.parametrize("dim", [-1, 0])
def test_softmax_function_gradcheck(dim):
    z = torch.randn(3, 5, dtype=D64, requires_grad=True)
    assert gradcheck(lambda t: softmax(t, dim), (z,))


def test_softmax_vjp_matches_autograd():
    z, y_bar = torch.randn(4, 7, dtype=D64), torch.randn(4, 7, dtype=D64)
    _, expected = torch.autograd.functional.vjp(lambda t: torch.softmax(t, -1), z, y_bar)
    torch.testing.assert_close(softmax_vjp(torch.softmax(z, -1), y_bar), expected)


@pytest.mark.parametrize("dtype", [torch.float32, D64])
def test_softmax_stable_at_huge_logits(dtype):
    z = torch.tensor([1e4, -1e4, 0.0, 1e4 - 1.0], dtype=dtype, requires_grad=True)
    y_bar = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=dtype)
    y = softmax(z)
    (grad,) = torch.autograd.grad(y, z, y_bar)
    z_ref = z.detach().clone().requires_grad_()
    (grad_ref,) = torch.autograd.grad(torch.softmax(z_ref, -1), z_ref, y_bar)
    assert torch.isfinite(y).all() and torch.isfinite(grad).all()
    torch.testing.assert_close(y, torch.softmax(z_ref, -1))
    torch.testing.assert_close(grad, grad_ref)


@pytest.mark.parametrize("prior_weight", [0.0, 0.3])
def test_histogram_function_gradcheck(prior_weight):
    logits = torch.randn(6, dtype=D64, requires_grad=True)
    x = torch.tensor([0, 2, 2, 5, 1, 0, 5, 5])
    weight = torch.tensor(prior_weight, dtype=D64)
    assert gradcheck(lambda t: HistogramLogProb.apply(t, x, weight), (logits,))
    for analytic in (True, False):
        model = Histogram(6, analytic_grad=analytic, smoothing=prior_weight * len(x)).double()
        model.logits.data.copy_(logits.detach())
        (-model.log_prob(x).mean()).backward()
        p = torch.softmax(logits.detach(), -1)
        e_x = torch.nn.functional.one_hot(x, 6).to(D64)
        # ∇[−mean log p(x)] = −(1/N) Σ (e_x − p); the add-α prior adds −(α/N)(1 − d p)
        expected = -(e_x - p).mean(0) - prior_weight * (1 - 6 * p)
        torch.testing.assert_close(model.logits.grad, expected)


@pytest.mark.parametrize("d", [2, 17, 100])
def test_pmf_sums_to_one(d):
    model = Histogram(d)
    model.logits.data.normal_(0, 5)
    assert model.log_prob(torch.arange(d)).exp().sum().item() == pytest.approx(1, abs=1e-6)


def _fit(model: Histogram, x: torch.Tensor, steps: int = 1000) -> Histogram:
    """The experiments' optimiser: full-batch Adam (β₂ = 0.9), lr 0.2, cosine decay."""
    opt = torch.optim.Adam(model.parameters(), lr=0.2, betas=(0.9, 0.9))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        (-model.log_prob(x).mean()).backward()
        opt.step()
        schedule.step()
    return model


@pytest.mark.parametrize("analytic", [True, False])
def test_trained_histogram_reaches_empirical_frequencies(analytic):
    x = HW1DataModule(20).train_x
    model = Histogram(20, analytic_grad=analytic)
    model.init_from_data(x)
    _fit(model, x)
    expected = closed_form_probs(x, 20)
    assert (model.probs().double() - expected).abs().max() < 1e-4
    nll, best = -model.log_prob(x).double().mean(), -expected[x].log().mean()
    assert nll.item() == pytest.approx(best.item(), abs=1e-5)


@pytest.mark.parametrize("analytic", [True, False])
def test_smoothing_optimum_is_add_alpha(analytic):
    """The penalised gradient vanishes exactly at p = (n + α)/(N + dα), even with empty bins."""
    x = HW1DataModule(20).train_x
    model = Histogram(20, analytic_grad=analytic, smoothing=0.5).double()
    model.init_from_data(x)
    model.logits.data.copy_(closed_form_probs(x, 20, 0.5).log())
    (-model.log_prob(x).mean()).backward()
    assert model.logits.grad.abs().max() < 1e-12
    model.logits.data.copy_(closed_form_probs(x, 20).clamp_min(1e-3).log())  # not the optimum
    model.logits.grad = None
    (-model.log_prob(x).mean()).backward()
    assert model.logits.grad.abs().max() > 1e-4


@pytest.mark.parametrize("analytic", [True, False])
def test_smoothing_leaves_log_prob_exact(analytic):
    """The prior shapes the gradient only, on either backward: log_prob stays the log-mass."""
    x = torch.tensor([0, 1, 1, 3])
    plain, smoothed = Histogram(4), Histogram(4, analytic_grad=analytic, smoothing=2.0)
    smoothed.logits.data.copy_(plain.logits.data.normal_())
    torch.testing.assert_close(smoothed.log_prob(x), plain.log_prob(x))


def test_sample_frequencies_match_probs():
    torch.manual_seed(0)
    model = Histogram(5)
    model.logits.data.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5]))
    freq = torch.bincount(model.sample(100_000), minlength=5) / 100_000
    assert model.sample(3).dtype == torch.long
    torch.testing.assert_close(freq, model.probs().detach(), atol=0.006, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"d": 1}, "d=1 is invalid"),
        ({"d": 2.5}, "d=2.5 is invalid"),
        ({"smoothing": -1.0}, "smoothing=-1.0 is invalid"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make(Histogram, **kwargs)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.tensor([0, 3, 20]), "data value 20 is outside .* \\(d=20\\)"),
        (torch.tensor([0, -1, 5]), "data value -1 is outside .* \\(d=20\\)"),
        (torch.tensor([1.0, 2.5]), "data value 2.5 is not an integer .* \\(d=20\\)"),
    ],
)
def test_data_outside_bins_refused(x, message):
    model = Histogram(20)
    with pytest.raises(UserError, match=message):
        model.init_from_data(x)
    with pytest.raises(UserError, match=message):
        model.eval().log_prob(x)


def test_data_max_beyond_model_d_refused_before_training(make_cfg):
    with pytest.raises(UserError, match=r"data value 13 is outside .* \(d=10\)"):
        train(make_cfg("experiment=hw1_histogram_d20", "model.d=10", "debug=fast"))


@pytest.mark.parametrize(
    "overrides",
    [("model=histogram", "data=mog1d"), ("model=flow1d", "data=hw1_d20")],
)
def test_discrete_continuous_pairing_refused(make_cfg, overrides):
    pattern = r"cannot work: the model is for (discrete|continuous) data"
    with pytest.raises(UserError, match=pattern):
        train(make_cfg(*overrides, "debug=fast"))
