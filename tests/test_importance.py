"""Gambler's ruin: exact probability by dynamic programming, walks, importance sampling, CEM."""

import itertools
import json
import math

import pytest
import torch

from src.errors import ConfigError, UserError
from src.estimators import importance
from src.estimators.importance import (
    GamblersRuin,
    Walks,
    cross_entropy_update,
    estimate,
    second_moment_update,
)
from src.train import train

CPU = torch.device("cpu")


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_exact_matches_brute_force_enumeration():
    """Sum the probability of every sequence of 9 draws whose walk wins before stopping."""
    game = GamblersRuin(start=2, goal=5, p=0.3, max_steps=9)
    total = 0.0
    for draws in itertools.product((1, -1), repeat=9):
        wealth = 2
        for step in draws:
            wealth += step
            if wealth in (0, 5):
                break
        if wealth == 5:
            total += math.prod(0.3 if d == 1 else 0.7 for d in draws)
    assert game.exact() == pytest.approx(total, rel=1e-12)


def test_exact_tends_to_the_classical_ruin_probability():
    """Without a step limit, P(win) = (1 − r^start)/(1 − r^goal) with r = (1 − p)/p."""
    game = GamblersRuin(start=3, goal=8, p=0.45, max_steps=3000)
    r = 0.55 / 0.45
    assert game.exact() == pytest.approx((1 - r**3) / (1 - r**8), rel=1e-10)


def test_walks_stop_at_the_boundary_and_win_at_the_exact_rate():
    game = GamblersRuin(start=4, goal=9, p=0.45, max_steps=30)
    walks = game.walk(0.45, 100_000, _gen(), CPU)
    wealth = 4 + 2 * walks.ups - walks.steps
    finished = walks.steps < 30
    assert set(wealth[finished].unique().tolist()) <= {0, 9}
    assert torch.equal(walks.won, wealth == 9)
    rate, exact = walks.won.double().mean().item(), game.exact()
    assert abs(rate - exact) < 4 * math.sqrt(exact * (1 - exact) / 100_000)


def test_weights_of_stopped_paths_average_to_one():
    """E_q[p(path)/q(path)] = 1 when the weight covers the steps taken up to stopping."""
    game = GamblersRuin(start=4, goal=9, p=0.45, max_steps=30)
    walks = game.walk(0.6, 100_000, _gen(1), CPU)
    w = game.log_weights(walks, 0.6).exp()
    assert abs(w.mean().item() - 1) < 4 * w.std().item() / math.sqrt(len(w))


def test_importance_sampling_of_the_notes_game():
    game = GamblersRuin()  # 100 → 200 before 0, p = 18/37, 600 steps
    exact = game.exact()
    assert exact == pytest.approx(2.388e-6, rel=1e-3)
    walks = game.walk(0.55, 100_000, _gen(2), CPU)
    result = estimate(walks, game.log_weights(walks, 0.55))
    assert abs(result.estimate - exact) < 3 * result.se
    assert abs(result.estimate - exact) / exact < 0.1
    assert result.variance_reduction > 1000
    assert 0 < result.ess <= 100_000


def test_cross_entropy_lowers_the_second_moment():
    game = GamblersRuin()
    q, moments = 0.55, []
    for seed in range(3):
        walks = game.walk(q, 20_000, _gen(seed), CPU)
        log_w = game.log_weights(walks, q)
        moments.append(estimate(walks, log_w).second_moment)
        q = cross_entropy_update(walks, log_w)
    assert 0.57 < q < 0.62
    walks = game.walk(q, 20_000, _gen(9), CPU)
    assert estimate(walks, game.log_weights(walks, q)).second_moment < moments[0] / 2


def test_second_moment_minimiser_is_the_grid_minimum():
    game = GamblersRuin()
    walks = game.walk(0.55, 20_000, _gen(5), CPU)
    log_w = game.log_weights(walks, 0.55)
    best = second_moment_update(game, walks, log_w, 0.55)

    def moment(x):  # the same estimate, written out: mean of 1[win] w_q w_x
        return (walks.won * (log_w + game.log_weights(walks, x)).exp()).mean().item()

    grid = [0.55 + 0.001 * i for i in range(80)]
    assert best == pytest.approx(min(grid, key=moment), abs=0.002)
    assert 0.57 < best < 0.62 and moment(best) < moment(0.55) / 2


