"""1-D discrete data: the learned pmf as bars over empirical frequencies and the truth; samples."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from src.plots.bars import bars


def _n_bins(model, datamodule) -> int:
    return int(getattr(model, "d", None) or getattr(datamodule, "n_bins", 0)) or int(
        datamodule.train_x.max().item() + 1
    )


def _frequencies(x: torch.Tensor, d: int) -> torch.Tensor:
    return torch.bincount(x.cpu().long(), minlength=d).double() / max(len(x), 1)


def _overlay(ax, datamodule, d: int, splits: tuple[str, ...]) -> None:
    """Empirical frequencies of `splits` as steps, the truth's masses as dots."""
    bins = torch.arange(d)
    for split in splits:
        freq = _frequencies(datamodule.splits[split], d)
        ax.step(bins, freq, where="mid", lw=1.2, label=f"{split} frequencies")
    truth = getattr(datamodule, "truth", None)
    if truth is not None:
        ax.plot(bins, truth.log_prob(bins).exp(), "k.", ms=5, label="truth")


@torch.no_grad()
def fit(model, datamodule) -> dict[str, Figure]:
    """The learned pmf (bars) over the train/test frequencies and, if known, the truth."""
    d = _n_bins(model, datamodule)
    device = next(model.parameters()).device
    pmf = model.log_prob(torch.arange(d, device=device)).exp().cpu()
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    bars(ax, pmf, alpha=0.5, label="model pmf")
    _overlay(ax, datamodule, d, ("train", "test"))
    ax.set(xlabel="x", ylabel="probability", title="learned pmf")
    ax.legend()
    return {"pmf": fig}


@torch.no_grad()
def samples(model, datamodule, n: int = 20000) -> dict[str, Figure]:
    """Frequencies of model samples over the test frequencies and, if known, the truth."""
    d = _n_bins(model, datamodule)
    drawn = _frequencies(model.sample(n), d)
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    bars(ax, drawn, alpha=0.5, label=f"{n} model samples")
    _overlay(ax, datamodule, d, ("test",))
    ax.set(xlabel="x", ylabel="frequency", title="samples")
    ax.legend()
    return {"samples": fig}
