"""Earthquake data: the synthetic recipe, the CSV loader and its one-line errors."""

import numpy as np
import pytest
import torch
from scipy import stats

from src.data.earthquake import (
    CsvEarthquakes,
    GeoCatalogue,
    SyntheticEarthquakes,
    load_catalogue,
)
from src.errors import ConfigError, UserError
from src.utils.constraints import declared, make
from tests.conftest import run_module


def test_synthetic_splits_follow_the_given_truth():
    data = SyntheticEarthquakes(
        n_components=2,
        weights=[0.25, 0.75],
        tau=0.25,
        means=[[-5.0, 0.0], [5.0, 1.0]],
        rates=[3.0, 30.0],
        n_train=20000,
        seed=4,
    )
    events, z = data.splits["train"], data.extras["train"]["labels"]
    x, s = events[:, :2], events[:, 2]
    assert events.dtype == torch.float32 and events.shape == (20000, 3)
    assert torch.equal(s, s.round()) and (s >= 0).all()
    assert (z == 1).float().mean() == pytest.approx(0.75, abs=0.015)
    assert x[z == 1].mean(0).tolist() == pytest.approx([5.0, 1.0], abs=0.02)
    assert x[z == 0].var(0).tolist() == pytest.approx([0.25, 0.25], rel=0.06)
    assert s[z == 1].double().mean() == pytest.approx(30.0, rel=0.02)
    assert data.support == "earthquake" and tuple(data.event_shape) == (3,)
    again = SyntheticEarthquakes(n_components=2, n_train=50, seed=4)
    other = SyntheticEarthquakes(n_components=2, n_train=50, seed=5)
    assert torch.equal(again.truth.means, SyntheticEarthquakes(n_components=2, seed=4).truth.means)
    assert not torch.equal(again.truth.means, other.truth.means)
    # each split its own seed: unchanged by another split's size, unlike a split of equal size
    same = SyntheticEarthquakes(n_components=2, n_train=50, n_val=50, seed=4)
    assert torch.equal(same.splits["train"], again.splits["train"])
    assert not torch.equal(same.splits["train"], same.splits["val"])


def test_truth_log_prob_is_the_closed_form_and_normalised():
    """log Σ_k π_k N(X; μ_k, τI) Poisson(S; λ_k) against scipy at a few events (τ a variance,
    each weight, mean and rate with its own component), then summed over a grid of X and S."""
    data = SyntheticEarthquakes(
        n_components=2,
        weights=[0.3, 0.7],
        tau=0.5,
        means=[[-1.0, 0.0], [1.0, 0.5]],
        rates=[1.0, 4.0],
        seed=1,
    )
    events = np.array([[0.3, -0.2, 2.0], [-1.5, 0.4, 0.0], [1.0, 1.0, 7.0], [-0.4, 0.1, 3.0]])
    x, s = events[:, :2], events[:, 2]
    expected = np.log(
        sum(
            w * stats.multivariate_normal(m, 0.5 * np.eye(2)).pdf(x) * stats.poisson(r).pmf(s)
            for w, m, r in [(0.3, (-1.0, 0.0), 1.0), (0.7, (1.0, 0.5), 4.0)]
        )
    )
    torch.testing.assert_close(
        data.truth.log_prob(torch.from_numpy(events)), torch.from_numpy(expected)
    )
    grid = torch.linspace(-7, 7, 201, dtype=torch.float64)
    xy = torch.cartesian_prod(grid, grid).repeat(30, 1)
    counts = torch.arange(30).repeat_interleave(len(grid) ** 2)
    events = torch.cat([xy, counts[:, None].double()], 1)
    total = data.truth.log_prob(events).exp().sum() * (grid[1] - grid[0]) ** 2
    assert float(total) == pytest.approx(1.0, abs=1e-3)


