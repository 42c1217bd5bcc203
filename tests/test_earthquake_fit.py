"""CAVI runs end to end: recovery of a known truth, metrics, logging, restarts, pairing."""

import itertools
import json
import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.earthquake import SyntheticEarthquakes
from src.errors import UserError
from src.lightning.cavi import CaviModule
from src.train import train

SEPARATED = (
    "data.means=[[-6,0],[6,0],[0,6],[0,-6]]",
    "data.rates=[2,8,20,40]",
    "data.n_train=2000",
    "data.n_test=4000",
    "data.tau=1.0",
)
METRICS = {
    "train/elbo",
    "train/iterations",
    "test/nll",
    "test/oracle_nll",
    "test/kl_gap",
    "test/ari",
    "test/mu_error",
    "test/lambda_rel_error",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_fit_recovers_well_separated_truth_and_logs_every_sweep(make_cfg, tmp_path):
    cfg = make_cfg("experiment=earthquake_cavi", *SEPARATED, "callbacks=none")
    metrics = train(cfg)
    assert metrics.keys() >= METRICS
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert metrics["test/ari"] >= 0.95
    assert metrics["test/mu_error"] < 0.15 * math.sqrt(1.0)
    assert metrics["test/lambda_rel_error"] < 0.10
    assert 0 <= metrics["test/kl_gap"] < 0.02  # the posterior predictive is near the truth
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    elbo = events.Scalars("train/elbo")
    assert [e.step for e in elbo] == list(range(1, int(metrics["train/iterations"]) + 1))
    values = [e.value for e in elbo]
    assert all(b >= a - 1e-6 * abs(a) for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(metrics["train/elbo"], rel=1e-6)


def test_restarts_run_side_by_side_and_the_best_is_kept():
    import pytorch_lightning as pl

    data = SyntheticEarthquakes(n_components=6, rho=4.0, n_train=600, n_val=50, n_test=50, seed=2)
    module = CaviModule(n_components=6, rho=4.0, n_init=5, max_iter=100, tol=1e-7, seed=1)
    trainer = pl.Trainer(
        max_epochs=100,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    elbos = module.model.elbos
    assert elbos.shape == (5,) and elbos.unique().numel() > 1  # different local optima
    assert module.model.elbo_trace[-1] == pytest.approx(float(elbos.max()) / 600)
    best = int(elbos.argmax())
    assert torch.equal(module.model.fitted.m, module.model.m[best])
    assert 1 < module.iterations < 100  # stopped by convergence


def test_float32_and_csv_catalogue_run(make_cfg):
    cfg = make_cfg(
        "data=earthquake_csv",
        "model=earthquake_cavi",
        "model.n_components=3",
        "model.precision=32",
        "debug=fast",
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["test/nll"]) and "test/oracle_nll" not in metrics


def test_cavi_refuses_data_that_are_not_earthquakes(make_cfg):
    with pytest.raises(UserError, match=r"model=.* with data=.* cannot work"):
        train(make_cfg("model=earthquake_cavi", "debug=fast"))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.n_init=0", "model.n_init"),
        ("model.precision=16", "model.precision"),
        ("model.tau=0", "model.tau"),
        ("data.n_components=0", "data.n_components"),
        ("data.beta=-1", "data.beta"),
        ("data.weights=[0.5,0.5,0.5,-0.5]", "data.weights"),
        ("data.rates=[1,2]", "data.rates"),
        ("data.means=[[0,0]]", "data.means"),
    ],
)
def test_bad_settings_name_the_field(make_cfg, override, key):
    with pytest.raises(UserError, match=rf"^{key}="):
        train(make_cfg("experiment=earthquake_cavi", override, "debug=fast"))


def test_the_module_itself_refuses_other_data():
    import pytorch_lightning as pl

    from src.data.synthetic import SyntheticDataModule
    from src.data.truths import mixture_of_gaussians_1d

    data = SyntheticDataModule(mixture_of_gaussians_1d([0.0], [1.0], [1.0]), 50, 10, 10)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False)
    with pytest.raises(UserError, match=r"with data=SyntheticDataModule cannot work"):
        trainer.fit(CaviModule(), datamodule=data)
