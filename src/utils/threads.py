"""How many torch threads a run uses (`threads=auto` or an integer).

These models are tiny: a step of a few thousand numbers on several threads spends its time
waiting on the other threads, and ruinously so when another process keeps a core busy (a
1-second fit took 3–10 s). `auto` gives a run one thread unless its work per step (points per
step × parameters) is large enough for more threads to pay, which benchmarks/threads.py
measures; then it gets its share of the cores: all of them, or cores ÷ workers in a parallel
sweep (joblib's `n_jobs`), cores ÷ ranks under DDP.
"""

from __future__ import annotations

import os
from typing import Any

from src.utils.constraints import AnyOf, Integer, OneOf, check_declared

# Points per step × parameters from which every core pays. Measured (benchmarks/threads.py,
# 2 shared cores, load average 2–7 from other jobs): a step on 2 threads was slower than on one
# at every size tried, flow1d to RealNVP and EM at N = 10⁶, up to 3.9e10 (RealNVP, batch 2²⁰:
# 1.09x); the ratio falls with the work (RealNVP 23.8x at 3e8, 5.7x at 2.4e9, 1.8x at 9.7e9)
# and would reach 1 near 1e11. Below that, one thread.
WORK_THRESHOLD = 1e11

# `threads`: torch threads per process, chosen by the policy below (auto) or given
THREADS = AnyOf(OneOf("auto"), Integer(low=1))


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def check_threads(value: Any) -> str | int:
    """The run's `threads` setting (a top-level one: no class declares it), as declared."""
    check_declared({"threads": THREADS}, {"threads": value}, "")
    return value


def threads_for(work: float, cores: int, n_jobs: int = 1, world_size: int = 1) -> int:
    """Threads for one process: 1 for small work, else its share of the cores."""
    if work < WORK_THRESHOLD:
        return 1
    return max(1, cores // max(1, n_jobs * world_size))


def sweep_workers(n_jobs: Any, cores: int) -> int:
    """Processes a joblib sweep runs at once: joblib's n_jobs (-1: all cores, -2: all but one)."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        return 1
    return n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)
