"""Earthquake catalogues: events (location X ∈ ℝ², strength S ∈ ℕ), synthetic or from a CSV.

Each split is a float tensor of rows (x, y, S), sharded and batched like every other data set
(the CAVI fit sums its sufficient statistics over batches and ranks). Synthetic catalogues keep
their truth: the true cluster of every event (`labels`) and the truth's log-density of each test
event (`oracle_log_prob`) travel with the batches by name.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical, Normal, Poisson

from src.data.tensor_datamodule import SPLITS, TensorDataModule
from src.errors import ConfigError, UserError
from src.models.earthquake import make_prior
from src.utils.checks import finite_list, positive, positive_int, positive_list

ROOT = Path(__file__).resolve().parents[2]


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

    def __init__(self, splits: dict[str, Tensor], batch_size: int | None, seed: int) -> None:
        super().__init__(batch_size, seed)
        self.splits = {split: events.float() for split, events in splits.items()}


class SyntheticEarthquakes(EarthquakeDataModule):
    """μ_k ~ N(ν, ρI) and λ_k ~ Gamma(α, β) (unless `means` / `rates` are given), then events
    Z ~ Cat(π), X | Z ~ N(μ_Z, τI), S | Z ~ Poisson(λ_Z); each split from its own seed."""

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
        sizes = [positive_int(f"n_{s}", n) for s, n in zip(SPLITS, (n_train, n_val, n_test))]
        seeds = np.random.SeedSequence(seed).generate_state(len(SPLITS) + 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seeds[0]))
            mu = prior.nu + math.sqrt(prior.rho) * torch.randn(n_components, 2, dtype=torch.float64)
            lam = torch.distributions.Gamma(prior.alpha, prior.beta).sample((n_components,))
        if means is not None:
            mu = _means(means, n_components)
        if rates is not None:
            lam = torch.tensor(positive_list("rates", rates, n_components), dtype=torch.float64)
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
        self.oracle_log_prob = truth.log_prob(self.splits["test"])


def _means(means: Sequence[Sequence[float]], k: int) -> Tensor:
    pairs = isinstance(means, Sequence) and all(
        isinstance(row, Sequence) and not isinstance(row, str) for row in means
    )
    if not pairs or len(means) != k:
        raise ConfigError("means", means, f"a list of {k} [x, y] pairs")
    return torch.tensor([finite_list("means", row, 2) for row in means], dtype=torch.float64)


class CsvEarthquakes(EarthquakeDataModule):
    """A user's catalogue: a CSV file with header columns `x, y, s` (s a non-negative integer
    count), split at random into train/val/test; no truth, so no oracle."""

    def __init__(
        self,
        path: str,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        x, s = load_catalogue(path)
        splits = _split(path, x, s, val_fraction, test_fraction, seed)
        super().__init__(splits, batch_size, seed)


class GeoCatalogue(EarthquakeDataModule):
    """A catalogue in geographic coordinates (e.g. R's `quakes`, a USGS or ISC export): a CSV
    file with a latitude, a longitude and a count column (names are settings), projected to
    kilometres about `origin` and split at random into train/val/test; no truth.

    The projection is local equirectangular: x = R·Δlon·cos(lat₀), y = R·Δlat (radians,
    R = 6371 km), Δlon wrapped into [−180°, 180°) so a catalogue across the antimeridian stays
    whole. `origin` = [lat₀, lon₀] in degrees, or null for the catalogue's centre (mean
    latitude, circular mean longitude); the one used is `self.origin`."""

    def __init__(
        self,
        path: str,
        lat_column: str = "lat",
        lon_column: str = "long",
        count_column: str = "stations",
        origin: Sequence[float] | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int | None = None,
        seed: int = 0,
    ) -> None:
        settings = {
            "lat_column": lat_column,
            "lon_column": lon_column,
            "count_column": count_column,
        }
        header = _header(path)
        for key, name in settings.items():
            if not isinstance(name, str) or name.strip().lower() not in header:
                raise ConfigError(key, name, f"a column of {path}'s header: {', '.join(header)}")
        columns = {lat_column: _latitude, lon_column: _coordinate, count_column: _count}
        if len(columns) < 3:
            raise ConfigError("count_column", count_column, "three different column names")
        lat_lon, s = load_catalogue(path, (lat_column, lon_column, count_column), columns)
        if origin is not None:
            lat0, lon0 = finite_list("origin", origin, 2)
            if not -90 < lat0 < 90:
                raise ConfigError("origin", list(origin), "[lat₀, lon₀] with −90 < lat₀ < 90")
        self.origin = (lat0, lon0) if origin is not None else catalogue_centre(lat_lon)
        x = project(lat_lon, self.origin)
        splits = _split(path, x, s, val_fraction, test_fraction, seed)
        super().__init__(splits, batch_size, seed)
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
    path: str, x: Tensor, s: Tensor, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, Tensor]:
    """Seeded random train/val/test split of the events (x, y, S)."""
    fractions = [
        positive(k, v)
        for k, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction))
    ]
    if sum(fractions) >= 1:
        raise ConfigError("test_fraction", test_fraction, "val_fraction + test_fraction < 1")
    n_val, n_test = (max(1, round(f * len(x))) for f in fractions)
    if len(x) - n_val - n_test < 1:
        raise UserError(f"{path}: {len(x)} events are too few to split into train/val/test")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    parts = perm.split([len(x) - n_val - n_test, n_val, n_test])
    events = torch.cat([x, s[:, None].double()], dim=1)
    return {k: events[i] for k, i in zip(SPLITS, parts)}


def load_catalogue(
    path: str | Path,
    names: Sequence[str] = ("x", "y", "s"),
    parsers: dict | None = None,
) -> tuple[Tensor, Tensor]:
    """(two coordinates [N, 2] float64, counts [N] long) from a CSV file with a header naming
    the columns `names` (coordinate, coordinate, count; matched without case or surrounding
    spaces, in any order among other columns); a bad row raises a `UserError` naming the file,
    its line and the field. `parsers` maps a name to its check (default: finite coordinates, a
    non-negative integer count)."""
    names = [str(n).strip().lower() for n in names]
    parsers = {str(k).strip().lower(): v for k, v in (parsers or {}).items()}
    checks = [parsers.get(n, p) for n, p in zip(names, (_coordinate, _coordinate, _count))]
    file = _resolve(path)
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        if not set(names) <= set(header):
            raise UserError(f"{file}, line 1: header {header} lacks the columns {', '.join(names)}")
        cols = [header.index(c) for c in names]
        xs, ss = [], []
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise UserError(
                    f"{file}, line {line}: {len(row)} fields, the header has {len(header)}"
                )
            values = [check(file, line, n, row[c]) for n, c, check in zip(names, cols, checks)]
            xs.append(values[:2])
            ss.append(values[2])
    if not xs:
        raise UserError(f"{file}: no events")
    return torch.tensor(xs, dtype=torch.float64), torch.tensor(ss, dtype=torch.long)


def _header(path: str | Path) -> list[str]:
    """The CSV file's column names, lower case (the loader compares them so)."""
    with _resolve(path).open(newline="") as handle:
        return [h.strip().lower() for h in next(csv.reader(handle), [])]


def _resolve(path: str | Path) -> Path:
    """Relative paths are tried from the working directory, then from the project root."""
    if not isinstance(path, (str, Path)):
        raise ConfigError("path", path, "an existing CSV file")
    for candidate in (Path(path), ROOT / path):
        if candidate.is_file():
            return candidate
    raise ConfigError("path", str(path), "an existing CSV file")


def _coordinate(file: Path, line: int, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(
            f"{file}, line {line}: {name}={text.strip()!r} is invalid: expected a finite number"
        )
    return value


def _latitude(file: Path, line: int, name: str, text: str) -> float:
    value = _coordinate(file, line, name, text)
    if not -90 <= value <= 90:
        expected = "expected a latitude in [-90, 90] degrees"
        raise UserError(f"{file}, line {line}: {name}={text.strip()!r} is invalid: {expected}")
    return value


def _count(file: Path, line: int, name: str, text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0 and value == int(value)):
        expected = "expected a non-negative integer count"
        raise UserError(f"{file}, line {line}: {name}={text.strip()!r} is invalid: {expected}")
    return int(value)
