"""ELBO gradients: total and path derivative are both unbiased; the path one is exact (zero
variance) when q equals the target."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from src.errors import ConfigError
from src.estimators.elbo import GRADIENTS, elbo_surrogate
from src.estimators.gradients import gradient_samples, gradient_variance
from src.estimators.targets import BananaTarget, GaussianTarget
from src.train import train

TARGET = GaussianTarget(mean=[1.0, -1.0], std=[0.5, 2.0]).double()


def _grads(target, params, gradient, repeats=20_000, n=4):
    loss = lambda p: elbo_surrogate(p["mean"], p["log_std"], target.log_prob, n, gradient)  # noqa: E731
    return gradient_samples(loss, params, repeats)


def _params(mean, std):
    return {
        "mean": torch.tensor(mean, dtype=torch.float64),
        "log_std": torch.tensor(std, dtype=torch.float64).log(),
    }


def test_both_gradients_are_unbiased_for_a_gaussian_target():
    """Mean estimate = autograd of the exact ELBO = −KL(q‖p), within 4 standard errors."""
    torch.manual_seed(0)
    params = _params([0.0, 0.5], [1.0, 0.7])
    theta = {k: v.clone().requires_grad_() for k, v in params.items()}
    q = Independent(Normal(theta["mean"], theta["log_std"].exp()), 1)
    exact = torch.autograd.grad(-kl_divergence(q, TARGET.distribution()), list(theta.values()))
    for gradient in GRADIENTS:
        grads = _grads(TARGET, params, gradient)
        for (key, g), truth in zip(grads.items(), exact):
            se = g.std(0) / math.sqrt(len(g))
            assert ((g.mean(0) - truth).abs() < 4 * se).all(), (gradient, key)


def test_both_gradients_agree_for_the_banana():
    torch.manual_seed(1)
    target = BananaTarget(a=1.0, b=0.5)
    params = _params([0.2, -0.3], [0.8, 1.2])
    total = _grads(target, params, "total")
    path = _grads(target, params, "path")
    for key in params:
        diff = total[key].mean(0) - path[key].mean(0)
        se = (total[key].var(0) / len(total[key]) + path[key].var(0) / len(path[key])).sqrt()
        assert (diff.abs() < 4 * se).all(), key


def test_path_gradient_has_zero_variance_at_the_optimum():
    torch.manual_seed(2)
    params = _params([1.0, -1.0], [0.5, 2.0])  # q = target
    path = _grads(TARGET, params, "path", repeats=500)
    total = _grads(TARGET, params, "total", repeats=500)
    for key in params:
        assert path[key].abs().max() < 1e-12
        assert total[key].var(0).min() > 1e-3
    assert all(v < 1e-24 for v in gradient_variance(path).values())


def test_path_gradient_variance_is_smaller_near_the_optimum():
    torch.manual_seed(3)
    params = _params([0.9, -0.8], [0.55, 1.8])
    var_path = gradient_variance(_grads(TARGET, params, "path", repeats=2000))
    var_total = gradient_variance(_grads(TARGET, params, "total", repeats=2000))
    assert all(var_path[k] < var_total[k] / 4 for k in params)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_run_fits_the_gaussian_target(make_cfg, gradient):
    metrics = train(
        make_cfg(
            "experiment=elbo_gradients",
            f"study.gradient={gradient}",
            "trainer.max_steps=600",
            "optimizer.lr=0.05",
            "study.n_eval=20000",
            "~logger",
            "callbacks.progress_bar.refresh_rate=0",
        )
    )
    assert metrics["test/kl"] < 0.02
    assert abs(metrics["test/elbo"] + metrics["test/kl"]) < 4 * metrics["test/elbo_se"] + 1e-6
    if gradient == "path":  # near the optimum its variance is far below the total's
        assert metrics["test/grad_var/path/mean"] < metrics["test/grad_var/total/mean"] / 4


def test_run_on_the_banana(make_cfg):
    """One step from q = N(0, I), whose ELBO is −¼ in closed form: E_q log N(z₁; 0, 1) = −½ log 2π
    − ½, E_q log N(z₂; ½(z₁² − 1), 1) = −½ log 2π − ½ − ⅛ Var(z₁²) and H[q] = log 2π + 1. Adam's
    first step (lr 0.02) moves each parameter by 0.02, and at N(0, I) only log σ₁ has a slope
    (−1), so the ELBO moves by at most 0.02. (Any q of a normalised target has ELBO < 0.)"""
    metrics = train(make_cfg("experiment=elbo_banana", "debug=fast"))
    assert abs(metrics["test/elbo"] + 0.25) < 0.02 + 4 * metrics["test/elbo_se"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("study.gradient=magic", "study.gradient"),
        ("study.init_std=[0.0,1.0]", "study.init_std"),
        ("study.target.std=[1.0,-2.0]", "study.target.std"),
        ("study.grad_var_repeats=1", "study.grad_var_repeats"),
    ],
)
def test_bad_settings_are_refused(make_cfg, override, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        train(make_cfg("experiment=elbo_gradients", override))
