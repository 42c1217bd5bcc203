"""Gumbel-softmax and the exponential reparameterization (issue #17): the exact gradients, the
estimators' bias and variance against them, and both experiments end to end."""

import itertools
import json
import math

import pytest
import torch
from scipy import integrate, stats
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.errors import ConfigError
from src.estimators import exponential
from src.estimators.categorical import (
    QuadraticReadout,
    bias_and_variance,
    enumerated_loss,
    estimator_names,
    exact_gradient,
    surrogate,
)
from src.estimators.gradients import gradient_samples
from src.estimators.samplers import gumbel_softmax
from src.train import train

F = QuadraticReadout([0.0, 0.25, 0.5, 0.75, 1.0], 0.45)  # the study's default problem
THETA = torch.tensor([0.5, -0.3, 0.2, 1.0, -1.0], dtype=torch.float64)


def _estimates(kind: str, theta: torch.Tensor, repeats: int, tau: float = 1.0) -> torch.Tensor:
    loss = lambda p: surrogate(p["logits"], F, 4, kind, tau)  # noqa: E731
    return gradient_samples(loss, {"logits": theta}, repeats)["logits"]


def test_enumerated_gradient_is_autograd_of_the_enumerated_loss():
    torch.manual_seed(0)
    theta = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    f_values = torch.rand(6, dtype=torch.float64)
    (auto,) = torch.autograd.grad(enumerated_loss(theta, f_values).sum(), theta)
    torch.testing.assert_close(exact_gradient(theta.detach(), f_values), auto)
    assert F.vertex_values().tolist() == pytest.approx([0.2025, 0.04, 0.0025, 0.09, 0.3025])


@pytest.mark.parametrize("kind", ["score", "score_baseline"])
def test_score_function_is_unbiased(kind):
    torch.manual_seed(1)
    grads = _estimates(kind, THETA, 20_000)
    se = grads.std(0) / math.sqrt(len(grads))
    error = grads.mean(0) - exact_gradient(THETA, F.vertex_values())
    assert (error.abs() < 4 * se).all(), (error / se).tolist()


def test_gumbel_bias_shrinks_and_variance_grows_as_temperature_falls():
    torch.manual_seed(2)
    theta = torch.zeros(5, dtype=torch.float64)
    exact = exact_gradient(theta, F.vertex_values())
    rows = [
        bias_and_variance(_estimates("gumbel", theta, 10_000, tau), exact)
        for tau in (0.1, 0.5, 2.0)
    ]
    for small, large in itertools.pairwise(rows):
        assert small["bias"] + 4 * small["bias_se"] < large["bias"] - 4 * large["bias_se"]
        assert small["variance"] > 3 * large["variance"]
    # and the biased limit is real: at τ = 2 the error is most of the gradient itself
    assert rows[-1]["bias"] > 0.5 * exact.norm()


def test_straight_through_forward_is_an_exact_categorical_sample():
    generator = torch.Generator().manual_seed(3)
    y = gumbel_softmax(THETA, 20_000, temperature=1.0, hard=True, generator=generator)
    assert ((y == 0) | (y == 1)).all() and (y.sum(-1) == 1).all()
    counts = y.sum(0).detach().numpy()
    expected = torch.softmax(THETA, -1).numpy() * len(y)
    assert stats.chisquare(counts, expected).pvalue > 1e-3


def test_exponential_estimators_are_unbiased_and_reparam_has_lower_variance():
    torch.manual_seed(4)
    rates = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    exact = exponential.gradient(rates, 1.0)
    variance = {}
    for kind in exponential.KINDS:
        loss = lambda p, k=kind: exponential.surrogate(p["rate"], 1.0, 16, k)  # noqa: E731
        grads = gradient_samples(loss, {"rate": rates}, 20_000)["rate"]
        se = grads.std(0) / math.sqrt(len(grads))
        assert ((grads.mean(0) - exact).abs() < 4 * se).all(), kind
        variance[kind] = grads.var(0)
    assert (variance["reparam"] < variance["score"] / 2).all()


