"""FFJORD's 2-D toys: each density integrates to 1, its own samples and FFJORD's recipe fit it
(χ² on binned samples vs the binned density), the quadratures and root finding are exact."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from scipy import stats
from sklearn.datasets import make_circles, make_swiss_roll

from src.data.pinwheel import Pinwheel
from src.data.synthetic import SyntheticDataModule
from src.data.toy_curves import NODES_PER_PANEL, SwissRoll, TwoSpirals, panel_ratio
from src.data.toys import BlurredCircles, Checkerboard
from src.errors import ConfigError
from src.utils.constraints import make
from tests.conftest import CONF_DIR

F64 = torch.float64


def truth(name: str) -> torch.distributions.Distribution:
    """The truth exactly as conf/data/<name>.yaml builds it."""
    return instantiate(OmegaConf.load(Path(CONF_DIR) / "data" / f"{name}.yaml").truth)


@dataclass(frozen=True)
class Grid:
    """Square cells of side `step` on [−half, half]², binned `per_bin` × `per_bin` for χ²."""

    half: float
    step: float
    per_bin: int


GRIDS = {  # steps ≤ σ/4 (the midpoint rule is then exact to ~1e-9 over the plane)
    "eight_gaussians": Grid(6.0, 0.05, 5),
    "checkerboard": Grid(4.4, 0.1, 4),  # cell edges on the board's edges
    "rings": Grid(3.8, 0.02, 5),
    "circles": Grid(5.2, 0.04, 5),
    "two_spirals": Grid(4.0, 0.04, 4),
    "swissroll": Grid(4.6, 0.05, 4),
    "pinwheel": Grid(6.0, 0.05, 4),
}
TOYS = list(GRIDS)


@cache
def cell_masses(name: str) -> torch.Tensor:
    """p at each cell's centre × the cell's area, [n, n] (row = y, column = x)."""
    g = GRIDS[name]
    n = round(2 * g.half / g.step)
    centres = -g.half + (torch.arange(n, dtype=F64) + 0.5) * g.step
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    log_p = truth(name).log_prob(torch.stack([gx.reshape(-1), gy.reshape(-1)], -1))
    return (log_p.exp() * g.step**2).reshape(n, n)


def chi2_pvalue(name: str, x: torch.Tensor) -> float:
    """Pearson's χ² of the samples' counts in the bins against n × the bins' masses; bins with
    fewer than 5 expected points are pooled with everything outside the grid."""
    g, mass = GRIDS[name], cell_masses(name)
    n_bins = mass.shape[0] // g.per_bin
    mass = mass[: n_bins * g.per_bin, : n_bins * g.per_bin]
    expected = len(x) * mass.reshape(n_bins, g.per_bin, n_bins, g.per_bin).sum((1, 3)).reshape(-1)
    index = ((x.double() + g.half) / (g.step * g.per_bin)).floor().long()
    inside = ((index >= 0) & (index < n_bins)).all(-1)
    flat = index[inside, 1] * n_bins + index[inside, 0]
    observed = torch.bincount(flat, minlength=n_bins**2).double()
    kept = expected >= 5
    pooled_e = float(expected[~kept].sum()) + max(0.0, len(x) - float(expected.sum()))
    pooled_o = float(observed[~kept].sum()) + float((~inside).sum())
    stat = float(((observed[kept] - expected[kept]).square() / expected[kept]).sum())
    df = int(kept.sum()) - 1
    if pooled_e >= 5:
        stat, df = stat + (pooled_o - pooled_e) ** 2 / pooled_e, df + 1
    return float(stats.chi2.sf(stat, df))


@pytest.mark.parametrize("name", TOYS)
def test_density_integrates_to_one(name):
    assert float(cell_masses(name).sum()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", TOYS)
def test_own_samples_fit_the_density(name):
    torch.manual_seed(0)
    x = truth(name).sample((100_000,))
    assert x.shape == (100_000, 2) and x.dtype == F64
    assert chi2_pvalue(name, x) > 1e-3


def _ffjord(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """FFJORD's generators (lib/toy_data.py), re-derived; two_spirals without its uniform
    offset, which these truths leave out."""
    if name == "eight_gaussians":
        angle = 2 * np.pi * rng.integers(8, size=n) / 8
        centres = 4 * np.stack([np.cos(angle), np.sin(angle)], -1)
        return (centres + 0.5 * rng.standard_normal((n, 2))) / 1.414
    if name == "checkerboard":
        x1 = rng.random(n) * 4 - 2
        x2 = rng.random(n) - rng.integers(2, size=n) * 2 + np.floor(x1) % 2
        return np.stack([x1, x2], -1) * 2
    if name == "rings":
        angle = np.tile(np.linspace(0, 2 * np.pi, n // 4, endpoint=False), 4)
        radius = 3 * np.repeat([1.0, 0.75, 0.5, 0.25], n // 4)
        circle = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], -1)
        return circle + 0.08 * rng.standard_normal((n, 2))
    if name == "circles":
        return 3 * make_circles(n, factor=0.5, noise=0.08, random_state=1)[0]
    if name == "two_spirals":
        t = np.sqrt(rng.random((n // 2, 1))) * 540 * (2 * np.pi) / 360
        arm = np.hstack([-np.cos(t) * t, np.sin(t) * t])
        return np.vstack([arm, -arm]) / 3 + 0.1 * rng.standard_normal((n, 2))
    if name == "swissroll":
        return make_swiss_roll(n, noise=1.0, random_state=1)[0][:, [0, 2]] / 5
    assert name == "pinwheel"
    features = rng.standard_normal((n, 2)) * [0.3, 0.1] + [1.0, 0.0]
    angle = np.repeat(np.linspace(0, 2 * np.pi, 5, endpoint=False), n // 5)
    angle = angle + 0.25 * np.exp(features[:, 0])
    rotation = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1)
    return 2 * np.einsum("ti,tij->tj", features, rotation.reshape(-1, 2, 2))


@pytest.mark.parametrize("name", TOYS)
def test_ffjord_recipe_fits_the_density(name):
    """The truths are FFJORD's toys (angles i.i.d. where FFJORD spaces them evenly)."""
    x = torch.from_numpy(_ffjord(name, 100_000, np.random.default_rng(1)))
    assert chi2_pvalue(name, x) > 1e-3


