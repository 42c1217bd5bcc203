"""Earthquake data: the synthetic recipe, the CSV loader and its one-line errors."""

import numpy as np
import pytest
import torch
from scipy import stats

from src.data.earthquake import CsvEarthquakes, SyntheticEarthquakes, load_catalogue
from src.errors import ConfigError, UserError
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
    x, s = load_catalogue("data/examples/earthquakes.csv")
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
        ("x,y,s\n1,2,3\n1,2,-1\n", r"line 3: s='-1' is invalid"),
        ("x,y,s\n1,2,3\n1,2,3\n1,2,2.5\n", r"line 4: s='2.5' is invalid"),
        ("x,y,s\nnan,2,3\n", r"line 2: x='nan' is invalid"),
        ("x,y,s\n1,abc,3\n", r"line 2: y='abc' is invalid"),
        ("x,y,s\n1,2\n", r"line 2: 2 fields"),
        ("a,b,c\n1,2,3\n", r"line 1: header"),
        ("x,y,s\n", r"no events"),
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
        CsvEarthquakes("data/examples/earthquakes.csv", val_fraction=0.5, test_fraction=0.5)


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
    assert (
        last == f"error: {path}, line 4: s='-4' is invalid: expected a non-negative integer count"
    )
    assert "Traceback" not in done.stderr