def test_the_shipped_example_loads():
    x, s, _ = load_catalogue("data/examples/earthquakes.csv")
    assert x.shape == (300, 2) and (s >= 0).all()
    data = CsvEarthquakes("data/examples/earthquakes.csv", val_fraction=0.1, test_fraction=0.2)
    assert [len(data.splits[k]) for k in ("train", "val", "test")] == [210, 30, 60]
    # every event in exactly one split
    events = torch.cat([data.splits[k] for k in ("train", "val", "test")])
    rows = torch.cat([x, s[:, None].double()], 1).float()
    assert sorted(map(tuple, events.tolist())) == sorted(map(tuple, rows.tolist()))
    assert data.truth is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("x,y,s\n1,2,3\n1,2,-1\n", r"line 3, column 's': -1 is below 0; expected a non-neg"),
        ("x,y,s\n1,2,3\n1,2,3\n1,2,2.5\n", r"line 4, column 's': 2.5 is not a whole number"),
        ("x,y,s\nnan,2,3\n", r"line 2, column 'x': nan is not a finite number"),
        ("x,y,s\n1,abc,3\n", r"line 2, column 'y': 'abc' is not a number"),
        ("x,y,s\n1,2\n", r"line 2: 2 fields"),
        ("a,b,c\n1,2,3\n", r"line 1: no column 'x' in the header; expected .* x, y, s$"),
        ("x,y,s\n", r"a header but no rows"),
    ],
)
def test_bad_csv_rows_are_reported_by_line(tmp_path, rows, message):
    path = tmp_path / "bad.csv"
    path.write_text(rows)
    with pytest.raises(UserError, match=message):
        load_catalogue(path)


def test_missing_csv_and_bad_fractions_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"^path="):
        CsvEarthquakes(str(tmp_path / "none.csv"))
    with pytest.raises(ConfigError, match=r"^test_fraction="):
        make(
            CsvEarthquakes,
            path="data/examples/earthquakes.csv",
            val_fraction=0.5,
            test_fraction=0.5,
        )


