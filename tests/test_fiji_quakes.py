"""The Fiji catalogue (data=fiji_quakes): the shipped file, the geographic loader and its
projection, the learned π and τ in a real fit, the figures and the experiment."""

import itertools
import math

import pytest
import torch

from src.data.earthquake import (
    EARTH_RADIUS_KM,
    GeoCatalogue,
    catalogue_centre,
    load_catalogue,
    project,
)
from src.errors import ConfigError, UserError
from tests.conftest import bare_trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_shipped_catalogue_is_r_quakes():
    lat_lon, stations, _ = load_catalogue("data/fiji_quakes.csv", ("lat", "long", "stations"))
    assert lat_lon.shape == (1000, 2) and stations.shape == (1000,)
    # R: summary(quakes) — the means and ranges of lat, long and stations
    assert lat_lon.mean(0).tolist() == pytest.approx([-20.64275, 179.46202], abs=1e-5)
    assert float(lat_lon[:, 0].min()) == -38.59 and float(lat_lon[:, 1].max()) == 188.13
    assert int(stations.min()) == 10 and int(stations.max()) == 132
    assert float(stations.double().mean()) == pytest.approx(33.418)


def test_splits_are_seeded_in_km_about_the_stated_origin():
    data = GeoCatalogue("data/fiji_quakes.csv", test_fraction=0.2, seed=3)
    assert [len(data.splits[k]) for k in ("train", "val", "test")] == [700, 100, 200]
    assert data.truth is None and data.support == "earthquake"
    assert data.origin == pytest.approx((-20.64275, 179.4752), abs=1e-4)
    again = GeoCatalogue("data/fiji_quakes.csv", test_fraction=0.2, seed=3)
    other = GeoCatalogue("data/fiji_quakes.csv", test_fraction=0.2, seed=4)
    assert torch.equal(data.splits["test"], again.splits["test"])
    assert not torch.equal(data.splits["test"], other.splits["test"])
    # every event once, the strengths the stations column
    everything = torch.cat([data.splits[k] for k in ("train", "val", "test")])
    assert sorted(everything[:, 2].tolist()) == sorted(
        load_catalogue("data/fiji_quakes.csv", ("lat", "long", "stations"))[1].tolist()
    )
    # in km: the catalogue spans about 2300 km east–west and 3100 km north–south
    extent = everything[:, :2].amax(0) - everything[:, :2].amin(0)
    assert extent.tolist() == pytest.approx([2337, 3099], rel=0.01)


def test_projection_by_hand_and_across_the_antimeridian():
    origin = (-20.0, 179.0)
    points = torch.tensor(
        [[-20.0, 179.0], [-19.0, 179.0], [-20.0, 181.0], [-20.0, -179.0], [-19.0, 181.0]]
    )
    xy = project(points.double(), origin)
    degree = EARTH_RADIUS_KM * math.pi / 180
    expected = [
        [0, 0],
        [0, degree],
        [2 * degree * math.cos(math.radians(-20)), 0],
        [2 * degree * math.cos(math.radians(-20)), 0],  # −179° is 181°
        [2 * degree * math.cos(math.radians(-20)), degree],  # cos of lat₀, not of the point's
    ]
    torch.testing.assert_close(xy, torch.tensor(expected, dtype=torch.float64))
    # a catalogue across the antimeridian is centred on it, not on 0°
    lat0, lon0 = catalogue_centre(torch.tensor([[10.0, 179.0], [20.0, -179.0]]))
    assert lat0 == pytest.approx(15.0) and abs(lon0) == pytest.approx(180.0)


def test_user_catalogue_columns_and_bad_rows_by_line(tmp_path):
    from src.utils.constraints import make

    path = tmp_path / "usgs.csv"
    path.write_text("time,latitude,longitude,nst\nt,-20,180,12\nt,-21,181,30\nt,-22,182,7\n")
    data = GeoCatalogue(
        str(path),
        lat_column="Latitude",
        lon_column="longitude",
        count_column="nst",
        origin=[-21, 181],
        val_fraction=0.34,
        test_fraction=0.34,
    )
    assert data.origin == (-21.0, 181.0)
    assert sorted(torch.cat(list(data.splits.values()))[:, 2].tolist()) == [7, 12, 30]
    bad = {
        "latitude,longitude,nst\n-20,180,12\n95,180,3\n": r"line 3, column 'latitude': 95 is ",
        "latitude,longitude,nst\n-20,180,12\n-20,x,3\n": r"line 3, column 'longitude': 'x' is ",
        "latitude,longitude,nst\n-20,180,1.5\n": r"line 2, column 'nst': 1.5 is not a whole",
        "latitude,longitude,nst\n-20,180\n": r"line 2: 2 fields",
        "lat,lon,n\n-20,180,1\n": r"^lat_column='latitude' is invalid: .*header: lat, lon, n",
    }
    for text, message in bad.items():
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            GeoCatalogue(str(path), "latitude", "longitude", "nst")
    with pytest.raises(ConfigError, match=r"^origin="):
        make(GeoCatalogue, path="data/fiji_quakes.csv", origin=[95.0, 0.0])
    with pytest.raises(ConfigError, match=r"^count_column="):
        GeoCatalogue("data/fiji_quakes.csv", count_column="lat")