def _broken_rings(n: int) -> torch.Tensor:
    return BlurredCircles([3.0, 2.25, 1.5, 0.75], noise=0.084).sample((n,))  # σ 5% too wide


def _broken_spirals(n: int) -> torch.Tensor:
    spirals = TwoSpirals()
    spirals.draw_t = lambda m: (torch.rand(m, dtype=F64) * 2 - 1) * spirals.length  # t uniform
    return spirals.sample((n,))


def _broken_pinwheel(n: int) -> torch.Tensor:
    return Pinwheel(rate=0.27).sample((n,))  # a little more twist


@pytest.mark.parametrize(
    ("name", "broken"),
    [("rings", _broken_rings), ("two_spirals", _broken_spirals), ("pinwheel", _broken_pinwheel)],
)
def test_the_fit_check_rejects_a_sampler_that_disagrees(name, broken):
    """The χ² check has the power to see a sampler and a density that disagree slightly."""
    torch.manual_seed(0)
    assert chi2_pvalue(name, broken(100_000)) < 1e-6


def test_blurred_circle_is_the_bessel_closed_form_also_where_i0_overflows():
    """Against (1/2π)∫ N(x; R(cos θ, sin θ), σ²I) dθ by the trapezoid rule (exact to rounding
    for a periodic analytic integrand), in log space; r R/σ² reaches 4700, where I₀ = ∞."""
    circle = BlurredCircles([3.0], noise=0.08)
    x = torch.tensor([[0.0, 0.0], [3.0, 0.1], [-2.0, 2.2], [0.5, -0.2], [10.0, 0.0]], dtype=F64)
    theta = 2 * math.pi * torch.arange(20_000, dtype=F64) / 20_000
    on_circle = 3.0 * torch.stack([theta.cos(), theta.sin()], -1)
    log_kernel = -(x[:, None] - on_circle).square().sum(-1) / (2 * 0.08**2)
    expected = torch.logsumexp(log_kernel, -1) - math.log(20_000) - math.log(2 * math.pi * 0.0064)
    torch.testing.assert_close(circle.log_prob(x), expected, rtol=0, atol=1e-9)
    assert torch.isinf(torch.special.i0(torch.tensor(10 * 3 / 0.0064, dtype=F64)))


