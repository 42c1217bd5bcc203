"""Gumbel-softmax and the exponential reparameterization (issue #17): the exact gradients, the
estimators' bias and variance against them, and both experiments end to end."""

import itertools
import json
import math

import pytest
import torch
from scipy import stats
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.estimators import exponential
from src.estimators.categorical import (
    QuadraticReadout,
    bias_and_variance,
    enumerated_loss,
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