def test_run_writes_the_estimate_and_its_diagnostics(make_cfg, tmp_path):
    metrics = train(
        make_cfg("experiment=gamblers_ruin", "study.n_paths=50000", "study.n_mc_paths=10000")
    )
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    exact = GamblersRuin().exact()
    assert metrics["test/exact"] == pytest.approx(exact)
    assert abs(metrics["test/estimate"] - exact) < 3 * metrics["test/se"]
    assert metrics["test/rel_error"] < 0.1
    assert metrics["test/proposal_q"] == 0.55
    assert metrics["test/ess"] > 0 and metrics["test/variance_reduction"] > 1000


@pytest.mark.parametrize("tune", ["cem", "second_moment"])
def test_tuned_run_moves_the_proposal(make_cfg, tune):
    metrics = train(
        make_cfg(
            "experiment=gamblers_ruin_cem",
            f"study.tune={tune}",
            "data.steps_per_epoch=2",
            "study.n_paths=30000",
            "study.n_mc_paths=2",
        )
    )
    assert 0.57 < metrics["test/proposal_q"] < 0.62
    assert metrics["test/rel_error"] < 0.1
    assert metrics["global_step"] == 2  # each tuning update is a step: logged at steps 1, 2


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("study.q=0", "study.q"),
        ("study.q=1.0", "study.q"),
        ("study.q=1.5", "study.q"),
        ("study.q=0.01", "study.q"),  # finite in (0, 1), but weights overflow float64
        ("study.p=0", "study.p"),
        ("study.n_paths=1", "study.n_paths"),
        ("study.goal=50", "study.goal"),
        ("study.tune=magic", "study.tune"),
    ],
)
def test_bad_settings_are_refused(make_cfg, override, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        train(make_cfg("experiment=gamblers_ruin", override))


def test_the_study_draws_its_estimate_and_weights(make_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(make_cfg("experiment=gamblers_ruin", "study.n_paths=5000", "study.n_mc_paths=2"))
    (run,) = (tmp_path / "tensorboard").iterdir()
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    assert {"samples/estimate", "samples/weights"} <= set(events.Tags()["images"])


def _walks(won, ups, steps) -> Walks:
    return Walks(torch.tensor(won), torch.tensor(ups), torch.tensor(steps))


def test_estimate_and_updates_by_hand():
    """Three paths, won (yes, no, yes), weights (2, 5, 0.5): y = (2, 0, 0.5), so the mean is 5/6,
    the unbiased variance 13/12, ESS = 2.5²/4.25, the variance reduction (5/6)(1/6)/(13/12) and
    the second moment 4.25/3; with (U, T) = (3, 5), (1, 5), (4, 6) the cross-entropy proposal is
    Σ y U / Σ y T = (6 + 2)/(10 + 3)."""
    walks = _walks([True, False, True], [3, 1, 4], [5, 5, 6])
    log_w = torch.tensor([2.0, 5.0, 0.5], dtype=torch.float64).log()
    result = estimate(walks, log_w)
    assert result.estimate == pytest.approx(5 / 6)
    assert result.se == pytest.approx(math.sqrt(13 / 12 / 3))
    assert result.ess == pytest.approx(2.5**2 / 4.25)
    assert result.variance_reduction == pytest.approx((5 / 6) * (1 / 6) / (13 / 12))
    assert result.second_moment == pytest.approx(4.25 / 3)
    assert cross_entropy_update(walks, log_w) == pytest.approx(8 / 13)


def test_estimate_without_a_win_and_with_too_few_paths():
    walks = _walks([False, False], [1, 2], [3, 4])
    result = estimate(walks, torch.zeros(2, dtype=torch.float64))
    assert result.estimate == 0 and result.ess == 0 and math.isnan(result.variance_reduction)
    with pytest.raises(UserError, match="at least 2 paths"):
        estimate(_walks([True], [1], [1]), torch.zeros(1, dtype=torch.float64))
    for update in (cross_entropy_update, lambda w, lw: second_moment_update(GAME, w, lw, 0.5)):
        with pytest.raises(UserError, match="no walk reached the goal"):
            update(walks, torch.zeros(2, dtype=torch.float64))


GAME = GamblersRuin(start=2, goal=4, p=0.4, max_steps=6)


def test_log_weights_by_hand():
    """U ups and D = T − U downs: log w = U log(p/q) + D log((1 − p)/(1 − q))."""
    walks = _walks([True, False], [3, 0], [4, 2])
    expected = torch.tensor(
        [3 * math.log(0.4 / 0.7) + math.log(0.6 / 0.3), 2 * math.log(0.6 / 0.3)],
        dtype=torch.float64,
    )
    torch.testing.assert_close(GAME.log_weights(walks, 0.7), expected)


def test_second_moment_update_is_the_closed_form_minimiser():
    """One won path with U ups and D downs: the estimate ∝ q'^−U (1 − q')^−D, minimised at
    q' = U/(U + D)."""
    walks = _walks([True, False], [5, 0], [7, 2])
    log_w = GAME.log_weights(walks, 0.5)
    assert second_moment_update(GAME, walks, log_w, 0.5) == pytest.approx(
        5 / 7, abs=1e-6
    )  # flat minimum: √eps


def test_walk_outcomes_by_hand(monkeypatch):
    """Fixed uniforms: up when u < q. From 2 with goal 4: (up, up) wins at T = 2; (down, down)
    loses at T = 2; (up, down)×3 is still going at the horizon 6 and has lost."""
    rows = torch.tensor(
        [[0.1, 0.1, 0.9, 0.9, 0.9, 0.9], [0.9, 0.9, 0.1, 0.1, 0.1, 0.1], [0.1, 0.9] * 3]
    )
    monkeypatch.setattr(torch, "rand", lambda n, horizon, **kw: rows[:n])
    walks = GAME.walk(0.5, 3, _gen(), CPU)
    assert walks.won.tolist() == [True, False, False]
    assert walks.steps.tolist() == [2, 2, 6] and walks.ups.tolist() == [2, 0, 3]


def test_walks_in_several_chunks_are_all_drawn(monkeypatch):
    monkeypatch.setattr(importance, "CHUNK", 4)
    walks = GAME.walk(0.5, 10, _gen(), CPU)
    assert len(walks.won) == len(walks.ups) == len(walks.steps) == 10
    assert (walks.steps >= 2).all() and (walks.steps <= 6).all()


def test_game_settings_by_hand():
    GamblersRuin.check_together({"start": 2, "goal": 3, "max_steps": 1})
    with pytest.raises(ConfigError, match=r"^goal=2 is invalid: expected an integer > start \(2\)"):
        GamblersRuin.check_together({"start": 2, "goal": 2, "max_steps": 10})
    with pytest.raises(ConfigError, match=r"^max_steps=2 is invalid: .*>= goal − start \(3\)"):
        GamblersRuin.check_together({"start": 2, "goal": 5, "max_steps": 2})
    assert GAME.check_proposal("q", 0.5) == 0.5
    for bad in (0.0, 1.0):
        with pytest.raises(ConfigError, match=r"^q="):
            GAME.check_proposal("q", bad)


def test_check_proposal_is_at_the_float64_limit():
    """The worst path (every step down, (T + start)/2 + 1 of them at most) has
    log w = D log((1 − p)/(1 − q)); q is refused exactly when that reaches log(float64 max)."""
    game = GamblersRuin(start=100, goal=200, p=0.5, max_steps=600)
    most_downs = (600 + 100) // 2 + 1
    limit = 1 - 0.5 / math.exp(math.log(torch.finfo(torch.float64).max) / most_downs)
    assert game.check_proposal("q", limit - 1e-6) == limit - 1e-6
    with pytest.raises(ConfigError, match="weights stay finite"):
        game.check_proposal("q", limit + 1e-6)
