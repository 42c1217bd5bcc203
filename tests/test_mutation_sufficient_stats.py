"""The loop of `SufficientStatsFit` (issue 27's mutants) on a scripted fit, without a Trainer:
every statistic summed over batches and processes, the restarts' seeds and lengths, convergence,
the kept restart, the logs and the checkpoint state, each checked against numbers set by hand."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from src.build import check_bounded
from src.errors import ConfigError
from src.fits.sufficient_stats import SufficientStatsFit
from src.utils.constraints import check

D = 2


class Marker(nn.Module):
    """The scripted fit's model: one parameter that the updates write (restart, iteration) into."""

    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(D))


class Scripted(SufficientStatsFit):
    """Restart r's i-th update returns `script[r][i]` (or `default` past its end) and writes
    (r, i) into θ; `initialise` and `update` record what they were given."""

    def __init__(self, script: list[list[float]] | None = None, default: Any = None, **kw) -> None:
        super().__init__(Marker(), **kw)
        self.script, self.default = script or [], default
        self.inits: list[tuple[Tensor, Tensor | None, int]] = []
        self.updates: list[dict[str, Tensor]] = []
        self.logged: list[tuple[str, Any, dict]] = []
        self.log = lambda name, value, **kwargs: self.logged.append((name, value, kwargs))

    def initialise(self, x: Tensor, weights: Tensor | None, generator: torch.Generator) -> None:
        self.inits.append((x, weights, generator.initial_seed()))

    def batch_statistics(self, x: Tensor, weights: Tensor | None = None) -> dict[str, Tensor]:
        w = torch.ones(len(x), dtype=x.dtype) if weights is None else weights
        # "theta" depends on the parameter: under grad mode it would carry a graph
        return {
            "first": w @ x,
            "second": (w[:, None] * x).T @ x,
            "theta": self.model.theta.sum() * 0 + w.sum(),
        }

    def update(self, stats: dict[str, Tensor]) -> Tensor:
        self.updates.append(stats)
        r, i = self.state["restart"], self.state["iteration"]
        script = self.script[r] if r < len(self.script) else []
        value = script[i] if i < len(script) else self.default(r, i)
        with torch.no_grad():
            self.model.theta.copy_(torch.tensor([r, i], dtype=self.model.theta.dtype))
        return torch.tensor(value, dtype=torch.float64)


class Negated(Scripted):
    objective_name, objective_sign = "train/nll", -1.0


class Recorder:
    """A logger that keeps what it was given."""

    def __init__(self) -> None:
        self.metrics: list[tuple[dict, int]] = []

    def log_metrics(self, metrics: dict, step: int) -> None:
        self.metrics.append((metrics, step))


def attach(fit: Scripted, **trainer: Any) -> SimpleNamespace:
    """A stand-in Trainer with what the loop reads; `world_size=2` reduces as two processes
    holding the same statistics would (a sum: twice this one's)."""
    world = trainer.pop("world_size", 1)
    reduced = lambda flat, reduce_op: flat * world if reduce_op == "sum" else None  # noqa: E731
    fake = SimpleNamespace(
        num_training_batches=1,
        world_size=world,
        strategy=SimpleNamespace(reduce=reduced),
        is_global_zero=True,
        loggers=[Recorder()],
        global_step=5,
        max_epochs=None,
        current_epoch=0,
        should_stop=False,
        datamodule=None,
    )
    for key, value in trainer.items():
        setattr(fake, key, value)
    fit.trainer = fake  # the public setter
    fit.optimizers = lambda: fit.configure_optimizers()
    return fake


def epoch(fit: Scripted, batches: list[dict[str, Tensor]]) -> None:
    """One training epoch as Lightning runs it."""
    fit.trainer.num_training_batches = len(batches)
    fit.on_train_epoch_start()
    for i, batch in enumerate(batches):
        fit.training_step(batch, i)


def data(n: int = 6, seed: int = 0) -> Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def increasing(r: int, i: int) -> float:
    """An objective that rises by 1 per update: never converged."""
    return float(i)


