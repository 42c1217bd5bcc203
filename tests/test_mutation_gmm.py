"""GaussianMixture's settings and initialisation (issue 27's mutants): the declared bounds and
defaults, `set_parameters` under grad mode, and `init_from_data` against a by-hand reference (the
same seeded draws, then the weighted hard-assignment M-step written out: π_k, μ_k, Σ_k)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from src.errors import ConfigError
from src.models.gmm import GaussianMixture
from src.utils.constraints import make
from src.utils.kmeans import kmeans_plus_plus

REG = 1e-3


def clusters(n: int = 40, seed: int = 0) -> Tensor:
    """Three loose clusters in 2-D (float64)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-4.0, 0.0], [4.0, 1.0], [0.0, 5.0]], dtype=torch.float64)
    return centres[torch.arange(n) % 3] + 1.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)


def hand_fit(x: Tensor, centres: Tensor, w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """π, μ, Σ of the hard assignment of each row to its nearest centre, row n counted w_n
    times: π_k = W_k / W, μ_k = Σ_{n∈k} w_n x_n / W_k, Σ_k = Σ_{n∈k} w_n (x_n − μ_k)(x_n − μ_k)ᵀ
    / W_k + REG·I."""
    labels = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(-1)
    pis, locs, covs = [], [], []
    for k in range(len(centres)):
        wk, xk = w[labels == k], x[labels == k]
        mu = (wk[:, None] * xk).sum(0) / wk.sum()
        r = xk - mu
        covs.append((wk[:, None, None] * r[:, :, None] * r[:, None, :]).sum(0) / wk.sum())
        pis.append(wk.sum() / w.sum())
        locs.append(mu)
    eye = REG * torch.eye(x.shape[1], dtype=x.dtype)
    return torch.stack(pis), torch.stack(locs), torch.stack(covs) + eye


def assert_fitted(gmm: GaussianMixture, expected: tuple[Tensor, Tensor, Tensor]) -> None:
    pi, loc, cov = expected
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(gmm.logits, -1), pi, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(gmm.loc, loc, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(gmm.covariance(), cov, rtol=1e-8, atol=1e-10)


def best_of(x: Tensor, draws: list[Tensor], w: Tensor) -> Tensor:
    """The draw of least Σ_n w_n min_k |x_n − c_k|², the first on a tie."""
    potentials = [(w * torch.cdist(x, c).min(-1).values ** 2).sum() for c in draws]
    return draws[min(range(len(draws)), key=lambda i: (potentials[i], i))]


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"dim": 0}, "dim"),
        ({"init_trials": 0}, "init_trials"),
        ({"n_components": 1, "dim": 1, "init_trials": 1}, None),
    ],
)
def test_n_components_dim_and_init_trials_are_at_least_1(settings: dict, key: str | None) -> None:
    if key is None:
        gmm = make(GaussianMixture, **settings)
        assert gmm.n_components == 1 and gmm.event_shape == (1,) and gmm.init_trials == 1
        return
    with pytest.raises(ConfigError) as error:
        make(GaussianMixture, **settings)
    assert error.value.key == key


def test_defaults() -> None:
    """8 full-covariance components in 2-D, autograd gradients, k-means++ best of 5."""
    gmm = GaussianMixture()
    assert gmm.n_components == 8 and gmm.event_shape == (2,) and gmm.loc.shape == (8, 2)
    assert gmm.analytic_grad is False and not gmm.diagonal
    assert (gmm.init, gmm.init_trials, gmm.reg_covar) == ("kmeans++", 5, 1e-6)


def test_set_parameters_works_in_grad_mode() -> None:
    """It writes into parameters that require grad: a caller need not turn grad off."""
    gmm = GaussianMixture(2, 2, reg_covar=REG).double()
    tril = torch.tensor([[[2.0, 0.0], [0.5, 1.0]], [[0.3, 0.0], [-1.0, 0.7]]], dtype=torch.float64)
    log_w = torch.tensor([0.25, 0.75], dtype=torch.float64).log()
    loc = torch.tensor([[1.0, 2.0], [-3.0, 0.5]], dtype=torch.float64)
    assert torch.is_grad_enabled()
    gmm.set_parameters(log_w, loc, tril)
    with torch.no_grad():
        torch.testing.assert_close(gmm.scale_tril(), tril)
        torch.testing.assert_close(gmm.loc, loc)
        torch.testing.assert_close(torch.softmax(gmm.logits, -1), log_w.exp())


def test_weighted_points_are_counted_by_positive_weight() -> None:
    """Rows of weight 0 are not points: 3 components need 3 rows of positive weight."""
    x = clusters(5)
    w = torch.tensor([1.0, 0.0, 2.0, 0.0, 0.5], dtype=torch.float64)
    with pytest.raises(ConfigError, match=r"training points \(3\)"):
        GaussianMixture(4, 2).double().init_from_data(x, w)
    gmm = GaussianMixture(3, 2, reg_covar=REG, init="random_from_data").double()
    gmm.init_from_data(x, w, torch.Generator().manual_seed(0))  # accepted: 3 of weight > 0
    assert torch.isfinite(gmm.loc).all()


