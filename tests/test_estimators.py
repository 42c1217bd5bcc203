"""Gradient estimators on the notes' problem: closed form, unbiasedness, variance, end point."""

import json
import math

import pytest
import torch
from scipy import integrate, stats
from torch.distributions import Normal

from src.errors import ConfigError, UserError
from src.estimators import xsinx
from src.estimators.gradients import (
    ESTIMATORS,
    gradient_samples,
    gradient_variance,
    leave_one_out_mean,
    surrogate,
)
from src.train import train
from tests.conftest import run_module

STATIONARY = xsinx.stationary_point()  # (μ, log σ) from (0, 0)


@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 1.0), (0.7, 0.4), (-1.3, 2.0)])
def test_closed_form_matches_quadrature(mu, sigma):
    density = stats.norm(mu, sigma).pdf
    numeric, _ = integrate.quad(lambda x: x * math.sin(x) * density(x), -math.inf, math.inf)
    exact = xsinx.expected_f(torch.tensor(mu), torch.tensor(sigma)).item()
    assert exact == pytest.approx(numeric, abs=1e-6)


def test_stationary_point_of_the_closed_form():
    theta = torch.tensor(STATIONARY, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(xsinx.objective(theta[0], theta[1]), theta)
    assert grad.abs().max() < 1e-8
    hessian = torch.autograd.functional.hessian(
        lambda t: xsinx.objective(t[0], t[1]), theta.detach()
    )
    assert torch.linalg.eigvalsh(hessian).min() > 0  # a minimum
    assert STATIONARY[0] == pytest.approx(0.4423, abs=1e-3)
    assert math.exp(STATIONARY[1]) == pytest.approx(0.6065, abs=1e-3)


def _objective(estimator, n, baseline=None):
    def loss(params):
        q = Normal(params["mu"], params["log_sigma"].exp())
        mean_f = surrogate(q, xsinx.f, n, estimator, baseline)
        return mean_f + xsinx.penalty(params["mu"], params["log_sigma"])

    return loss


@pytest.mark.parametrize(
    ("estimator", "baseline"),
    [("score", None), ("score_baseline", None), ("score_baseline", 0.8), ("reparam", None)],
)
def test_estimators_are_unbiased(estimator, baseline):
    """Mean of many independent estimates = autograd of the closed form, within 4 SE."""
    torch.manual_seed(0)
    params = {
        "mu": torch.tensor(0.3, dtype=torch.float64),
        "log_sigma": torch.tensor(math.log(0.8), dtype=torch.float64),
    }
    base = None if baseline is None else torch.tensor(baseline, dtype=torch.float64)
    grads = gradient_samples(_objective(estimator, 20, base), params, repeats=10_000)
    theta = {k: v.clone().requires_grad_() for k, v in params.items()}
    exact = torch.autograd.grad(
        xsinx.objective(theta["mu"], theta["log_sigma"]), list(theta.values())
    )
    for (key, g), truth in zip(grads.items(), exact):
        se = g.std() / math.sqrt(len(g))
        assert abs(g.mean() - truth) < 4 * se, key


def test_surrogate_value_is_the_plain_monte_carlo_estimate():
    q = Normal(torch.tensor(0.5), torch.tensor(1.0))
    for estimator in ESTIMATORS:
        torch.manual_seed(4)
        value = surrogate(q, xsinx.f, 50_000, estimator)
        assert value.item() == pytest.approx(xsinx.expected_f(q.loc, q.scale).item(), abs=0.02)


def test_variance_order_at_the_stationary_point():
    """There reparam < score with leave-one-out baseline < score (at θ = (0, 0) the baseline
    beats reparam on μ: the order depends on θ)."""
    torch.manual_seed(1)
    params = {k: torch.tensor(v) for k, v in zip(("mu", "log_sigma"), STATIONARY)}
    var = {
        name: gradient_variance(gradient_samples(_objective(name, 100), params, repeats=400))
        for name in ESTIMATORS
    }
    for key in params:
        assert var["reparam"][key] < var["score_baseline"][key] < var["score"][key]


def _run(make_cfg, estimator, *extra):
    return train(
        make_cfg(
            "experiment=seed003_estimators_fast",
            f"study.estimator={estimator}",
            "study.n_samples=1000",
            "trainer.max_steps=200",
            "logger=csv",
            "callbacks.progress_bar.refresh_rate=0",
            *extra,
        )
    )


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_estimator_reaches_the_stationary_point(make_cfg, tmp_path, estimator):
    metrics = _run(make_cfg, estimator)
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert metrics["mu"] == pytest.approx(STATIONARY[0], abs=0.03)
    assert metrics["sigma"] == pytest.approx(math.exp(STATIONARY[1]), abs=0.03)
    exact = xsinx.objective(*(torch.tensor(v) for v in STATIONARY)).item()
    assert metrics["objective_exact"] == pytest.approx(exact, abs=2e-3)
    assert metrics["estimator"] == estimator
    ratio = metrics["test/grad_var_ratio/log_sigma"]
    assert ratio == 1.0 if estimator == "reparam" else ratio > 1.0
    header = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/objective", "train/objective_exact", "train/grad_var/mu"} <= set(header)


def test_running_mean_baseline_also_converges(make_cfg):
    """Any baseline keeps the score function unbiased, so convergence alone cannot tell a
    running mean that tracks E_q[f] (about half the score's variance at the end, from 400
    estimates) from one stuck at 0 (the plain score function, ratio ≈ 1)."""
    metrics = _run(
        make_cfg, "score_baseline", "study.baseline=running_mean", "study.grad_var_repeats=400"
    )
    assert metrics["mu"] == pytest.approx(STATIONARY[0], abs=0.03)
    for key in ("mu", "log_sigma"):
        score = metrics[f"test/grad_var/score/{key}"]
        assert metrics[f"test/grad_var/score_baseline/{key}"] < 0.75 * score, key


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_notes_settings_reach_the_same_point(make_cfg, estimator):
    """The full run (lr 5e-4, 10 000 steps of 10 000 samples) follows gradient descent on the
    closed form with the same step: it ends where that does, short of the stationary point."""
    metrics = train(make_cfg("experiment=seed003_estimators", f"study.estimator={estimator}"))
    mu, log_sigma = xsinx.stationary_point(lr=5e-4, steps=10_000)
    assert metrics["mu"] == pytest.approx(mu, abs=0.01)
    assert metrics["sigma"] == pytest.approx(math.exp(log_sigma), abs=0.01)
    assert metrics["mu"] == pytest.approx(STATIONARY[0], abs=0.02)
    assert metrics["sigma"] == pytest.approx(math.exp(STATIONARY[1]), abs=0.02)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("study.init_sigma=0", "study.init_sigma"),
        ("study.init_sigma=-1.0", "study.init_sigma"),
        ("study.estimator=magic", "study.estimator"),
        ("study.grad_var_repeats=1", "study.grad_var_repeats"),
        ("optimizer.lr=-1", "optimizer.lr"),
    ],
)
def test_bad_settings_are_refused(make_cfg, override, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        train(make_cfg("experiment=seed003_estimators_fast", override))


def test_leave_one_out_needs_two_samples(make_cfg):
    cfg = make_cfg(
        "experiment=seed003_estimators_fast", "study.estimator=score_baseline", "study.n_samples=1"
    )
    with pytest.raises(ConfigError, match=r"^study\.n_samples=1"):
        train(cfg)


def test_a_real_data_set_is_refused(make_cfg):
    with pytest.raises(UserError, match="data=none"):
        train(make_cfg("study=estimator", "data=mog1d", "debug=fast"))


def test_cli_reports_bad_sigma_in_one_line(tmp_path):
    result = run_module(
        *("src.train", "experiment=seed003_estimators_fast", "study.init_sigma=0"),
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: study.init_sigma=0 is invalid")


def test_leave_one_out_mean_by_hand():
    """b_i = (Σ_j v_j − v_i)/(n − 1) along dim 0: (1, 2, 3, 6) sums to 12, so b = (11, 10, 9, 6)/3;
    a second column (a batch member) gets its own."""
    values = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 3.0], [6.0, 3.0]])
    expected = torch.tensor([[11.0, 6.0], [10.0, 6.0], [9.0, 3.0], [6.0, 3.0]]) / 3
    torch.testing.assert_close(leave_one_out_mean(values), expected)