def test_defaults_and_precision() -> None:
    """The documented defaults; precision 64/32 sets the compute dtype and the model's; a fit
    that stops itself may run with max_epochs=-1; the updates are the loop's own steps."""
    fit = Scripted()
    assert (fit.n_init, fit.tol, fit.max_iter, fit.seed) == (1, 1e-6, 300, 0)
    assert fit.compute_dtype == torch.float64 and fit.model.theta.dtype == torch.float64
    single = Scripted(precision=32)
    assert single.compute_dtype == torch.float32 and single.model.theta.dtype == torch.float32
    assert fit.automatic_optimization is False
    check_bounded({"max_epochs": -1}, [], fit)  # no ConfigError


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"n_init": 0}, "n_init"),
        ({"max_iter": 0}, "max_iter"),
        ({"tol": 0.0}, "tol"),
        ({"tol": -1e-3}, "tol"),
        ({"precision": 16}, "precision"),
        ({"n_init": 1, "max_iter": 1, "tol": 1e-12, "precision": 32, "seed": -3}, None),
    ],
)
def test_constraints(settings: dict, key: str | None) -> None:
    """n_init, max_iter ≥ 1, tol > 0 (open), precision 32 or 64; the smallest valid values pass."""
    if key is None:
        check(Scripted, settings, "fit")
        return
    with pytest.raises(ConfigError) as error:
        check(Scripted, settings, "fit")
    assert error.value.key == f"fit.{key}"


@pytest.mark.parametrize("n", [100_000, 100_001])
def test_the_initialisation_subsample_holds_at_most_100000_rows(n: int) -> None:
    x = torch.arange(n, dtype=torch.float32)[:, None]
    fit = Scripted()
    fit.prepare(x, resuming=False)
    ((rows, weights, _),) = fit.inits
    assert len(rows) == min(n, 100_000) and rows.dtype == torch.float64 and weights is None


