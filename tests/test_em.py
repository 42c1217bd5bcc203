"""EM: monotone log-likelihood, agreement with scikit-learn, the Lightning module's contract."""

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from src.build import build_datamodule
from src.data.truths_2d import gaussian_mixture
from src.errors import ConfigError, UserError
from src.fits.em import EMFit
from src.models.gmm import GaussianMixture
from src.train import train
from tests.conftest import bare_trainer, run_module


def _ring_data(n=3000, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    return gaussian_mixture(n_components=5, radius=3.0, std=0.8).sample((n,))


def _em_fit(gmm: GaussianMixture, x: torch.Tensor, seed: int) -> EMFit:
    """`fit=em` on x at restart 0's start, `gmm.init_from_data(x, generator=...)`
    (x, under INIT_POINTS rows, is its own initialisation subsample and sets the shift)."""
    fit = EMFit(gmm, seed=seed)
    fit.prepare(x, resuming=False)
    return fit


@torch.no_grad()
def _em_update(fit: EMFit, x: torch.Tensor) -> torch.Tensor:
    """One EM update on x as one full batch, as `training_step` runs it: the batch's statistics
    in float64 with its count n, then `update`; returns the mean log-likelihood before it."""
    stats = fit.batch_statistics(x.to(fit.compute_dtype))
    stats = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in stats.items()}
    stats["n"] = torch.tensor(float(len(x)), dtype=torch.float64)
    return fit.update({k: v.to(fit.compute_dtype) for k, v in stats.items()})


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
@pytest.mark.parametrize("init", ["kmeans++", "random_from_data"])
def test_log_likelihood_never_decreases(covariance_type, init):
    x = _ring_data()
    gmm = GaussianMixture(5, 2, covariance_type, init=init).double()
    fit = _em_fit(gmm, x, seed=1)
    lls = torch.stack([_em_update(fit, x) for _ in range(60)])
    assert (lls.diff() >= -1e-12).all()
    assert lls[-1] > lls[0] + 0.01  # it actually moved