def _fit(**settings):

    from src.fits.cavi import CAVIFit
    from src.models.earthquake import EarthquakeMixture

    data = GeoCatalogue("data/fiji_quakes.csv", test_fraction=0.2, seed=0)
    model = EarthquakeMixture(n_components=3, tau=1e4, nu=(0.0, 0.0), rho=1e6, alpha=2.0, beta=0.05)
    fit = CAVIFit(model, n_init=2, max_iter=200, tol=1e-8, **settings)
    fit.prepare(data.train_x, resuming=False)
    trainer = bare_trainer(400, limit_val_batches=0)
    trainer.fit(fit, datamodule=data)
    return fit, data


def test_learned_pi_and_tau_in_a_real_fit():
    from src.fits import cavi_updates as cavi
    from src.models.earthquake import features

    fit, data = _fit(learn_weights=True, learn_tau=True)
    model = fit.model
    for trace in fit.state["traces"]:  # the ELBO never decreases, π and τ steps included
        assert all(b >= a - 1e-9 * abs(a) for a, b in itertools.pairwise(trace))
    pi = model.log_pi.exp()
    assert float(pi.sum()) == pytest.approx(1.0) and (pi - 1 / 3).abs().max() > 0.02
    tau = float(model.tau)
    assert 1e4 < tau < 1e6
    # the exact ELBO given the kept q is stationary in π and τ (its unique maximum there); the
    # fixed point below alone would hold for an update off by a factor too
    x, counts = data.train_x[:, :2].double(), data.train_x[:, 2].double()
    q, prior = model.posterior, model.prior
    log_r = cavi.update_assignments(features(x, counts), q, prior)
    log_tau, logits = prior.tau.log().requires_grad_(), prior.log_pi.clone().requires_grad_()
    moved = prior._replace(tau=log_tau.exp(), log_pi=logits.log_softmax(-1))
    slopes = torch.autograd.grad(cavi.elbo(x, counts, log_r, q, moved), [log_tau, logits])
    assert all(float(g.abs().max()) < 0.1 for g in slopes)  # nats; 0.01 at convergence
    # τ is at its closed form for the kept posterior: one more sweep leaves it (converged)
    stats = fit.batch_statistics(data.train_x.double())
    stats["n"] = torch.tensor(float(len(data.train_x)), dtype=torch.float64)
    fit.update(stats)
    assert float(model.tau) == pytest.approx(tau, rel=1e-4)
    # each restart started from the configured π and τ
    assert float(fit._configured.tau) == 1e4
    # and the learned hyper-parameters beat the configured ones on the ELBO
    plain, _ = _fit()
    assert fit.state["best_objective"] > plain.state["best_objective"] + 0.1


def test_bad_learn_settings_name_the_field():
    from src.fits.cavi import CAVIFit
    from src.models.earthquake import EarthquakeMixture
    from src.utils.constraints import make

    with pytest.raises(ConfigError, match=r"^learn_tau="):
        make(CAVIFit, model=EarthquakeMixture(n_components=2), learn_tau="yes")


def test_map_and_rate_figures_state_units_and_score():
    from src.plots import earthquake as plots

    fit, data = _fit(learn_weights=True, learn_tau=True)
    figures = plots.samples(fit.model, data)
    assert set(figures) == {"map", "rates", "rate_intervals"}
    ax = figures["map"].axes[0]
    assert "lon₀ = 179.475°" in ax.get_xlabel() and "lat₀ = -20.643°" in ax.get_ylabel()
    assert "K = 3" in ax.get_title() and "test NLL" in ax.get_title()
    assert "test NLL" in figures["rate_intervals"].axes[0].get_title()


def test_experiment_configs_compose(make_cfg):
    cfg = make_cfg("experiment=fiji_quakes")
    assert cfg.fit.learn_weights and cfg.fit.learn_tau
    assert cfg.data._target_.endswith("GeoCatalogue")
    sweep = make_cfg("experiment=fiji_quakes_k")
    assert sweep.hydra.sweeper.params["model.n_components"] == "range(1,11)"
    default = make_cfg("model=earthquake", "fit=cavi", "data=earthquake")
    assert not default.fit.learn_weights and not default.fit.learn_tau  # off by default