def test_prepare_starts_restart_0_unless_resuming() -> None:
    """Restart 0 is seeded with `seed`; its rows (merged duplicates, summed weights) in the fit's
    dtype; a resume initialises nothing until the first epoch finds no running restart."""
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]])
    fit = Scripted(seed=7)
    attach(fit)
    fit.prepare(x, resuming=False, weights=torch.tensor([0.5, 1.0, 2.0]))
    ((rows, weights, seed),) = fit.inits
    assert seed == 7 and rows.dtype == weights.dtype == torch.float64
    torch.testing.assert_close(rows, torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
    torch.testing.assert_close(weights, torch.tensor([1.5, 2.0], dtype=torch.float64))
    assert fit.state["started"] == 0 and fit.state["traces"] == [[]]
    fit.on_train_epoch_start()  # restart 0 runs: not initialised again
    assert len(fit.inits) == 1

    resumed = Scripted(seed=7)
    attach(resumed)
    resumed.prepare(x[1:], resuming=True)  # distinct rows: no weights
    assert resumed.inits == []
    resumed.on_train_epoch_start()
    ((rows, weights, seed),) = resumed.inits
    assert seed == 7 and weights is None and len(rows) == 2


def test_each_restart_is_seeded_seed_plus_its_index_and_runs_max_iter_updates() -> None:
    fit = Scripted(default=increasing, seed=5, n_init=3, max_iter=3)
    trainer = attach(fit)
    fit.prepare(data(), resuming=False)
    for _ in range(9):
        assert not trainer.should_stop
        epoch(fit, [{"x": data()}])
    assert trainer.should_stop
    assert [seed for *_, seed in fit.inits] == [5, 6, 7]
    assert fit.state["traces"] == [[0.0, 1.0, 2.0]] * 3
    assert (fit.state["restart"], fit.state["iteration"]) == (3, 3)


def test_statistics_are_summed_over_the_batches_and_updated_after_the_last() -> None:
    """Every batch's statistics in float64, summed, with n = rows (Σ w for weighted rows); one
    update per epoch, after its last batch, whatever the number of batches."""
    for count in (1, 2, 3, 4, 300):
        fit = Scripted(default=increasing, max_iter=10**6)
        attach(fit)
        fit.prepare(data(), resuming=False)
        x = data(count, seed=count)
        batches = [{"x": row[None].float()} for row in x]
        fit.trainer.num_training_batches = count
        fit.on_train_epoch_start()
        for i, batch in enumerate(batches):
            fit.training_step(batch, i)
            assert len(fit.updates) == (i + 1 == count), (count, i)
        (stats,) = fit.updates
        assert all(v.dtype == torch.float64 for v in stats.values())
        x = x.float().double()
        torch.testing.assert_close(stats["first"], x.sum(0))
        torch.testing.assert_close(stats["second"], x.T @ x)
        assert stats["n"] == count and stats["theta"] == count
    # weighted rows: float32 weights reach batch_statistics in the fit's dtype, n = Σ w
    fit = Scripted(default=increasing)
    attach(fit)
    fit.prepare(data(), resuming=False)
    x, w = data(4, seed=9), torch.tensor([0.5, 2.0, 0.0, 1.25])
    epoch(fit, [{"x": x[:2], "weight": w[:2]}, {"x": x[2:], "weight": w[2:]}])
    (stats,) = fit.updates
    torch.testing.assert_close(stats["first"], w.double() @ x)
    assert stats["n"] == 3.75 and stats["theta"] == 3.75


def test_summed_statistics_carry_no_graph() -> None:
    """The sums are taken under no_grad, in training_step and training_totals alike: a statistic
    of a parameter that requires grad would otherwise keep every batch's graph."""
    fit = Scripted(default=increasing)
    batches = [{"x": data(3)}, {"x": data(2, seed=1)}]
    attach(fit, datamodule=SimpleNamespace(train_dataloader=lambda: batches))
    fit.prepare(data(), resuming=False)
    epoch(fit, batches)
    assert fit.model.theta.requires_grad
    assert all(v.grad_fn is None and not v.requires_grad for v in fit.updates[0].values())
    assert all(v.grad_fn is None for v in fit.training_totals().values())


@pytest.mark.parametrize("world_size", [1, 2])
def test_training_totals_sum_every_batch_and_every_process(world_size: int) -> None:
    """training_totals: Σ over this rank's batches, then one sum over the processes (here two
    with the same statistics: twice), every statistic keeping its shape; as does an update."""
    batches = [{"x": data(3)}, {"x": data(4, seed=1)}, {"x": data(1, seed=2)}]
    fit = Scripted(default=increasing)
    attach(fit, world_size=world_size, datamodule=SimpleNamespace(train_dataloader=lambda: batches))
    fit.prepare(data(), resuming=False)
    x = torch.cat([b["x"] for b in batches])
    expected = {"first": x.sum(0), "second": x.T @ x, "theta": torch.tensor(8.0)}
    expected["n"] = torch.tensor(8.0)
    epoch(fit, batches)
    for totals in (fit.training_totals(), fit.updates[0]):
        assert totals.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(totals[key], world_size * value.double(), msg=key)


def test_each_update_logs_its_objective_iterations_and_step() -> None:
    fit = Scripted(script=[[2.5, 3.0]], max_iter=10)
    trainer = attach(fit, global_step=5)
    fit.prepare(data(), resuming=False)
    epoch(fit, [{"x": data()}])
    name, value, kwargs = fit.logged[0]
    assert name == "train/objective" and kwargs == {"logger": False, "prog_bar": True}
    assert value.dtype == torch.float64 and value.item() == 2.5
    assert fit.logged[1] == ("train/iterations", 6.0, {"logger": False})
    assert trainer.loggers[0].metrics == [({"train/objective": 2.5}, 6)]
    assert fit.state["iteration"] == 1 and fit.state["traces"] == [[2.5]]
    trainer.global_step, trainer.is_global_zero = 6, False  # only rank 0 writes to the loggers
    epoch(fit, [{"x": data()}])
    assert trainer.loggers[0].metrics == [({"train/objective": 2.5}, 6)]
    assert fit.logged[3] == ("train/iterations", 7.0, {"logger": False})
    assert fit.state["iteration"] == 2 and fit.state["traces"] == [[2.5, 3.0]]


def test_a_negated_objective_is_logged_negated() -> None:
    """objective_sign = −1 (EM's train/nll): both logs carry −objective."""
    fit = Negated(script=[[2.5]], max_iter=10)
    trainer = attach(fit)
    fit.prepare(data(), resuming=False)
    epoch(fit, [{"x": data()}])
    assert fit.logged[0][0] == "train/nll" and fit.logged[0][1].item() == -2.5
    assert trainer.loggers[0].metrics == [({"train/nll": -2.5}, 6)]


def test_converged_is_a_change_below_tol() -> None:
    fit = Scripted(tol=0.25)
    cases = {(3.0, 3.1): True, (3.1, 3.0): True, (0.0, 0.25): False, (1.0, 3.0): False}
    cases |= {(3.0, 1.0): False, (-1.0, -1.2): True, (-1.0, 1.0): False}
    for (previous, current), expected in cases.items():
        assert fit.converged(previous, current) is expected, (previous, current)


def test_a_restart_ends_at_convergence_not_at_its_first_update() -> None:
    """tol 0.25: [−5, −4, −3.9] converges at the third update; the first has no previous."""
    fit = Scripted(script=[[-5.0, -4.0, -3.9], [-2.0, -2.0]], tol=0.25, n_init=2)
    trainer = attach(fit)
    fit.prepare(data(), resuming=False)
    epoch(fit, [{"x": data()}])
    assert fit.state["restart"] == 0 and fit.state["iteration"] == 1
    for _ in range(2):
        epoch(fit, [{"x": data()}])
    assert fit.state["restart"] == 1 and fit.state["traces"][0] == [-5.0, -4.0, -3.9]
    epoch(fit, [{"x": data()}])
    assert fit.state["traces"][1] == [-2.0] and not trainer.should_stop
    epoch(fit, [{"x": data()}])
    assert fit.state["traces"][1] == [-2.0, -2.0] and trainer.should_stop


@pytest.mark.parametrize(
    ("finals", "kept"),
    [
        ([-3.0, -2.9, -4.0], 0),  # -2.9 is better by less than tol: the first is kept
        ([-3.0, -2.0, -2.1], 1),  # better by more than tol: it replaces the best
        ([-3.0, -4.0, -3.5], 0),  # worse
        ([-30.0, -40.0, -20.0], 2),  # negative objectives, the last the best
    ],
)
def test_the_best_restart_is_kept_at_the_end(finals: list[float], kept: int) -> None:
    """Each restart runs two updates (max_iter=2) ending at its final objective; at the end the
    model holds the kept restart's parameters and the best objective is logged last."""
    fit = Scripted(script=[[final - 10, final] for final in finals], tol=0.25, max_iter=2, n_init=3)
    trainer = attach(fit)
    fit.prepare(data(), resuming=False)
    for _ in range(6):
        epoch(fit, [{"x": data()}])
    assert trainer.should_stop
    assert fit.state["best_restart"] == kept and fit.state["best_objective"] == finals[kept]
    torch.testing.assert_close(fit.model.theta, torch.tensor([kept, 1.0], dtype=torch.float64))
    assert fit.best_trace() == [finals[kept] - 10, finals[kept]]
    assert fit.logged[-1][0] == "train/objective" and fit.logged[-1][1].item() == finals[kept]


@pytest.mark.parametrize(
    ("max_epochs", "current_epoch", "last"),
    [
        (None, 0, False),
        (-1, 0, False),
        (-1, 5, False),
        (3, 0, False),
        (3, 1, False),
        (3, 2, True),
        (4, 3, True),
        (5, 3, False),
        (300, 299, True),
    ],
)
def test_the_last_epoch_keeps_the_running_restart(
    max_epochs: int | None, current_epoch: int, last: bool
) -> None:
    """An update in the last epoch (current_epoch + 1 = max_epochs ≥ 0) that does not end its
    restart makes it the kept one when no restart has finished; in any other epoch it does not."""
    fit = Scripted(default=increasing, max_iter=100)
    attach(fit, max_epochs=max_epochs, current_epoch=current_epoch)
    fit.prepare(data(), resuming=False)
    epoch(fit, [{"x": data()}])
    assert fit.state["best_restart"] == (0 if last else None)


@pytest.mark.parametrize(
    ("running", "kept"), [(-5.0, 0), (-1.0, 1), (-3.0, 1)], ids=["worse", "better", "tie"]
)
def test_a_restart_cut_short_is_kept_only_if_not_worse(running: float, kept: int) -> None:
    """Restart 0 finishes at −3; restart 1 is cut by the last epoch at `running`: the model
    is restart 0's (and −3 logged) if restart 1 is worse, restart 1's otherwise (a tie too)."""
    fit = Scripted(script=[[-3.0], [running]], max_iter=1, n_init=3)
    attach(fit)
    fit.prepare(data(), resuming=False)
    epoch(fit, [{"x": data()}])  # restart 0: one update, max_iter reached
    fit.max_iter = 10  # restart 1 runs on, until the epochs run out
    fit.trainer.max_epochs, fit.trainer.current_epoch = 2, 1
    epoch(fit, [{"x": data()}])
    assert fit.state["best_restart"] == kept and fit.state["best_objective"] == -3.0
    torch.testing.assert_close(fit.model.theta, torch.tensor([kept, 0.0], dtype=torch.float64))
    objectives = [value.item() for name, value, _ in fit.logged if name == "train/objective"]
    assert objectives[-1] == (-3.0 if kept == 0 else running)


def test_restart_and_iteration_counts_past_the_small_int_cache() -> None:
    """n_init = 300 restarts and max_iter = 300 updates: the counts are compared by value."""
    fit = Scripted(default=increasing, n_init=300, max_iter=1)
    trainer = attach(fit)
    fit.prepare(data(), resuming=False)
    for _ in range(300):
        assert not trainer.should_stop
        epoch(fit, [{"x": data(1)}])
    assert trainer.should_stop and len(fit.inits) == 300 and fit.state["restart"] == 300

    fit = Scripted(default=increasing, max_iter=300)
    trainer = attach(fit)
    fit.prepare(data(), resuming=False)
    for _ in range(300):
        assert not trainer.should_stop
        epoch(fit, [{"x": data(1)}])
    assert trainer.should_stop and fit.state["traces"] == [[float(i) for i in range(300)]]


def test_a_resume_in_mid_restart_does_not_initialise_again() -> None:
    """The checkpoint's state (round-tripped as torch.save writes it) says restart 300 is
    running: the next epoch continues it, even though its ints are fresh objects."""
    fit = Scripted(default=increasing, n_init=400)
    attach(fit)
    fit.prepare(data(), resuming=False)
    fit.state |= {"restart": 300, "started": 300, "iteration": 2, "objective": 1.0}
    checkpoint: dict[str, Any] = {}
    fit.on_save_checkpoint(checkpoint)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    resumed = Scripted(default=increasing, n_init=400)
    attach(resumed)
    resumed.prepare(data(), resuming=True)
    resumed.on_load_checkpoint(torch.load(buffer, weights_only=True))
    assert resumed.state["restart"] == 300
    resumed.on_train_epoch_start()
    assert resumed.inits == [] and resumed.state["iteration"] == 2
    kept = resumed.state
    resumed.on_load_checkpoint({})  # no state saved: the fresh one stays
    assert resumed.state is kept


def test_best_trace_and_figure() -> None:
    fit = Scripted()
    traces = [[1.0], [2.0, 3.0], [4.0]]
    for kept, expected in ((None, 2), (0, 0), (1, 1), (2, 2), (3, 2), (4, 2)):
        fit.state |= {"traces": traces, "best_restart": kept}
        assert fit.best_trace() is traces[expected], kept
    import matplotlib.pyplot as plt

    fit.state |= {"traces": [[]], "best_restart": None}
    assert fit.figures() == {}
    fit.state["traces"] = [[1.0, 2.0]]
    figures = fit.figures()
    assert list(figures) == ["objective"]
    plt.close(figures["objective"])
