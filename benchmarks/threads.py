"""How many torch threads pay: one training step (or EM step) per model × batch size × threads.

For each model and batch it times a step (forward, backward, Adam; for `gmm-em` one full EM
step through `EMFit`, as `fit=em` runs it) on 1 thread and on every core, median of several
blocks, and prints the work (points per step × parameters) and the ratio t(all cores) /
t(1 thread). The thread rule in src/utils/threads.py (`WORK_THRESHOLD`) is the work above which
the ratio is below 1.
With `--busy` a `python -c "while True: pass"` process keeps one core busy meanwhile, as
another user's job would.

    python benchmarks/threads.py [--batches 128 1024 8192 65536] [--busy]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.fits.em import EMFit
from src.models.dmol import DiscretizedLogisticMixture
from src.models.flow1d import MixtureCDFFlow1d
from src.models.gmm import GaussianMixture
from src.models.histogram import Histogram
from src.models.realnvp import RealNVP
from src.utils.threads import WORK_THRESHOLD, available_cores, threads_for


def bins(n: int) -> torch.Tensor:
    return torch.randint(0, 100, (n,))


def points_f64(n: int) -> torch.Tensor:
    return torch.randn(n, 2, dtype=torch.float64)


def models() -> dict[str, tuple[Callable[[], torch.nn.Module], Callable[[int], torch.Tensor]]]:
    return {
        "flow1d": (lambda: MixtureCDFFlow1d(5), lambda n: torch.rand(n)),
        "histogram d100": (lambda: Histogram(100), bins),
        "dmol d100": (lambda: DiscretizedLogisticMixture(100, 4), bins),
        "gmm K8 D2": (lambda: GaussianMixture(8, 2), lambda n: torch.randn(n, 2)),
        "realnvp": (lambda: RealNVP(2), lambda n: torch.randn(n, 2)),
        "gmm-em K8 D2 f64": (lambda: GaussianMixture(8, 2).double(), points_f64),
    }


@torch.no_grad()
def em_update(fit: EMFit, x: torch.Tensor) -> None:
    """One EM update on x as one full batch, as `EMFit.training_step` runs it (`fit=em`): the
    batch's statistics in float64 with its count n, then `update`."""
    stats = fit.batch_statistics(x.to(fit.compute_dtype))
    stats = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in stats.items()}
    stats["n"] = torch.tensor(float(len(x)), dtype=torch.float64)
    fit.update({k: v.to(fit.compute_dtype) for k, v in stats.items()})


def step_time(make, sample, batch: int, threads: int, budget: float) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, x = make(), sample(batch)
    if isinstance(model, GaussianMixture) and x.dtype == torch.float64:
        fit = EMFit(model, seed=0)
        fit.prepare(x, resuming=False)  # restart 0's initialisation, as `fit=em` starts

        def step() -> None:
            em_update(fit, x)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step() -> None:
            loss = -model.log_prob(x).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    for _ in range(2):
        step()
    blocks = []
    for _ in range(5):
        begin, n = time.perf_counter(), 0
        while n == 0 or time.perf_counter() - begin < budget / 5:
            step()
            n += 1
        blocks.append((time.perf_counter() - begin) / n)
    return statistics.median(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024, 8192, 65536])
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    parser.add_argument("--models", nargs="+", help="only these (names as printed)")
    args = parser.parse_args()
    cores = available_cores()
    busy = None
    if args.busy:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        load = os.getloadavg()[0]
        print(
            f"torch {torch.__version__}, {cores} cores, load average {load:.1f}"
            f"{', one core kept busy' if busy else ''}"
        )
        many = f"ms, {cores} threads"
        print(f"| model | params | batch | work | ms, 1 thread | {many} | ratio | auto |")
        print("|---|---|---|---|---|---|---|---|")
        for name, (make, sample) in models().items():
            if args.models and name not in args.models:
                continue
            params = sum(p.numel() for p in make().parameters())
            for batch in args.batches:
                one = step_time(make, sample, batch, 1, args.budget)
                many = step_time(make, sample, batch, cores, args.budget)
                work = batch * params
                print(
                    f"| {name} | {params} | {batch} | {work:.1e} | {1e3 * one:.3f} | "
                    f"{1e3 * many:.3f} | {many / one:.2f} | {threads_for(work, cores)} |",
                    flush=True,
                )
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print(f"rule: threads = all cores when work >= {WORK_THRESHOLD:.0e}, else 1")


if __name__ == "__main__":
    main()
