"""The objective of a closed-form fit (log-likelihood, ELBO) against its updates, readable.

An ELBO of −6.61 that converges to 1e-9 draws as a flat line with an offset axis ("1e-11 −6.61…");
its distance to the final value on a log scale shows every update, including the last ones.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def objective_curve(trace: list[float], name: str) -> Figure:
    values = np.asarray(trace, dtype=float)
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    left, right = fig.subplots(1, 2)
    steps = np.arange(1, len(values) + 1)
    left.plot(steps, values, "o-", ms=3)
    left.ticklabel_format(useOffset=False)
    left.set(xlabel="update", ylabel=f"{name} (per point)", title=f"{name}, best restart")
    gap = values[-1] - values[:-1] if len(values) > 1 else np.array([])
    if gap.size and (gap > 0).any():
        shown = gap > 0
        right.semilogy(steps[:-1][shown], gap[shown], "o-", ms=3)
    right.set(xlabel="update", ylabel=f"final {name} − {name}", title="distance to the final value")
    return fig
