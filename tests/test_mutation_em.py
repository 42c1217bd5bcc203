"""EM (`src/fits/em.py`) tests written to kill the survivors of `make mutation MODULE=em`, each
against a reference that does not share the code under test: parameter counts and information
criteria by hand, the E- and M-step by scipy and numpy, the refusals' messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from src.fits.em import EMFit, information_criteria, n_parameters
from src.models.gmm import GaussianMixture
from src.models.histogram import Histogram
from src.models.standardized import Standardized


@pytest.mark.parametrize(
    ("k", "d", "covariance_type", "expected"),
    [
        (3, 4, "full", 2 + 12 + 3 * 10),  # K − 1 + K·D + K·D(D+1)/2
        (3, 4, "diag", 2 + 12 + 12),  # K − 1 + K·D + K·D
        (2, 3, "full", 1 + 6 + 2 * 6),
        (1, 1, "full", 0 + 1 + 1),
        (5, 1, "diag", 4 + 5 + 5),
    ],
)
def test_n_parameters_by_hand(k: int, d: int, covariance_type: str, expected: int) -> None:
    """scikit-learn's free-parameter count, an int (d(d+1) is even: a `/` would give a float)."""
    p = n_parameters(GaussianMixture(k, d, covariance_type))
    assert p == expected and type(p) is int


def test_information_criteria_by_hand() -> None:
    """ℓ = −123.5 over N = 50 points, p = 3: BIC = 247 + 3 ln 50, AIC = 247 + 6 (p = 3 and
    N = 50 keep 2p, 2 + p, 2^p and p ln N, p + ln N apart)."""
    out = information_criteria(
        torch.tensor(-123.5, dtype=torch.float64), torch.tensor(50.0, dtype=torch.float64), 3
    )
    assert float(out["train/bic"]) == pytest.approx(247 + 3 * math.log(50), rel=1e-12)
    assert float(out["train/aic"]) == pytest.approx(253.0, rel=1e-12)
    assert set(out) == {"train/bic", "train/aic"}


def test_accepts_a_mixture_only_in_the_datas_own_units() -> None:
    gmm = GaussianMixture(2, 2)
    assert EMFit.accepts(gmm) is None
    standardized = Standardized(gmm, torch.zeros(2), torch.ones(2))
    assert "data.standardize=false" in EMFit.accepts(standardized)
    assert EMFit.accepts(Histogram(4)) == "EM fits a Gaussian mixture (model=gmm)"


def test_one_update_is_the_em_step_by_scipy() -> None:
    """From the fit's start, `update` returns the mean log-likelihood *before* the step
    (Σ_n log p(x_n) / N, N = 40 ≠ 1), and sets π_k = Σ_n r_nk / N, μ_k = Σ_n r_nk x_n / Σ_n r_nk,
    Σ_k = Σ_n r_nk (x_n − μ_k)(x_n − μ_k)ᵀ / Σ_n r_nk + reg·I, with r by scipy."""
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 2, generator=g) - 2, torch.randn(20, 2, generator=g) + 2])
    x = (x + torch.tensor([5.0, -3.0])).double()  # far from 0: the fit's shift matters
    gmm = GaussianMixture(2, 2, reg_covar=1e-3).double()
    fit = EMFit(gmm, seed=0)
    fit.prepare(x, resuming=False)
    with torch.no_grad():
        pi, mu, cov = gmm.logits.softmax(-1).numpy(), gmm.loc.numpy().copy(), gmm.covariance()
    log_joint = np.stack(
        [np.log(pi[j]) + multivariate_normal(mu[j], cov[j].numpy()).logpdf(x) for j in range(2)]
    )
    log_p = logsumexp(log_joint, axis=0)
    r = np.exp(log_joint - log_p)  # [K, N]
    with torch.no_grad():
        stats = fit.batch_statistics(x)
        stats["n"] = torch.tensor(40.0, dtype=torch.float64)
        objective = fit.update(stats)
    assert float(objective) == pytest.approx(log_p.mean(), rel=1e-10)
    xs, counts = x.numpy(), r.sum(1)
    means = r @ xs / counts[:, None]
    with torch.no_grad():
        np.testing.assert_allclose(gmm.logits.softmax(-1).numpy(), counts / 40, rtol=1e-9)
        np.testing.assert_allclose(gmm.loc.numpy(), means, rtol=1e-9, atol=1e-12)
        for j in range(2):
            resid = xs - means[j]
            expected = (r[j, :, None] * resid).T @ resid / counts[j] + 1e-3 * np.eye(2)
            np.testing.assert_allclose(gmm.covariance()[j].numpy(), expected, rtol=1e-8, atol=1e-12)
