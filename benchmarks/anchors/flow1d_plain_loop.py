"""The source notes' plain PyTorch loop for flow1d, as its own script (the anchor of
benchmarks/flow1d_vs_plain_loop.py, which times it as a subprocess, start to exit).

Written afresh in the notes' style: a Dataset with __getitem__, a DataLoader (batch 128,
shuffled), Adam 5e-3, the notes' flow (exp weights, N(0, 1) base) and a held-out loss every
epoch, on one thread; the data are the framework's (`experiment=seed003_flow1d`: 5 000 training
and 1 000 validation points from the notes' generator). Prints `kl_gap <value>` on the
framework's test set.

    python benchmarks/anchors/flow1d_plain_loop.py [--epochs 500]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from src.data.seed003 import Seed003DataModule


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = Seed003DataModule(num_train=5000, num_val=1000, batch_size=128, seed=0)
    torch.manual_seed(0)
    model = NotesFlow(5)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    train_loader = DataLoader(ArrayDataset(data.train_x), batch_size=128, shuffle=True)
    val_loader = DataLoader(ArrayDataset(data.splits["val"]), batch_size=128, shuffle=True)
    for _ in range(args.epochs):
        for x in train_loader:
            loss = -model.log_prob(x).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            sum(-model.log_prob(x).mean().item() for x in val_loader)
    with torch.no_grad():
        gap = (data.oracle_log_prob - model.log_prob(data.splits["test"])).mean().item()
    print(f"kl_gap {gap}")
    print(f"steps_per_epoch {len(train_loader)}")


if __name__ == "__main__":
    main()
