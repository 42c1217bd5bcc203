"""Earthquake catalogues: events (location X ∈ ℝ², strength S ∈ ℕ), synthetic or from a CSV.

Each split is a float tensor of rows (x, y, S), sharded and batched like every other data set
(the CAVI fit sums its sufficient statistics over batches and ranks). Synthetic catalogues keep
their truth: the true cluster of every event (`labels`) and the truth's log-density of each test
event (`oracle_log_prob`) travel with the batches by name.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical, Normal, Poisson

from src.data.table_files import read_table
from src.data.tensor_datamodule import SPLITS, TensorDataModule
from src.data.weights import checked, refuse_empty
from src.errors import ConfigError, UserError
from src.models.earthquake import POSITIVE, PRIOR, check_prior, make_prior
from src.utils.constraints import (
    FRACTION,
    AnyOf,
    Constraint,
    Integer,
    ListOf,
    Nullable,
    Real,
    Text,
    check_fractions,
)

ROOT = Path(__file__).resolve().parents[2]
COUNT = "a non-negative integer count"  # what a catalogue's strength column holds
LATITUDE = "a latitude in [-90, 90] degrees"
FILE = "an existing CSV file (or .tsv, .npy, .npz, .parquet)"
COLUMN = AnyOf(Text(nonempty=True), Integer(low=0))  # a header's name, or a 0-based index
SPLIT: dict[str, Constraint] = {"val_fraction": FRACTION, "test_fraction": FRACTION}
WEIGHTS: dict[str, Constraint] = {"weight_column": Nullable(COLUMN)}  # null: unweighted


class EarthquakeTruth:
    """The generating mixture with fixed μ [K, 2] and λ [K]: Z ~ Cat(π), X | Z ~ N(μ_Z, τI),
    S | Z ~ Poisson(λ_Z). Events are rows (x, y, S), as the earthquake model scores them."""

    def __init__(self, log_pi: Tensor, means: Tensor, tau: float, rates: Tensor) -> None:
        self.log_pi, self.means, self.tau, self.rates = log_pi, means, tau, rates

    def sample(self, n: int) -> tuple[Tensor, Tensor]:
        """(events [n, 3] float64, true clusters [n])."""
        z = Categorical(logits=self.log_pi).sample((n,))
        x = self.means[z] + math.sqrt(self.tau) * torch.randn(n, 2, dtype=self.means.dtype)
        counts = Poisson(self.rates[z]).sample()
        return torch.cat([x, counts[:, None]], dim=1), z

    def log_prob(self, events: Tensor) -> Tensor:
        """log Σ_k π_k N(X; μ_k, τI) Poisson(S; λ_k) [N]."""
        events = events.to(self.means.dtype)
        normal = Normal(self.means, math.sqrt(self.tau), validate_args=False)
        loc = normal.log_prob(events[:, None, :2]).sum(-1)
        count = Poisson(self.rates, validate_args=False).log_prob(events[:, 2:])
        return (loc + count + self.log_pi).logsumexp(-1)


class EarthquakeDataModule(TensorDataModule):
    """Events (x, y, S) as float rows [N, 3], sharded and batched like every data set; the
    support "earthquake" pairs them with the earthquake model only."""

    support = "earthquake"

    def __init__(
        self,
        splits: dict[str, Tensor],
        batch_size: int | None,
        seed: int,
        weights: dict[str, Tensor] | None = None,
        weight_column: str | int | None = None,
    ) -> None:
        """`weights`: each split's event weights (from the catalogue's `weight_column`)."""
        super().__init__(batch_size, seed)
        self.splits = {split: events.float() for split, events in splits.items()}
        if weights is not None:
            self.weight_column = str(weight_column)
            for split in SPLITS:
                self.extras[split]["weight"] = weights[split]


class SyntheticEarthquakes(EarthquakeDataModule):
    """μ_k ~ N(ν, ρI) and λ_k ~ Gamma(α, β) (unless `means` / `rates` are given), then events
    Z ~ Cat(π), X | Z ~ N(μ_Z, τI), S | Z ~ Poisson(λ_Z); each split from its own seed."""

    constraints: ClassVar[dict[str, Constraint]] = {
        **PRIOR,  # the prior's settings, as the model declares them
        "means": Nullable(ListOf(ListOf(Real(), length=2))),
        "rates": Nullable(ListOf(POSITIVE)),
        "n_train": Integer(low=1),
        "n_val": Integer(low=1),
        "n_test": Integer(low=1),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """One weight, one [x, y] mean and one rate per component."""
        check_prior(settings)
        k = settings["n_components"]
        for key, each in (("means", "[x, y] pairs"), ("rates", "finite numbers > 0")):
            given = settings.get(key)
            if given is not None and len(given) != k:
                raise ConfigError(key, list(given), f"a list of {k} {each} (one per component)")

    def __init__(
        self,
        n_components: int = 4,
        weights: list[float] | None = None,
        tau: float = 1.0,
        nu: tuple[float, float] = (0.0, 0.0),
        rho: float = 100.0,
        alpha: float = 4.0,
        beta: float = 0.4,
        means: Sequence[Sequence[float]] | None = None,
        rates: list[float] | None = None,
        n_train: int = 2000,
        n_val: int = 500,
        n_test: int = 5000,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        prior = make_prior(n_components, weights, tau, nu, rho, alpha, beta)
        self.weights, self.tau = prior.log_pi.exp().tolist(), prior.tau
        sizes = (n_train, n_val, n_test)
        seeds = np.random.SeedSequence(seed).generate_state(len(SPLITS) + 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seeds[0]))
            mu = prior.nu + math.sqrt(prior.rho) * torch.randn(n_components, 2, dtype=torch.float64)
            lam = torch.distributions.Gamma(prior.alpha, prior.beta).sample((n_components,))
        if means is not None:
            mu = torch.tensor([[float(v) for v in row] for row in means], dtype=torch.float64)
        if rates is not None:
            lam = torch.tensor([float(r) for r in rates], dtype=torch.float64)
        truth = EarthquakeTruth(prior.log_pi, mu, prior.tau, lam.double())
        splits, labels = {}, {}
        for split, n, split_seed in zip(SPLITS, sizes, seeds[1:]):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(split_seed))
                splits[split], labels[split] = truth.sample(n)
        super().__init__(splits, batch_size, seed)
        self.truth = truth
        for split in SPLITS:
            self.extras[split]["labels"] = labels[split]
        self.attach_truth_log_prob(truth.log_prob)


class CsvEarthquakes(EarthquakeDataModule):
    """A user's catalogue: a CSV file with header columns `x, y, s` (s a non-negative integer
    count), split at random into train/val/test; no truth, so no oracle. Read by the project's
    table reader (`src.data.table_files`), so a TSV or Parquet file with those columns works
    too, and a bad cell is one line naming its file line and column."""

    constraints: ClassVar[dict[str, Constraint]] = {**SPLIT, **WEIGHTS}

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        check_fractions(settings)

    def __init__(
        self,
        path: str,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int | None = None,
        seed: int = 0,
        weight_column: str | int | None = None,
    ) -> None:
        """`weight_column`: a column of event weights (≥ 0), a name or 0-based index."""
        x, s, w = load_catalogue(path, weight_column=weight_column)
        splits, weights = _split(path, x, s, w, weight_column, val_fraction, test_fraction, seed)
        super().__init__(splits, batch_size, seed, weights, weight_column)


class GeoCatalogue(EarthquakeDataModule):
    """A catalogue in geographic coordinates (e.g. R's `quakes`, a USGS or ISC export): a CSV
    file with a latitude, a longitude and a count column (names are settings: a name of the
    header, matched exactly, else without case, or a 0-based index), projected to kilometres
    about `origin` and split at random into train/val/test; no truth.

    The projection is local equirectangular: x = R·Δlon·cos(lat₀), y = R·Δlat (radians,
    R = 6371 km), Δlon wrapped into [−180°, 180°) so a catalogue across the antimeridian stays
    whole. `origin` = [lat₀, lon₀] in degrees, or null for the catalogue's centre (mean
    latitude, circular mean longitude); the one used is `self.origin`."""

    constraints: ClassVar[dict[str, Constraint]] = {
        "lat_column": COLUMN,
        "lon_column": COLUMN,
        "count_column": COLUMN,
        "origin": Nullable(ListOf(Real(), length=2)),
        **SPLIT,
        **WEIGHTS,
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """lat₀ strictly inside (−90, 90): at a pole cos(lat₀) = 0 folds every x onto 0."""
        check_fractions(settings)
        origin = settings.get("origin")
        if origin is not None and not -90 < origin[0] < 90:
            raise ConfigError("origin", list(origin), "[lat₀, lon₀] with −90 < lat₀ < 90")

    def __init__(
        self,
        path: str,
        lat_column: str | int = "lat",
        lon_column: str | int = "long",
        count_column: str | int = "stations",
        origin: Sequence[float] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int | None = None,
        seed: int = 0,
        weight_column: str | int | None = None,
    ) -> None:
        """`weight_column`: a column of event weights (≥ 0), a name or 0-based index."""
        columns = {
            "lat_column": lat_column,
            "lon_column": lon_column,
            "count_column": count_column,
        }
        if weight_column is not None:
            columns["weight_column"] = weight_column
        lat_lon, s, w = read_catalogue(_resolve(path), columns, latitude=True)
        if origin is not None:
            self.origin = (float(origin[0]), float(origin[1]))
        else:
            self.origin = catalogue_centre(lat_lon)
        x = project(lat_lon, self.origin)
        splits, weights = _split(path, x, s, w, weight_column, val_fraction, test_fraction, seed)
        super().__init__(splits, batch_size, seed, weights, weight_column)
        self.columns = (lat_column, lon_column, count_column)


EARTH_RADIUS_KM = 6371.0


def catalogue_centre(lat_lon: Tensor) -> tuple[float, float]:
    """(mean latitude, circular mean longitude) in degrees, longitude in [−180, 180)."""
    lat, lon = lat_lon.double().deg2rad().unbind(-1)
    lon0 = math.degrees(math.atan2(float(lon.sin().mean()), float(lon.cos().mean())))
    return math.degrees(float(lat.mean())), (lon0 + 180.0) % 360.0 - 180.0


def project(lat_lon: Tensor, origin: tuple[float, float]) -> Tensor:
    """Local equirectangular projection [N, 2] (km): x = R·Δlon·cos(lat₀), y = R·Δlat."""
    lat0, lon0 = origin
    d_lon = torch.remainder(lat_lon[:, 1].double() - lon0 + 180.0, 360.0) - 180.0
    d_lat = lat_lon[:, 0].double() - lat0
    x = EARTH_RADIUS_KM * torch.deg2rad(d_lon) * math.cos(math.radians(lat0))
    return torch.stack([x, EARTH_RADIUS_KM * torch.deg2rad(d_lat)], dim=1)


def _split(
    path: str,
    x: Tensor,
    s: Tensor,
    w: Tensor | None,
    weight_column: str | int | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """Seeded random train/val/test split of the events (x, y, S) and their weights `w` (None:
    unweighted), read from `weight_column`; the fractions are the declared ones (each in (0, 1),
    their sum < 1), checked where the data set is built. A split whose weights are all 0 is
    refused."""
    n_val, n_test = (max(1, round(f * len(x))) for f in (val_fraction, test_fraction))
    if len(x) - n_val - n_test < 1:
        raise UserError(f"{path}: {len(x)} events are too few to split into train/val/test")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    parts = perm.split([len(x) - n_val - n_test, n_val, n_test])
    events = torch.cat([x, s[:, None].double()], dim=1)
    splits = {k: events[i] for k, i in zip(SPLITS, parts)}
    if w is None:
        return splits, None
    weights = {k: w[i] for k, i in zip(SPLITS, parts)}
    for split, split_weights in weights.items():
        refuse_empty(split_weights, split, str(path), str(weight_column))
    return splits, weights


def load_catalogue(
    path: str | Path, names: Sequence[str] = ("x", "y", "s"), weight_column: Any = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(two coordinates [N, 2] float64, counts [N] long, weights [N] float64 or None) from a
    file whose header names the columns `names` (coordinate, coordinate, count; matched
    exactly, else without case, in any order among other columns) and `weight_column`, if
    given. A header without one of them, or a bad cell, raises a `UserError` naming the file
    and its line (and the cell's column)."""
    file = _resolve(path)
    columns = {str(n): n for n in names}
    if weight_column is not None:
        columns["weight_column"] = weight_column
    try:
        return read_catalogue(file, columns, latitude=False)
    except ConfigError as error:
        if error.key not in names:
            raise
        raise UserError(
            f"{file}, line 1: no column {error.value!r} in the header; expected a header "
            f"naming the columns {', '.join(map(str, names))}"
        ) from None


