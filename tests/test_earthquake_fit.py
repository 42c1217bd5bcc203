"""CAVI runs end to end: recovery of a known truth, metrics, logging, restarts, pairing."""

import itertools
import json
import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.data.earthquake import SyntheticEarthquakes
from src.errors import UserError
from src.fits.cavi import CAVIFit
from src.models.earthquake import EarthquakeMixture
from src.train import train
from tests.conftest import bare_trainer

# Means drawn close together (prior variance 16, not 100): the initial posterior is far from the
# truth (KL gap 0.15, μ error 0.6), so the bounds below hold only after CAVI's sweeps. With four
# hand-placed means 6 apart a CAVI that never updated q met every bound.
DRAWN_CLOSE = ("data.rho=16", "data.n_train=2000", "data.n_test=4000")
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


def test_fit_recovers_the_truth_and_logs_every_sweep(make_cfg, tmp_path):
    """One restart, so the logged ELBO is one restart's: it never decreases from sweep to sweep."""
    cfg = make_cfg("experiment=earthquake_cavi", *DRAWN_CLOSE, "fit.n_init=1", "callbacks=none")
    metrics = train(cfg)
    assert metrics.keys() >= METRICS
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert metrics["test/ari"] >= 0.95
    assert metrics["test/mu_error"] < 0.15 * math.sqrt(1.0)
    assert metrics["test/lambda_rel_error"] < 0.10
    assert 0 <= metrics["test/kl_gap"] < 0.01  # the posterior predictive is near the truth
    events = EventAccumulator(str(tmp_path / "tensorboard" / "earthquake-earthquake-s0"))
    events.Reload()
    elbo = events.Scalars("train/elbo")
    assert [e.step for e in elbo] == list(range(1, int(metrics["train/iterations"]) + 1))
    values = [e.value for e in elbo]
    assert len(values) > 2 and values[-1] > values[0]  # sweeps that move q, then convergence
    assert all(b >= a - 1e-6 * abs(a) for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(metrics["train/elbo"], rel=1e-6)


def test_restarts_run_in_turn_and_the_best_is_kept():

    data = SyntheticEarthquakes(n_components=6, rho=4.0, n_train=600, n_val=50, n_test=50, seed=2)
    fit = CAVIFit(EarthquakeMixture(n_components=6, rho=4.0), n_init=5, max_iter=100, tol=1e-7)
    fit.prepare(data.train_x, resuming=False)
    trainer = bare_trainer(500, limit_val_batches=0)
    trainer.fit(fit, datamodule=data)
    finals = [trace[-1] for trace in fit.state["traces"]]
    assert len(finals) == 5 and len(set(finals)) > 1  # different local optima
    # the kept restart is the first whose ELBO is within tol (relative) of the highest
    kept = next(f for f in finals if abs(f - max(finals)) < 1e-7 * abs(max(finals)))
    assert fit.state["best_objective"] == kept == fit.best_trace()[-1]
    assert trainer.global_step == sum(len(t) for t in fit.state["traces"])
    assert all(1 < len(t) < 100 for t in fit.state["traces"])  # each stopped by convergence
    # the model holds the kept restart's posterior: one more sweep from it starts at the best
    # ELBO and, converged, moves less than tol relative
    with torch.no_grad():
        stats = fit.batch_statistics(data.train_x.double())
        stats["n"] = torch.tensor(float(len(data.train_x)), dtype=torch.float64)
        again = float(fit.update(stats))
    assert max(finals) <= again <= max(finals) + 1e-7 * abs(max(finals))


def test_float32_and_csv_catalogue_run(make_cfg, monkeypatch):
    """fit.precision=32 reaches the arithmetic: every batch's statistics are computed in float32
    (a finite NLL alone holds just as well in float64)."""
    seen = []
    statistics = CAVIFit.batch_statistics

    def spy(self, events, weights=None):
        seen.append(events.dtype)
        return statistics(self, events, weights)

    monkeypatch.setattr(CAVIFit, "batch_statistics", spy)
    cfg = make_cfg(
        "data=earthquake_csv",
        "model=earthquake",
        "fit=cavi",
        "model.n_components=3",
        "fit.precision=32",
        "debug=fast",
    )
    metrics = train(cfg)
    assert math.isfinite(metrics["test/nll"]) and "test/oracle_nll" not in metrics
    assert seen and set(seen) == {torch.float32}


def test_cavi_refuses_data_that_are_not_earthquakes(make_cfg):
    with pytest.raises(
        UserError,
        match=r"^model=earthquake with data=mog1d cannot work: the model is for earthquake data, "
        r"the data are continuous",
    ):  # the support check, not the shapes: continuous data of three columns pass those
        train(make_cfg("model=earthquake", "fit=cavi", "debug=fast"))


def test_cavi_refuses_another_model(make_cfg):
    with pytest.raises(UserError, match=r"^model=gmm with fit=cavi cannot work: CAVI fits"):
        train(make_cfg("model=gmm", "fit=cavi", "data=mog2d", "debug=fast"))


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("fit.n_init=0", "fit.n_init"),
        ("fit.precision=16", "fit.precision"),
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
