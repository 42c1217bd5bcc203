"""EM's train/bic and train/aic: scikit-learn's `bic(X)` and `aic(X)` of the same fitted mixture,
for full and diagonal covariances, whatever the batch size or the number of processes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from src.data.synthetic import SyntheticDataModule
from src.data.truths_2d import gaussian_mixture
from src.fits.em import EMFit, n_parameters
from src.fits.online_em import OnlineEMFit
from src.models.gmm import GaussianMixture
from src.train import train
from tests.conftest import bare_trainer, compose_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_TRAIN, K = 1000, 3


def _fitted(fit_class: type[EMFit], covariance_type: str, batch_size: int | None, **settings):
    """(the fit's and test's metrics, the fitted mixture, the training points) of a bare fit."""
    data = SyntheticDataModule(gaussian_mixture(), N_TRAIN, 200, 200, batch_size, 0, dim=2)
    fit = fit_class(GaussianMixture(K, 2, covariance_type), **settings)
    fit.prepare(data.train_x, resuming=False)
    trainer = bare_trainer(200, num_sanity_val_steps=0)
    trainer.fit(fit, datamodule=data)
    metrics = dict(trainer.callback_metrics)
    trainer.test(fit, datamodule=data, verbose=False)
    metrics |= trainer.callback_metrics
    return {k: float(v) for k, v in metrics.items()}, fit.model, data.train_x.double().numpy()


def _sklearn_mixture(gmm: GaussianMixture) -> SkGaussianMixture:
    """scikit-learn's mixture with our fitted parameters, set by hand: precisions_cholesky_ is
    the upper factor U with Σ⁻¹ = U Uᵀ, i.e. (L⁻¹)ᵀ for Σ = L Lᵀ (1/σ per axis when diagonal)."""
    with torch.no_grad():
        weights, means, cov = (
            t.double().numpy() for t in (gmm.logits.softmax(-1), gmm.loc, gmm.covariance())
        )
    sk = SkGaussianMixture(gmm.n_components, covariance_type="diag" if gmm.diagonal else "full")
    sk.weights_, sk.means_ = weights, means
    if gmm.diagonal:
        sk.covariances_ = np.diagonal(cov, axis1=1, axis2=2).copy()
        sk.precisions_cholesky_ = 1 / np.sqrt(sk.covariances_)
    else:
        sk.covariances_ = cov
        sk.precisions_cholesky_ = np.linalg.inv(np.linalg.cholesky(cov)).transpose(0, 2, 1)
    return sk


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_bic_and_aic_equal_scikit_learn_for_the_same_mixture(covariance_type):
    full = _fitted(EMFit, covariance_type, None, tol=1e-8)
    mini = _fitted(EMFit, covariance_type, 300, tol=1e-8)  # 4 batches, the last one short
    for metrics, gmm, x in (full, mini):
        sk = _sklearn_mixture(gmm)
        assert metrics["train/bic"] == pytest.approx(sk.bic(x), rel=1e-8, abs=0)
        assert metrics["train/aic"] == pytest.approx(sk.aic(x), rel=1e-8, abs=0)
    for key in ("train/bic", "train/aic"):
        assert mini[0][key] == pytest.approx(full[0][key], rel=1e-8, abs=0)


def test_the_parameter_count_follows_the_covariance_type():
    # K − 1 weights + K·D means + K·D(D+1)/2 (full) or K·D (diag), as scikit-learn counts
    assert n_parameters(GaussianMixture(3, 2, "full")) == 2 + 6 + 9
    assert n_parameters(GaussianMixture(3, 2, "diag")) == 2 + 6 + 6
    assert n_parameters(GaussianMixture(1, 5, "full")) == 0 + 5 + 15


def test_bic_is_of_the_final_parameters_not_the_last_objective():
    """Cut after 3 steps: train/nll is the log-likelihood before the last M-step, so a BIC made
    from it misses the last step's gain; train/bic, from its own pass, does not."""
    metrics, gmm, x = _fitted(EMFit, "full", None, max_iter=3)
    bic = _sklearn_mixture(gmm).bic(x)
    assert metrics["train/bic"] == pytest.approx(bic, rel=1e-8, abs=0)
    from_objective = 2 * N_TRAIN * metrics["train/nll"] + n_parameters(gmm) * math.log(N_TRAIN)
    assert from_objective - bic > 1e-6 * bic


def test_online_em_reports_the_bic_of_its_final_parameters():
    metrics, gmm, x = _fitted(OnlineEMFit, "diag", 250, max_iter=3)
    sk = _sklearn_mixture(gmm)
    assert metrics["train/bic"] == pytest.approx(sk.bic(x), rel=1e-8, abs=0)
    assert metrics["train/aic"] == pytest.approx(sk.aic(x), rel=1e-8, abs=0)


EM_RUN = (
    *("experiment=gmm_em_mog2d", "data.n_train=2000", "data.n_val=300", "data.n_test=500"),
    *("model.n_components=4", "fit.n_init=1", "data.batch_size=1000"),
    *("~logger", "callbacks.figures=null", "callbacks.progress_bar=null"),
)


def test_a_run_writes_bic_and_aic_into_metrics_json(tmp_path):
    train(compose_config(*EM_RUN, output_dir=tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    p = 3 + 8 + 12  # K = 4, D = 2, full
    assert metrics["train/bic"] - metrics["train/aic"] == pytest.approx(p * (math.log(2000) - 2))


@pytest.mark.slow  # two spawned processes, each importing torch and Lightning
def test_two_processes_give_the_one_process_bic(tmp_path):
    one = train(compose_config(*EM_RUN, output_dir=tmp_path / "one"))
    two = train(compose_config(*EM_RUN, "trainer=ddp_cpu", output_dir=tmp_path / "two"))
    for key in ("train/bic", "train/aic"):
        assert two[key] == pytest.approx(one[key], rel=1e-8, abs=0), key