def test_checkerboard_is_uniform_on_the_closed_dark_squares():
    board = Checkerboard()
    points = torch.tensor([[-3.0, -3.0], [-1.0, -3.0], [1.0, 1.0], [3.9, -0.5], [4.5, 0.0]])
    dark = torch.tensor([True, False, True, True, False])
    expected = torch.where(dark, -math.log(32), -math.inf).double()
    torch.testing.assert_close(board.log_prob(points), expected)
    # float32 rounds −2 − 1e-9 (dark square [−4, −2)²) onto the edge with a light square
    edge = torch.tensor([[-2 - 1e-9, -3.0]], dtype=F64)
    assert float(edge.float()[0, 0]) == -2.0
    assert float(board.log_prob(edge.float())) == -math.log(32)


@pytest.mark.parametrize("curve", [TwoSpirals, SwissRoll])
def test_curve_quadrature_matches_a_much_finer_rule(curve):
    """|Δ log p| ≤ 1e-8 against 32 nodes per panel on panels 4× narrower (~8× the nodes), on
    samples and on every grid point within 8σ of the curve (p > e^{−32} of its peak)."""
    toy = curve()
    fine = toy.rule(32, panel_ratio(NODES_PER_PANEL, 1e-10) / 4)
    assert len(fine[0]) >= 7 * len(toy.points)
    torch.manual_seed(1)
    axis = torch.linspace(-4.5, 4.5, 91, dtype=F64)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    x = torch.cat([toy.sample((5_000,)), torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)])
    reference = toy.log_density_by(x, *fine)
    near = reference > reference.max() - 32
    assert near.sum() > 5_000
    torch.testing.assert_close(toy.log_prob(x)[near], reference[near], rtol=0, atol=1e-8)


@pytest.mark.parametrize("nodes", [8, 16])
def test_panel_ratio_bounds_the_error_on_a_gaussian_bump(nodes):
    """Panels of width ratio·w, bump centred anywhere: relative error ≤ 1e-10, as the bound says."""
    ratio = panel_ratio(nodes, 1e-10)
    s, w = (torch.from_numpy(v) for v in np.polynomial.legendre.leggauss(nodes))

    def worst_error(width: float) -> float:
        edges = width * torch.arange(-16, 17, dtype=F64)
        mid, half = (edges[1:] + edges[:-1]) / 2, width / 2
        t, weight = (mid[:, None] + half * s).reshape(-1), (half * w).repeat(len(mid))
        return max(
            abs(
                float((weight * (-(t - c * width).square() / 2).exp()).sum())
                / math.sqrt(2 * math.pi)
                - 1
            )
            for c in torch.linspace(0, 1, 41, dtype=F64).tolist()
        )

    assert worst_error(ratio) <= 1e-10
    assert worst_error(1.5 * ratio) > 1e-10  # and not a wasteful bound


def _pinwheel_point(r: torch.Tensor, s: torch.Tensor, arm: torch.Tensor) -> torch.Tensor:
    theta = 2 * math.pi * arm / 5 + 0.25 * r.exp()
    return 2 * torch.stack(
        [r * theta.cos() + s * theta.sin(), s * theta.cos() - r * theta.sin()], -1
    )