@pytest.mark.parametrize("seed", [123, 2**64 - 5])
def test_without_a_generator_the_draws_follow_torch_initial_seed(seed: int) -> None:
    """The default generator is seeded with torch.initial_seed() mod 2⁶³: 123, or 2⁶³ − 5."""
    x = clusters()
    expected = seed if seed < 2**63 else 2**63 - 5
    fits = []
    for generator in (None, torch.Generator().manual_seed(expected)):
        torch.manual_seed(seed)
        gmm = GaussianMixture(3, 2, reg_covar=REG, init="random_from_data", init_trials=1)
        gmm.double().init_from_data(x, generator=generator)
        fits.append(gmm.loc.detach().clone())
    torch.testing.assert_close(fits[0], fits[1], rtol=0, atol=0)


@pytest.mark.parametrize("init", ["kmeans++", "random_from_data"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_init_from_data_is_the_best_draw_then_one_m_step(init: str, weighted: bool) -> None:
    """`init` chosen by value (a name read from a config is not the interned literal): the best
    of 4 seeded draws (k-means++, or k distinct rows: uniform or ∝ w) by the w-weighted potential,
    then the M-step of the hard assignment, each row counted w_n times."""
    x = clusters()
    w = torch.rand(len(x), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = (w * 20).square() * (torch.arange(len(x)) % 5 != 0)  # widely spread, every 5th row 0
    mass = w if weighted else None
    gen = torch.Generator().manual_seed(4)
    draws = []
    for _ in range(4):
        if init == "kmeans++":
            draws.append(kmeans_plus_plus(x, 3, gen, mass))
        elif weighted:
            draws.append(x[torch.multinomial(w, 3, generator=gen)])
        else:
            draws.append(x[torch.randperm(len(x), generator=gen)[:3]])
    ones = torch.ones(len(x), dtype=torch.float64)
    expected = hand_fit(x, best_of(x, draws, w if weighted else ones), w if weighted else ones)
    name = "".join([init[:3], init[3:]])  # equal, not identical, to the literal
    gmm = GaussianMixture(3, 2, reg_covar=REG, init=name, init_trials=4).double()
    gmm.init_from_data(x, mass, torch.Generator().manual_seed(4))
    assert_fitted(gmm, expected)


def test_a_tie_in_potential_keeps_the_first_draw() -> None:
    """Two rows, two components: every draw has potential 0, so the first draw's order stays."""
    x = torch.tensor([[0.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    orders = [torch.randperm(2, generator=gen) for _ in range(6)]
    assert orders[-1].tolist() != orders[0].tolist()  # the last draw's order is the other
    gmm = GaussianMixture(2, 2, reg_covar=REG, init="random_from_data", init_trials=6).double()
    gmm.init_from_data(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(gmm.loc.detach(), x[orders[0]])


@pytest.mark.parametrize("analytic", [False, True])
def test_analytic_grad_selects_the_hand_derived_backward(analytic: bool) -> None:
    """Both backwards give the same gradients (tests/test_gmm.py), so only the graph tells
    which one `analytic_grad` chose."""
    gmm = GaussianMixture(3, 2, analytic_grad=analytic).double()
    log_p = gmm.log_prob(clusters(5))
    assert (type(log_p.grad_fn).__name__ == "MixtureLogLikelihoodBackward") is analytic


def test_covariance_type_is_read_by_value_and_sets_the_free_parameters() -> None:
    """`diag` read from a config (equal, not identical, to the literal) gives a diagonal model
    whose strict lower triangle is frozen; `full` trains it."""
    diag = GaussianMixture(2, 3, "".join(["di", "ag"]))
    full = GaussianMixture(2, 3, "full")
    assert diag.diagonal and not diag.raw_lower.requires_grad
    assert not full.diagonal and full.raw_lower.requires_grad


def test_the_cholesky_diagonal_is_the_floor_plus_exp_raw_diag_only() -> None:
    """L_k's diagonal is sqrt(reg_covar) + exp(raw_diag) and its strict lower triangle is
    raw_lower's: what raw_lower holds on and above its diagonal is never read."""
    gmm = GaussianMixture(2, 2, "full", reg_covar=REG).double()
    with torch.no_grad():
        gmm.raw_diag.copy_(torch.tensor([[0.0, 1.0], [-1.0, 0.5]]))
        gmm.raw_lower.copy_(torch.tensor([[[5.0, 7.0], [0.5, 9.0]], [[-3.0, 2.0], [-0.25, 4.0]]]))
        e = torch.e
        expected = torch.tensor(
            [[[1.0, 0.0], [0.5, e]], [[1 / e, 0.0], [-0.25, e**0.5]]], dtype=torch.float64
        ) + REG**0.5 * torch.eye(2, dtype=torch.float64)
        torch.testing.assert_close(gmm.scale_tril(), expected)