def test_exponential_closed_form_gradient_and_optimum():
    rate = torch.tensor([0.7, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(exponential.loss(rate, 1.0).sum(), rate)
    torch.testing.assert_close(exponential.gradient(rate.detach(), 1.0), auto)
    assert exponential.gradient(torch.tensor(2.0), 1.0).item() == 0  # λ* = 2/a
    assert exponential.loss(torch.tensor(2.0), 1.0).item() == pytest.approx(0.5)  # a²/2


def _run(make_cfg, experiment, *extra):
    return train(
        make_cfg(
            f"experiment={experiment}",
            "study.repeats=500",
            "trainer.max_steps=100",
            "data.steps_per_epoch=50",
            "callbacks.progress_bar.refresh_rate=0",
            *extra,
        )
    )


def _image_tags(tmp_path):
    (run,) = (tmp_path / "tensorboard").iterdir()  # named <study>-none-s<seed>
    assert run.name.endswith("-none-s0")
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    return set(events.Tags()["images"])


def test_gumbel_softmax_study_end_to_end(make_cfg, tmp_path, one_torch_thread):
    metrics = _run(make_cfg, "gumbel_softmax_study")
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    names = ["exact", "score", "score_baseline", "straight_through"]
    names += [f"gumbel_t{tau}" for tau in ("0.1", "0.3", "0.5", "1", "2", "5")]
    for name in names:
        for stat in ("bias", "bias_se", "variance", "final_gap"):
            assert math.isfinite(metrics[f"test/{stat}/{name}"]), (stat, name)
    assert metrics["test/variance/exact"] == 0 and metrics["test/bias/exact"] < 1e-12
    for name in ("score", "score_baseline"):  # unbiased: the error is noise
        assert metrics[f"test/bias/{name}"] < 4 * metrics[f"test/bias_se/{name}"], name
    assert metrics["test/bias/gumbel_t5"] > 4 * metrics["test/bias_se/gumbel_t5"]
    assert metrics["test/final_gap/exact"] < metrics["test/final_gap/gumbel_t5"]
    assert {"samples/bias_variance", "samples/optimisation"} <= _image_tags(tmp_path)


def test_exponential_reparam_study_end_to_end(make_cfg, tmp_path, one_torch_thread):
    """Both estimators are unbiased against the closed-form dL/dλ (the signed bias is noise),
    and 100 steps take both fits from λ = 0.5 (gap 4.5) to near λ* = 2 (gap 0.01 ≈ |Δλ| 0.3)."""
    metrics = _run(make_cfg, "exponential_reparam_study")
    for kind in exponential.KINDS:
        for rate in ("0.25", "0.5", "1", "2", "4", "8"):
            bias, se = (metrics[f"test/{stat}/{kind}/rate_{rate}"] for stat in ("bias", "bias_se"))
            assert abs(bias) < 4 * se, (kind, rate)
            assert math.isfinite(metrics[f"test/variance/{kind}/rate_{rate}"])
        assert 0 <= metrics[f"test/final_gap/{kind}"] < 0.01
    assert metrics["test/variance_ratio/rate_1"] > 1
    assert "samples/gradients" in _image_tags(tmp_path)


def _expected_loss(rate: float, a: float) -> float:
    """E_{x~Exp(λ)}[(x − a)²] by numerical integration (scipy), not from the closed form."""
    value, _ = integrate.quad(lambda x: (x - a) ** 2 * rate * math.exp(-rate * x), 0, math.inf)
    return value


@pytest.mark.parametrize(("rate", "a"), [(0.7, 0.6), (2.0, 2.5), (3.0, -1.5)])
def test_exponential_closed_forms_against_quadrature(rate, a):
    """L(λ) and dL/dλ at a ≠ 1 (where 2a = 2^a and a² = a³ no longer hide a slip): the integral
    by quadrature and its central difference."""
    assert exponential.loss(torch.tensor(rate, dtype=torch.float64), a).item() == pytest.approx(
        _expected_loss(rate, a), rel=1e-8
    )
    h = 1e-4
    slope = (_expected_loss(rate + h, a) - _expected_loss(rate - h, a)) / (2 * h)
    grad = exponential.gradient(torch.tensor(rate, dtype=torch.float64), a).item()
    assert grad == pytest.approx(slope, rel=1e-5)


@pytest.mark.parametrize("kind", exponential.KINDS)
def test_exponential_surrogate_value_and_gradient_at_another_target(kind):
    """At a = 2.5 the surrogate's value is the MC estimate of L and its gradient an unbiased
    estimate of dL/dλ: both within 4 standard errors of the quadrature values."""
    torch.manual_seed(5)
    rates, a = torch.tensor([0.8, 1.5], dtype=torch.float64), 2.5
    values = exponential.surrogate(rates.expand(20_000, 2), a, 4, kind)
    expected = torch.tensor([_expected_loss(r, a) for r in rates.tolist()], dtype=torch.float64)
    se = values.std(0) / math.sqrt(len(values))
    assert ((values.mean(0) - expected).abs() < 4 * se).all()
    loss = lambda p: exponential.surrogate(p["rate"], a, 4, kind)  # noqa: E731
    grads = gradient_samples(loss, {"rate": rates}, 20_000)["rate"]
    se = grads.std(0) / math.sqrt(len(grads))
    assert ((grads.mean(0) - exponential.gradient(rates, a)).abs() < 4 * se).all()


@pytest.mark.parametrize("kind", ["magic", "zzz"])  # before and after "score" in order
def test_exponential_unknown_estimator_is_refused(kind):
    expected = rf"^estimator='{kind}' is invalid: expected one of reparam, score$"
    with pytest.raises(ConfigError, match=expected):
        exponential.surrogate(torch.ones(2), 1.0, 4, kind)


def test_bias_and_variance_by_hand():
    """Estimates (1, 2), (3, 6), (2, 1) of a gradient (1, 1): mean (2, 3), error (1, 2) of norm
    √5; per-component unbiased variances (1, 7): bias_se = √(8/3), variance = 4."""
    grads = torch.tensor([[1.0, 2.0], [3.0, 6.0], [2.0, 1.0]])
    stats_ = bias_and_variance(grads, torch.tensor([1.0, 1.0]))
    assert stats_["bias"].item() == pytest.approx(math.sqrt(5))
    assert stats_["bias_se"].item() == pytest.approx(math.sqrt(8 / 3))
    assert stats_["variance"].item() == pytest.approx(4)


def test_estimator_names_by_hand():
    names = estimator_names([0.1, 2.0], 0.5)
    assert list(names) == [
        "exact",
        "score",
        "score_baseline",
        "gumbel_t0.1",
        "gumbel_t2",
        "straight_through",
    ]
    assert names["gumbel_t0.1"] == ("gumbel", 0.1) and names["straight_through"] == (
        "straight_through",
        0.5,
    )
    assert all(math.isnan(names[k][1]) and names[k][0] == k for k in list(names)[:3])


def test_quadratic_readout_reads_the_convex_combination():
    """f(y) = (y·c − t)²: y = (0.5, 0, 0.5, 0, 0) reads 0.25, so f = (0.25 − 0.45)² = 0.04."""
    y = torch.tensor([[0.5, 0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(F(y), torch.tensor([0.04, 0.3025], dtype=torch.float64))


def test_leave_one_out_baseline_lowers_the_score_variance():
    """Both are unbiased (any baseline independent of z_i is); the leave-one-out mean removes
    most of f's mean from the weight: about half the plain score's variance here."""
    torch.manual_seed(6)
    var = {k: _estimates(k, THETA, 4000).var(0).sum() for k in ("score", "score_baseline")}
    assert var["score_baseline"] < 0.75 * var["score"]  # about 0.53 here


@pytest.mark.parametrize("kind", ["score", "score_baseline", "straight_through"])
def test_categorical_surrogate_value_is_the_plain_monte_carlo_estimate(kind):
    """The value is (1/n) Σ f(e_{z_i}), an estimate of L = Σ_k p_k f_k: within 4 standard
    errors of the enumerated loss, for batched logits too."""
    torch.manual_seed(7)
    logits = torch.stack([THETA, -THETA])
    values = surrogate(logits.expand(5000, 2, 5), F, 4, kind)
    se = values.std(0) / math.sqrt(len(values))
    exact = (torch.softmax(logits, -1) * F.vertex_values()).sum(-1)
    assert ((values.mean(0) - exact).abs() < 4 * se).all()


@pytest.mark.parametrize("kind", ["magic", "zzz", "a"])
def test_categorical_unknown_estimator_is_refused(kind):
    expected = rf"^estimator='{kind}' is invalid: expected one of exact, score, score_baseline, "
    with pytest.raises(ConfigError, match=expected):
        surrogate(THETA, F, 4, kind)


def _runtime(name: str) -> str:
    """`name` as a new string, the way a name parsed from a YAML file is: not the interned
    literal, so a comparison with `is` would miss it."""
    return "".join(list(name))


def test_exponential_kind_from_a_config_is_compared_by_value():
    rate = torch.tensor([1.0], requires_grad=True)
    assert exponential.surrogate(rate, 1.0, 8, _runtime("reparam")).grad_fn is not None
    assert exponential.surrogate(rate, 1.0, 8, _runtime("score")).isfinite().all()


def test_categorical_kind_from_a_config_is_compared_by_value():
    exact = surrogate(THETA, F, 4, _runtime("exact"))
    torch.testing.assert_close(exact, enumerated_loss(THETA, F.vertex_values()))
    for kind in ("score", "score_baseline", "gumbel", "straight_through"):
        assert torch.isfinite(surrogate(THETA[None], F, 4, _runtime(kind))).all()
    readout = QuadraticReadout([0, 1, 2, 3, 4], 0)
    hard = surrogate(THETA.expand(200, 5), readout, 1, _runtime("straight_through"))
    assert set(hard.tolist()) <= {0.0, 1.0, 4.0, 9.0, 16.0}  # f at a vertex: forward is exact
    constant = QuadraticReadout([1.0] * 5, 0.0)  # f ≡ 1: the leave-one-out weight is 0
    logits = THETA.clone().requires_grad_()
    torch.manual_seed(12)
    (baseline,) = torch.autograd.grad(
        surrogate(logits, constant, 8, _runtime("score_baseline")), logits
    )
    (plain,) = torch.autograd.grad(surrogate(logits, constant, 8, "score"), logits)
    assert baseline.abs().max() == 0 and plain.abs().max() > 1e-3


def test_gumbel_surrogate_default_temperature_is_one():
    logits = THETA[None]
    torch.manual_seed(9)
    value = surrogate(logits, F, 16, "gumbel")
    torch.manual_seed(9)
    torch.testing.assert_close(value, F(gumbel_softmax(logits, 16, 1.0)).mean(0))


@pytest.mark.parametrize("kind", ["score", "score_baseline"])
def test_score_estimators_at_a_near_certain_category(kind):
    """p ≈ (1, 0, 0) in float32: log p_z rounds to 0 for the likely category; the value must
    still be the MC estimate and the gradient, like the exact one, finite and near 0."""
    torch.manual_seed(10)
    logits = torch.tensor([30.0, 0.0, 0.0], requires_grad=True)
    f = QuadraticReadout([1.0, 0.0, 2.0], 0.0)
    value = surrogate(logits, f, 8, kind)
    assert value.item() == 1.0  # every draw is category 0, f = 1 there
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(grad).all() and grad.abs().max() < 1e-6


@pytest.mark.parametrize("kind", ["score", "score_baseline"])
def test_score_function_is_unbiased_for_batched_logits(kind):
    """Logits (2, K) become (R, 2, K) in `gradient_samples`: the log-probability is taken over
    the K categories (the last dim), for every batch member."""
    torch.manual_seed(11)
    theta = torch.stack([THETA, THETA.flip(0)])
    grads = _estimates(kind, theta, 4000)
    se = grads.std(0) / math.sqrt(len(grads))
    error = grads.mean(0) - exact_gradient(theta, F.vertex_values())
    assert (error.abs() < 4 * se).all(), (error / se).tolist()


def test_enumerated_loss_by_hand():
    """L = Σ_k p_k f_k per batch member: p = (0.2, 0.3, 0.5) and (0.6, 0.2, 0.2), f = (1, 2, 3)
    give 2.3 and 1.6."""
    logits = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]], dtype=torch.float64).log()
    f_values = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(
        enumerated_loss(logits, f_values), torch.tensor([2.3, 1.6], dtype=torch.float64)
    )
