"""flow1d through the framework vs the source notes' plain PyTorch loop, in one run.

The anchor is written afresh in the notes' style: a Dataset with __getitem__, a DataLoader
(batch 128, shuffled), Adam 5e-3, the notes' flow (exp weights, N(0, 1) base) and a held-out
loss every epoch. The framework runs `experiment=seed003_flow1d`: the same data sizes, epochs,
batch size and optimizer, with its default logging, checkpoints and progress bar, and once more
without callbacks or logger (Lightning's own loop around the same step). Both use one thread.
Prints wall times, their ratios and the KL gaps against the true mixture, then the
time-to-quality of `experiment=flow1d_fast` against the anchor's full run.

    python benchmarks/flow1d_vs_plain_loop.py [--epochs 500]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.data.seed003 import Seed003DataModule
from src.train import train
from tests.conftest import compose_config


class NotesFlow(nn.Module):
    """z = Σ e^{w_k} (Φ_k(x) − ½), base N(0, 1): the notes' model."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.mus = nn.Parameter(torch.randn(k))
        self.log_sigmas = nn.Parameter(torch.zeros(k))
        self.weight_logs = nn.Parameter(torch.zeros(k))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1)
        weights = self.weight_logs.exp().view(1, -1)
        components = torch.distributions.Normal(self.mus, self.log_sigmas.exp())
        z = (weights * (components.cdf(x) - 0.5)).sum(dim=1)
        dz_dx = (components.log_prob(x).exp() * weights).sum(dim=1)
        return torch.distributions.Normal(0.0, 1.0).log_prob(z) + dz_dx.log()


class ArrayDataset(Dataset):
    def __init__(self, array: torch.Tensor) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.array[index]


def plain_loop(data: Seed003DataModule, epochs: int) -> tuple[float, float]:
    """Returns (seconds, KL gap on the framework's test set)."""
    torch.manual_seed(0)
    model = NotesFlow(5)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    train_loader = DataLoader(ArrayDataset(data.train_x), batch_size=128, shuffle=True)
    val_loader = DataLoader(ArrayDataset(data.splits["val"]), batch_size=128, shuffle=True)
    start = time.perf_counter()
    for _ in range(epochs):
        for x in train_loader:
            loss = -model.log_prob(x).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            sum(-model.log_prob(x).mean().item() for x in val_loader)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        gap = (data.oracle_log_prob - model.log_prob(data.splits["test"])).mean().item()
    return seconds, gap


BARE = ("callbacks=none", "~logger", "+trainer.enable_progress_bar=false")


def framework(experiment: str, epochs: int | None, out: Path, *extra: str) -> dict[str, float]:
    overrides = [f"experiment={experiment}", *extra]
    overrides += [f"trainer.max_epochs={epochs}"] if epochs else []
    return train(compose_config(*overrides, output_dir=out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = Seed003DataModule(num_train=5000, num_val=1000, batch_size=128, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        plain_s, plain_gap = plain_loop(data, args.epochs)
        ours = framework("seed003_flow1d", args.epochs, Path(tmp) / "full")
        bare = framework("seed003_flow1d", args.epochs, Path(tmp) / "bare", *BARE)
        fast = framework("flow1d_fast", None, Path(tmp) / "fast")
    steps = args.epochs * math.ceil(len(data.train_x) / 128)
    print(f"\nworkload: {args.epochs} epochs x {steps // args.epochs} steps of 128 (1 thread)")
    print(f"{'':24}{'seconds':>9}{'ms/step':>9}{'kl_gap':>10}")
    print(f"{'plain loop (notes)':24}{plain_s:9.2f}{1e3 * plain_s / steps:9.3f}{plain_gap:10.4f}")
    for name, run in (("framework", ours), ("  without callbacks/logs", bare)):
        fit_s = run["fit_seconds"]
        print(f"{name:24}{fit_s:9.2f}{1e3 * fit_s / steps:9.3f}{run['test/kl_gap']:10.4f}")
    ratio, bare_ratio = ours["fit_seconds"] / plain_s, bare["fit_seconds"] / plain_s
    print(f"framework / plain loop: {ratio:.2f}x (goal <= 0.8x at an equal or better gap)")
    print(f"  without callbacks/logs: {bare_ratio:.2f}x")
    print(
        f"time to quality: flow1d_fast {fast['fit_seconds']:.2f} s to kl_gap "
        f"{fast['test/kl_gap']:.4f} vs plain loop {plain_s:.2f} s to {plain_gap:.4f} "
        f"({fast['fit_seconds'] / plain_s:.3f}x)"
    )


if __name__ == "__main__":
    main()