def test_pinwheel_density_counts_each_point_s_own_preimage_also_beyond_a_fold():
    """p(y) ≥ the term of the (r, s, arm) that made y, N(r) N(s) / (5 · 4 |1 + a eʳ s|), and
    equals it where no other preimage is likely; beyond the fold (1 + a eʳ s < 0) too."""
    torch.manual_seed(2)
    r = torch.cat([1 + 0.3 * torch.randn(2000, dtype=F64), torch.tensor([2.5, 2.2], dtype=F64)])
    s = torch.cat([0.1 * torch.randn(2000, dtype=F64), torch.tensor([-0.5, -0.6], dtype=F64)])
    arm = torch.randint(5, (2002,)).double()
    jacobian = 1 + 0.25 * r.exp() * s
    assert (jacobian[-2:] < 0).all()  # the last two lie beyond the fold
    own = (
        -((r - 1) / 0.3).square() / 2
        - (s / 0.1).square() / 2
        - jacobian.abs().log()
        - math.log(2 * math.pi * 0.3 * 0.1 * 5 * 4)
    )
    log_p = Pinwheel().log_prob(_pinwheel_point(r, s, arm))
    assert (log_p >= own - 1e-9).all()
    assert float((log_p - own)[:2000].median()) < 1e-9


@pytest.mark.parametrize(
    ("build", "kwargs", "key"),
    [
        (Checkerboard, {"cells": 1}, "cells"),
        (Checkerboard, {"width": 0.0}, "width"),
        (BlurredCircles, {"radii": [], "noise": 0.1}, "radii"),
        (BlurredCircles, {"radii": [1.0, -1.0], "noise": 0.1}, "radii"),
        (BlurredCircles, {"radii": [1.0], "noise": 0.0}, "noise"),
        (BlurredCircles, {"radii": [1.0, 2.0], "noise": 0.1, "weights": [1.0]}, "weights"),
        (TwoSpirals, {"noise": -0.1}, "noise"),
        (TwoSpirals, {"noise": 1e-5}, "noise"),  # would need millions of quadrature nodes
        (TwoSpirals, {"turns": 0}, "turns"),
        (SwissRoll, {"noise": float("inf")}, "noise"),
        (Pinwheel, {"arms": 0}, "arms"),
        (Pinwheel, {"radial_std": -0.3}, "radial_std"),
        (Pinwheel, {"tangential_std": 0.0}, "tangential_std"),
        (Pinwheel, {"rate": 10.0}, "rate"),  # e^r would wind h round the circle too often
        (Pinwheel, {"scale": "2"}, "scale"),
    ],
)
def test_bad_settings_name_the_key(build, kwargs, key):
    with pytest.raises(ConfigError) as error:
        make(build, **kwargs)
    assert error.value.key == key


@pytest.mark.parametrize("name", TOYS)
def test_data_modules_are_seeded_and_scored_by_their_oracle(name):
    def module(seed: int) -> SyntheticDataModule:
        return SyntheticDataModule(truth(name), 500, 100, 3000, seed=seed, dim=2)

    a, b, c = module(1), module(1), module(2)
    assert torch.equal(a.train_x, b.train_x) and not torch.equal(a.train_x, c.train_x)
    # the oracle is the truth at the stored float32 test points, exactly, and finite there
    assert torch.equal(a.oracle_log_prob, a.truth.log_prob(a.splits["test"]).float())
    assert torch.isfinite(a.oracle_log_prob).all()


def test_curve_truths_build_under_no_grad_and_inference_mode():
    """A figure or an evaluation builds the truth without gradients; the quadrature's bump
    widths take derivatives of the curve all the same."""
    from src.data.toy_curves import TwoSpirals

    reference = TwoSpirals().log_prob(torch.zeros(3, 2, dtype=torch.float64))
    with torch.inference_mode():
        inside = TwoSpirals().log_prob(torch.zeros(3, 2, dtype=torch.float64))
    torch.testing.assert_close(inside, reference)
