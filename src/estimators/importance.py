"""Importance sampling of a rare event: winning the gambler's ruin.

The walk starts at `start`, steps +1 with probability p (else −1), and wins on reaching `goal`
before 0 within `max_steps` steps (a walk still going then has lost). Under a proposal that
steps up with probability q, a path stopped at time T with U up-steps has likelihood ratio
w = (p/q)^U ((1 − p)/(1 − q))^{T − U}: only the steps taken count (weighting all `max_steps`
draws, as the notes do, is unbiased too but adds the noise of steps that never happened).
The estimate is the mean of y = 1[win]·w over proposal paths.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from src.errors import ConfigError, UserError
from src.utils.constraints import Constraint, Integer, Real

LOG_MAX = math.log(torch.finfo(torch.float64).max)
PROBABILITY = Real(0, 1, low_open=True, high_open=True)  # of a step up: strictly in (0, 1)
CHUNK = 2**14  # paths per chunk: 2^14 × 600 steps of float32 noise ≈ 40 MB


@dataclass(frozen=True)
class Walks:
    """Outcome of n walks: won (bool), up-steps and steps taken until stopping (int64)."""

    won: Tensor
    ups: Tensor
    steps: Tensor


@dataclass(frozen=True)
class Estimate:
    """Mean of y = 1[win]·w, its standard error, the effective sample size of y and
    Var(plain MC per path) / Var(y) = P(1 − P)/Var(y) at the estimated P."""

    estimate: float
    se: float
    ess: float
    variance_reduction: float
    second_moment: float


class GamblersRuin:
    constraints: ClassVar[dict[str, Constraint]] = {
        "start": Integer(low=1),
        "goal": Integer(low=1),
        "p": PROBABILITY,
        "max_steps": Integer(low=1),
    }

    @classmethod
    def check_together(cls, settings: Mapping[str, Any]) -> None:
        """A goal above the start, within reach in `max_steps` steps."""
        start, goal, max_steps = settings["start"], settings["goal"], settings["max_steps"]
        if goal <= start:
            raise ConfigError("goal", goal, f"an integer > start ({start})")
        if goal - start > max_steps:
            raise ConfigError(
                "max_steps", max_steps, f"an integer >= goal − start ({goal - start})"
            )

    def __init__(
        self, start: int = 100, goal: int = 200, p: float = 18 / 37, max_steps: int = 600
    ) -> None:
        self.start, self.goal, self.max_steps = start, goal, max_steps
        self.p = float(p)

    def exact(self) -> float:
        """P(win) by propagating the wealth distribution step by step (no sampling)."""
        mass = torch.zeros(self.goal + 1, dtype=torch.float64)
        mass[self.start] = 1.0
        for _ in range(self.max_steps):
            inner = mass[1 : self.goal].clone()
            mass[1 : self.goal] = 0.0
            mass[2:] += self.p * inner
            mass[: self.goal - 1] += (1 - self.p) * inner
        return float(mass[self.goal])

    def walk(self, q: float, n: int, generator: torch.Generator, device: torch.device) -> Walks:
        """n walks stepping up with probability q: all steps drawn at once (in chunks of paths to
        bound memory), the displacement by a cumulative sum, each walk stopped at its first exit."""
        parts = [
            self._walk_chunk(q, min(CHUNK, n - lo), generator, device) for lo in range(0, n, CHUNK)
        ]
        return Walks(*(torch.cat(tensors) for tensors in zip(*parts)))

    def _walk_chunk(
        self, q: float, n: int, generator: torch.Generator, device: torch.device
    ) -> tuple[Tensor, Tensor, Tensor]:
        horizon = self.max_steps
        dtype = torch.int16 if horizon < 2**15 else torch.int32
        up = torch.rand(n, horizon, generator=generator, device=device) < q
        ups_so_far = up.cumsum(1, dtype=dtype)
        time = torch.arange(1, horizon + 1, dtype=dtype, device=device)
        moved = 2 * ups_so_far - time  # wealth − start after each step
        exited = (moved <= -self.start) | (moved >= self.goal - self.start)
        stopped, first = exited.max(1)  # first exit (the first maximum), if any
        steps = torch.where(stopped, first + 1, horizon)
        won = stopped & (moved.gather(1, first[:, None]).squeeze(1) > 0)
        ups = ups_so_far.gather(1, (steps - 1)[:, None]).squeeze(1)
        return won, ups.long(), steps.long()

    def log_weights(self, walks: Walks, q: float) -> Tensor:
        """log p(path)/q(path) over the steps each walk took (float64)."""
        ups, downs = walks.ups.double(), (walks.steps - walks.ups).double()
        p = self.p
        return ups * math.log(p / q) + downs * (math.log1p(-p) - math.log1p(-q))

    def check_proposal(self, key: str, q: float) -> float:
        """q in (0, 1) whose weights stay finite in float64 on every possible path.

        A walk still going has −start < U − D < goal − start, so within T steps it takes at most
        (T + goal − start)/2 up-steps and (T + start)/2 down-steps."""
        if not PROBABILITY.accepts(q):
            raise ConfigError(key, q, PROBABILITY.describe())
        p, horizon = self.p, self.max_steps
        most_ups = min(horizon, (horizon + self.goal - self.start) // 2 + 1)
        most_downs = min(horizon, (horizon + self.start) // 2 + 1)
        worst = max(most_ups * math.log(p / q), most_downs * (math.log1p(-p) - math.log1p(-q)))
        if worst >= LOG_MAX:
            raise ConfigError(key, q, "a proposal whose weights stay finite (q nearer to p)")
        return q


def estimate(walks: Walks, log_w: Tensor) -> Estimate:
    """The importance-sampling estimate of P(win) and its diagnostics."""
    n = len(log_w)
    if n < 2:
        raise UserError("a standard error needs at least 2 paths")
    y = torch.where(walks.won, log_w.exp(), torch.zeros_like(log_w))
    mean, var = y.mean(), y.var()
    total, square = y.sum(), y.square().sum()
    return Estimate(
        estimate=float(mean),
        se=float((var / n).sqrt()),
        ess=float(total**2 / square) if total > 0 else 0.0,
        variance_reduction=float(mean * (1 - mean) / var) if var > 0 else float("nan"),
        second_moment=float(square / n),
    )


def cross_entropy_update(walks: Walks, log_w: Tensor) -> float:
    """The proposal in the family closest (KL) to the zero-variance one, q* ∝ 1[win]·p(path):
    maximising E_{q*}[log q(path)] = E_{q*}[U log q + (T − U) log(1 − q)] gives
    q = Σ y_i U_i / Σ y_i T_i with y_i = 1[win_i]·w_i, estimated from the current proposal."""
    y = torch.where(walks.won, log_w.exp(), torch.zeros_like(log_w))
    if not bool(walks.won.any()):
        raise UserError(
            "cross-entropy step: no walk reached the goal under the current proposal; "
            "start from a larger model.q or use more model.tune_paths"
        )
    return float((y * walks.ups).sum() / (y * walks.steps).sum())


def second_moment_update(game: GamblersRuin, walks: Walks, log_w: Tensor, q: float) -> float:
    """The proposal minimising the estimated second moment of y = 1[win]·w.

    For a candidate q', E_{q'}[1[win] w_{q'}²] = E_q[1[win] w_q w_{q'}], estimated from the walks
    drawn under q. Each term is p^U (1 − p)^D / (q'^U (1 − q')^D) times a constant, log-convex
    in q', so the estimate is convex and golden-section search finds its minimum."""
    if not bool(walks.won.any()):
        raise UserError(
            "second-moment step: no walk reached the goal under the current proposal; "
            "start from a larger model.q or use more model.tune_paths"
        )
    ups, downs = walks.ups[walks.won].double(), (walks.steps - walks.ups)[walks.won].double()
    base = log_w[walks.won] + ups * math.log(game.p) + downs * math.log1p(-game.p)

    def log_moment(x: float) -> float:
        return float(torch.logsumexp(base - ups * math.log(x) - downs * math.log1p(-x), 0))

    lo, hi = 1e-3, 1 - 1e-3
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):  # shrinks the bracket by 0.618^60 ≈ 3e-13
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        if log_moment(a) < log_moment(b):
            hi = b
        else:
            lo = a
    return (lo + hi) / 2