def test_em_matches_sklearn_from_the_same_start():
    x = _ring_data(4000, seed=5)
    gmm = GaussianMixture(5, 2, "full", reg_covar=1e-6).double()
    fit = _em_fit(gmm, x, seed=2)
    with torch.no_grad():
        weights, means, cov = gmm.logits.softmax(-1), gmm.loc.clone(), gmm.covariance()
    sk = SkGaussianMixture(
        5,
        covariance_type="full",
        reg_covar=1e-6,
        tol=1e-12,
        max_iter=2000,
        weights_init=weights.numpy(),
        means_init=means.numpy(),
        precisions_init=np.linalg.inv(cov.numpy()),
    ).fit(x.numpy())
    previous = None
    for _ in range(2000):
        ll = float(_em_update(fit, x))
        if previous is not None and abs(ll - previous) < 1e-12:
            break
        previous = ll
    with torch.no_grad():
        ours = float(gmm.log_prob(x).mean())
    assert abs(ours - sk.score(x.numpy())) < 1e-6
    loc = gmm.loc.detach().numpy()
    rows, cols = linear_sum_assignment(((loc[:, None] - sk.means_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(loc[rows], sk.means_[cols], atol=1e-4)
    np.testing.assert_allclose(
        weights.new_tensor(sk.weights_[cols]), gmm.logits.softmax(-1)[rows].detach(), atol=1e-5
    )
    np.testing.assert_allclose(
        gmm.covariance().detach().numpy()[rows], sk.covariances_[cols], atol=1e-4
    )


def _em_cfg(make_cfg, *extra):
    return make_cfg(
        "experiment=gmm_em_mog2d",
        "data.n_train=2000",
        "data.n_val=500",
        "data.n_test=2000",
        "callbacks=none",
        "~logger",
        *extra,
    )


def _mixture_log_prob(x: np.ndarray, weights, means, covariances) -> np.ndarray:
    """log Σ_k π_k N(x; μ_k, Σ_k) by scipy: a density computed without the project's code."""
    return logsumexp(
        [
            np.log(w) + multivariate_normal(m, c).logpdf(x)
            for w, m, c in zip(weights, means, covariances)
        ],
        axis=0,
    )


def test_em_module_reports_the_metrics_of_a_converged_fit(make_cfg, tmp_path):
    """The initialisation alone is within 0.011 of the fit's KL gap on these data, so a quality
    bound cannot tell a fit from none: the saved mixture must be an EM fixed point (one
    scikit-learn EM step from it gains < 1e-6 per point; the first step from the start gains
    ~4e-4), and the reported train and test NLL must be its own, by scipy's density."""
    cfg = make_cfg(
        *("experiment=gmm_em_mog2d", "data.n_train=2000", "data.n_val=500", "data.n_test=2000"),
        *("fit.n_init=2", "fit.max_iter=100", "trainer.max_epochs=500", "~logger"),
        *("callbacks.figures=null", "callbacks.progress_bar=null"),
    )
    metrics = train(cfg)
    assert {"train/nll", "val/nll", "test/nll", "test/oracle_nll", "test/kl_gap"} <= metrics.keys()
    assert metrics["test/kl_gap"] == pytest.approx(
        metrics["test/nll"] - metrics["test/oracle_nll"], abs=1e-12
    )
    state = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    gmm = GaussianMixture(8, 2).double()
    gmm.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    with torch.no_grad():
        mixture = gmm.logits.softmax(-1).numpy(), gmm.loc.numpy(), gmm.covariance().numpy()
    data = build_datamodule(cfg)
    train_x, test_x = (data.splits[s].double().numpy() for s in ("train", "test"))
    assert metrics["test/nll"] == pytest.approx(
        -_mixture_log_prob(test_x, *mixture).mean(), abs=1e-9
    )
    fitted = _mixture_log_prob(train_x, *mixture).mean()
    # train/nll is the log-likelihood before the kept restart's last step: at most tol below
    assert -1e-12 <= fitted + metrics["train/nll"] < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one step is all it is asked for
        step = SkGaussianMixture(
            8,
            reg_covar=gmm.reg_covar,
            max_iter=1,
            weights_init=mixture[0],
            means_init=mixture[1],
            precisions_init=np.linalg.inv(mixture[2]),
        ).fit(train_x)
    assert 0 <= step.score(train_x) - fitted < 1e-6


def test_em_refuses_a_model_that_is_not_a_mixture(make_cfg):
    with pytest.raises(UserError, match=r"^model=realnvp with fit=em cannot work: EM fits"):
        train(make_cfg("model=realnvp", "fit=em", "data=mog2d", "debug=fast"))


def test_em_module_refuses_more_components_than_points(make_cfg):
    with pytest.raises(ConfigError, match=r"model\.n_components=8 .*\(5\)"):
        train(_em_cfg(make_cfg, "data.n_train=5", "debug=fast"))


@pytest.mark.slow  # a fresh interpreter importing Lightning
def test_cli_prints_one_line_and_fails(tmp_path):
    result = run_module(
        *("src.train", "experiment=gmm_em_mog2d", "model.reg_covar=-1", "debug=fast"),
        f"paths.log_dir={tmp_path}",
    )
    assert result.returncode == 2  # a user error (a crash exits 1)
    assert result.stderr.strip().splitlines()[-1].startswith("error: model.reg_covar=-1")


@pytest.mark.slow  # the full experiment
def test_em_reaches_the_quality_target(make_cfg):
    metrics = train(make_cfg("experiment=gmm_em_mog2d", "callbacks=none", "~logger"))
    assert metrics["test/kl_gap"] <= 0.01


def test_chunked_statistics_equal_one_pass(monkeypatch):
    from src.models import gmm_ops

    x = _ring_data(3000, seed=7)
    results = []
    for chunk in (10**6, 700):  # one block, then five blocks (the last one short)
        monkeypatch.setattr(gmm_ops, "CHUNK", chunk)
        gmm = GaussianMixture(5, 2).double()
        fit = _em_fit(gmm, x, seed=3)
        lls = torch.stack([_em_update(fit, x) for _ in range(3)])
        results.append((lls, gmm.state_dict()))
    torch.testing.assert_close(results[0][0], results[1][0])
    for key, value in results[0][1].items():
        torch.testing.assert_close(results[1][1][key], value)


def test_em_stops_after_n_init_converged_restarts():

    from src.data.synthetic import SyntheticDataModule
    from src.fits.em import EMFit

    data = SyntheticDataModule(gaussian_mixture(), 2000, 200, 200, None, 0, dim=2)
    fit = EMFit(GaussianMixture(8, 2), tol=1e-4, max_iter=100, n_init=2)
    fit.prepare(data.train_x, resuming=False)
    trainer = bare_trainer(1000, num_sanity_val_steps=0)
    trainer.fit(fit, datamodule=data)
    assert fit.state["restart"] == 2 and trainer.current_epoch < 200
    assert trainer.global_step == sum(len(t) for t in fit.state["traces"])
    assert trainer.callback_metrics["train/nll"] < 3.7  # the oracle's NLL is about 3.52