def test_gradient_samples_and_variance_by_hand():
    """A loss whose r-th repeat is r·Σ_k k·a_k has gradient r·(0, 1, 2) for repeat r: the copies
    are independent. The variance over repeats is the unbiased one, summed over elements."""
    repeats = 4
    params = {"a": torch.tensor([0.5, -1.0, 2.0]), "b": torch.tensor(3.0)}

    def loss(p):
        r = torch.arange(repeats, dtype=torch.float32)
        return r * (p["a"] * torch.arange(3.0)).sum(-1) + p["b"] ** 2

    grads = gradient_samples(loss, params, repeats)
    r = torch.arange(repeats, dtype=torch.float32)[:, None]
    torch.testing.assert_close(grads["a"], r * torch.arange(3.0))
    torch.testing.assert_close(grads["b"], torch.full((repeats,), 6.0))
    var = gradient_variance({"g": torch.tensor([[1.0, 2.0], [3.0, 6.0]])})
    torch.testing.assert_close(var["g"], torch.tensor(2.0 + 8.0))  # var(1, 3) + var(2, 6)


def test_score_baseline_with_a_given_baseline_subtracts_it():
    """A constant baseline b gives the gradient (1/n)Σ (f_i − b) ∇log q(x_i): with f ≡ b it is
    exactly zero, while the plain score function is not."""
    q_mu = torch.tensor(0.3, requires_grad=True)
    q = Normal(q_mu, torch.tensor(1.0))
    constant = lambda x: torch.full_like(x, 2.0)  # noqa: E731
    torch.manual_seed(0)
    b = torch.tensor(2.0)
    (with_b,) = torch.autograd.grad(surrogate(q, constant, 64, "score_baseline", b), q_mu)
    (loo,) = torch.autograd.grad(surrogate(q, constant, 64, "score_baseline"), q_mu)
    (plain,) = torch.autograd.grad(surrogate(q, constant, 64, "score"), q_mu)
    assert with_b.item() == 0 and loo.abs().item() < 1e-6 and plain.abs().item() > 1e-3


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_estimator_names_from_a_config_are_compared_by_value(estimator):
    """A name parsed from a YAML file is a new string, not the interned literal (`is` would miss
    it): each estimator still gives its own gradient, told apart on f ≡ 2 where the plain score
    function's is not 0 and the others' are (baseline: f − b = 0; reparam: f' = 0)."""
    name = "".join(list(estimator))
    mu = torch.tensor(0.3, requires_grad=True)
    q = Normal(mu, torch.tensor(1.0))
    torch.manual_seed(0)
    value = surrogate(q, lambda x: 0 * x + 2.0, 64, name)
    (grad,) = torch.autograd.grad(value, mu)
    assert (grad.abs().item() > 1e-3) is (estimator == "score")