def read_catalogue(
    file: Path, columns: Mapping[str, Any], latitude: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(two coordinates [N, 2] float64, counts [N] long, weights [N] float64 or None) from the
    table file's columns {setting: column} (coordinate, coordinate, count, and a fourth, the
    weights, when given), read by `read_table` as float64 (as
    Python's float() reads the text; counts beyond 2⁵³ exact from it). A column no setting finds
    is a `ConfigError` naming the setting and the header's columns; a bad cell (not a finite
    number, a count below 0, not whole or beyond int64, with `latitude` a first coordinate
    outside [−90, 90]) one `UserError` line naming the file line and column."""
    try:
        table = read_table(file, columns, None, (np.float64,))
    except ConfigError as error:
        if error.key != "key":  # an .npz file of several arrays: the catalogue has no `key`
            raise
        raise UserError(f"{file}: an .npz file of several arrays; expected one array") from None
    lat = table.values[:, 0]
    if latitude:
        table.refuse(~((lat >= -90) & (lat <= 90)), 0, "is outside [-90, 90]", LATITUDE)
    counts = table.counts(2, COUNT)
    weights = checked(table, 3) if len(columns) > 3 else None
    coordinates = np.ascontiguousarray(table.values[:, :2])
    return torch.from_numpy(coordinates), torch.from_numpy(counts), weights


def _resolve(path: Any) -> Path:
    """Relative paths are tried from the working directory, then from the project root."""
    if isinstance(path, (str, Path)) and str(path):
        for candidate in (Path(path), ROOT / path):
            if candidate.is_file():
                return candidate
    raise ConfigError("path", str(path) if isinstance(path, Path) else path, FILE)