@pytest.mark.slow  # a fresh interpreter importing Lightning: several seconds
def test_cli_reports_a_bad_csv_row_in_one_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y,s\n0,0,1\n1,1,2\n2,2,-4\n")
    done = run_module(
        *("src.train", "data=earthquake_csv", f"data.path={path}", "model=earthquake", "fit=cavi"),
        f"paths.log_dir={tmp_path / 'out'}",
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    expected = "-4 is below 0; expected a non-negative integer count"
    assert last == f"error: {path}, line 4, column 's': {expected}"
    assert "Traceback" not in done.stderr


def test_a_count_beyond_int64_is_refused_by_line_and_column(tmp_path):
    """Read as a float, 99999999999999999999 would pass for 1e20 (and int64 would overflow):
    it is refused where it stands; int64's own largest value is read exactly."""
    path = tmp_path / "big.csv"
    path.write_text("x,y,s\n1,2,3\n1,2,99999999999999999999\n")
    with pytest.raises(UserError) as error:
        load_catalogue(path)
    message = str(error.value)
    assert message.startswith(f"{path}, line 3, column 's': 99999999999999999999 is beyond int64")
    assert "expected an integer from" in message and "Overflow" not in message
    path.write_text("x,y,s\n1,2,3\n1,2,9223372036854775807\n1,2,9007199254740993\n")
    assert load_catalogue(path)[1].tolist() == [3, 2**63 - 1, 2**53 + 1]


def test_a_latitude_outside_the_globe_is_refused_by_line_and_column(tmp_path):
    path = tmp_path / "geo.csv"
    for lat in ("95", "-90.5", "inf"):
        path.write_text(f"lat,long,stations\n-20,180,12\n-21,181,30\n{lat},180,3\n-19,179,5\n")
        with pytest.raises(UserError, match=rf"^{path}, line 4, column 'lat': {lat} is "):
            GeoCatalogue(str(path))
    path.write_text("lat,long,stations\n-90,180,12\n90,181,30\n0,-180,3\n0,179,5\n")
    assert len(GeoCatalogue(str(path), val_fraction=0.25, test_fraction=0.25).train_x) == 2


def test_a_column_setting_the_header_lacks_names_the_setting_and_the_header(tmp_path):
    for key in ("lat_column", "lon_column", "count_column"):
        with pytest.raises(ConfigError) as error:
            GeoCatalogue("data/fiji_quakes.csv", **{key: "nowhere"})
        message = str(error.value)
        assert message.startswith(f"{key}='nowhere' is invalid: expected a column name")
        assert "header: lat, long, depth, mag, stations" in message
    # a 0-based index names a column too (lat is column 0); two settings on one column: refused
    data = GeoCatalogue("data/fiji_quakes.csv", lat_column=0, lon_column=1, count_column=4)
    assert data.origin == GeoCatalogue("data/fiji_quakes.csv").origin
    with pytest.raises(ConfigError, match=r"^count_column='LAT' is invalid: .*lat_column's"):
        GeoCatalogue("data/fiji_quakes.csv", count_column="LAT")


HOSTILE = [None, "abc", True, -1, 0, 0.5, 1.5, float("nan"), [], [1.0], [[1.0]], [0.9, 0.9]]
NEEDS = {GeoCatalogue: {"path": "data/fiji_quakes.csv"}, CsvEarthquakes: {"path": "x.csv"}}


@pytest.mark.parametrize(
    ("target", "key"),
    [(t, k) for t in (SyntheticEarthquakes, CsvEarthquakes, GeoCatalogue) for k in declared(t)],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_every_declared_setting_refuses_a_hostile_value_by_name(target, key):
    """Walk the declaration: for each setting, a value its constraint refuses is a ConfigError
    naming it, from `make` (Python) and from the run assembly (the config path `data.<key>`),
    before anything is read or drawn."""
    from omegaconf import OmegaConf

    from src.utils.instantiate import build

    constraint = declared(target)[key]
    bad = next(v for v in HOSTILE if not constraint.accepts(v))
    with pytest.raises(ConfigError, match=rf"^{key}="):
        make(target, **NEEDS.get(target, {}), **{key: bad})
    node = {"_target_": f"{target.__module__}.{target.__name__}", **NEEDS.get(target, {})}
    with pytest.raises(ConfigError) as error:
        build(OmegaConf.create({**node, key: bad}), "data")
    assert str(error.value).startswith(f"data.{key}=")
    assert str(error.value).endswith(f" is invalid: expected {constraint.describe()}")


@pytest.mark.parametrize(
    ("target", "settings", "message"),
    [
        (SyntheticEarthquakes, {"n_components": 2, "means": [[0, 0]]}, r"^means=.* a list of 2 "),
        (SyntheticEarthquakes, {"n_components": 3, "rates": [1.0, 2.0]}, r"^rates=.* list of 3 "),
        (SyntheticEarthquakes, {"n_components": 3, "weights": [0.5, 0.5]}, r"^weights="),
        (SyntheticEarthquakes, {"weights": [0.5, 0.5, 0.0, 0.0]}, r"^weights=.* weights > 0"),
        (CsvEarthquakes, {"val_fraction": 0.6, "test_fraction": 0.4}, r"^test_fraction="),
        (GeoCatalogue, {"val_fraction": 0.3, "test_fraction": 0.7}, r"^test_fraction="),
        (GeoCatalogue, {"origin": [90.0, 0.0]}, r"^origin=\[90.0, 0.0\] is invalid: .*lat₀ < 90"),
    ],
)
def test_rules_across_settings_name_the_setting(target, settings, message):
    with pytest.raises(ConfigError, match=message):
        make(target, **NEEDS.get(target, {}), **settings)


def test_a_tsv_catalogue_reads_through_the_same_reader(tmp_path):
    path = tmp_path / "events.tsv"
    path.write_text("X\tY\tS\tnote\n0.5\t1\t2\ta\n1.5\t2\t3.0\tb\n2.5\t3\t0\tc\n")
    x, s, _ = load_catalogue(path)
    assert x.dtype == torch.float64 and x.tolist() == [[0.5, 1.0], [1.5, 2.0], [2.5, 3.0]]
    assert s.dtype == torch.long and s.tolist() == [2, 3, 0]
