"""Importance sampling of the gambler's ruin (`src.estimators.importance`) as a run.

Fit tunes the proposal, one update per training batch from `tune_paths` walks under the current
proposal: `tune: cem` (cross-entropy method) or `second_moment` (the q minimising the estimated
second moment of the weighted indicator); both log that second moment, which they drive down.
With `tune: none` fit does nothing. The test
stage estimates P(win) from `n_paths` proposal walks and by plain Monte Carlo from `n_mc_paths`
walks, and scores both against the exact probability (dynamic programming, no sampling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from src.estimators.importance import (
    PROBABILITY,
    GamblersRuin,
    cross_entropy_update,
    estimate,
    second_moment_update,
)
from src.studies.base import REPEATS, SamplingStudy
from src.utils.closed_form_step import ClosedFormStep
from src.utils.constraints import Constraint, Integer, OneOf, declared

TUNERS = ("none", "cem", "second_moment")


class ImportanceStudy(SamplingStudy):
    constraints: ClassVar[dict[str, Constraint]] = {
        **declared(GamblersRuin),  # start, goal, p, max_steps
        "q": PROBABILITY,
        "n_paths": REPEATS,
        "n_mc_paths": REPEATS,
        "tune": OneOf(*TUNERS),
        "tune_paths": REPEATS,
        "seed": Integer(),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """The game's own rules, then a proposal whose weights stay finite on every path."""
        game = {k: settings[k] for k in ("start", "goal", "p", "max_steps")}
        GamblersRuin.check_together(game)
        GamblersRuin(**game).check_proposal("q", settings["q"])

    def __init__(
        self,
        start: int = 100,
        goal: int = 200,
        p: float = 18 / 37,
        max_steps: int = 600,
        q: float = 0.55,
        n_paths: int = 100_000,
        n_mc_paths: int = 100_000,
        tune: str = "none",
        tune_paths: int = 10_000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # each tuning update is a `ClosedFormStep` of q
        self.game = GamblersRuin(start, goal, p, max_steps)
        self.register_buffer("q", torch.tensor(q, dtype=torch.float64))
        self.n_paths, self.n_mc_paths = n_paths, n_mc_paths
        self.tune, self.tune_paths = tune, tune_paths
        self.seed = seed
        self._generator: torch.Generator | None = None

    def generator(self) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator(device=self.device).manual_seed(self.seed)
        return self._generator

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        if self.tune == "none":
            return
        self.optimizers().step(closure=self._tune)
        self.log_now({"train/proposal_q": self.q, "train/second_moment": self._second_moment})
        self.log("train/proposal_q", self.q, prog_bar=True)

    def _tune(self) -> None:
        """One proposal update from `tune_paths` walks under the current q."""
        q = float(self.q)
        walks = self.game.walk(q, self.tune_paths, self.generator(), self.device)
        log_w = self.game.log_weights(walks, q)
        self._second_moment = estimate(walks, log_w).second_moment
        if self.tune == "cem":
            tuned = cross_entropy_update(walks, log_w)
        else:
            tuned = second_moment_update(self.game, walks, log_w, q)
        self.q.fill_(self.game.check_proposal("tuned q", tuned))

    def test_step(self, batch: Tensor, batch_idx: int) -> None:
        q, game, generator = float(self.q), self.game, self.generator()
        walks = game.walk(q, self.n_paths, generator, self.device)
        log_w = game.log_weights(walks, q)
        result = estimate(walks, log_w)
        plain = game.walk(game.p, self.n_mc_paths, generator, self.device)
        mc = estimate(plain, game.log_weights(plain, game.p))
        exact = game.exact()
        metrics = {
            "test/estimate": result.estimate,
            "test/se": result.se,
            "test/ess": result.ess,
            "test/variance_reduction": result.variance_reduction,
            "test/second_moment": result.second_moment,
            "test/proposal_q": q,
            "test/mc_estimate": mc.estimate,
            "test/mc_se": mc.se,
            "test/exact": exact,
            "test/rel_error": abs(result.estimate - exact) / exact,
            "test/z_score": (result.estimate - exact) / result.se if result.se > 0 else 0.0,
        }
        self.log_dict({k: torch.tensor(v, dtype=torch.float64) for k, v in metrics.items()})
        y = torch.where(walks.won, log_w.exp(), torch.zeros_like(log_w))
        self._drawn = (y.cpu(), log_w[walks.won].cpu(), exact)

    def figures(self) -> dict:
        """The estimate ± se against the number of walks, with the exact value, and the
        distribution of the winning walks' weights (what the variance comes from)."""
        if getattr(self, "_drawn", None) is None:
            return {}
        from src.plots.importance import importance_figures

        return importance_figures(*self._drawn, q=float(self.q))

    def configure_optimizers(self) -> ClosedFormStep:
        return ClosedFormStep([self.q])
