"""EM at scale: memory and time per EM step, mini-batch against full batch and scikit-learn.

    .venv/bin/python benchmarks/em_scale.py [--large 10000000] [--batch 1000000] [--n 1000000]

K = 8, D = 2, full covariances, float64.
1. N = `--large` points fitted through the command line as a user runs it
   (`python -m src.train model=gmm fit=em data=mog2d data.n_train=N data.batch_size=B`):
   the child's peak resident memory and seconds per EM step (fit_seconds / steps). scikit-learn
   would hold N×K responsibilities and log-densities, several N×K arrays of doubles.
2. N = `--n` in one process, from the same start (`EMFit`'s restart 0): seconds per EM step of
   `EMFit.batch_statistics` + `update`, summed as `training_step` sums them, over the whole
   array (full batch) and over batches of N/10 (mini-batch: the same sums, in parts)
   against scikit-learn's `GaussianMixture` (time per iteration = (T(m) − T(1)) / (m − 1)), each
   the best of three; the final log-likelihoods agree.
3. The arithmetic floor of one EM step: per point and component the E-step takes 2P flops for
   the joint log-densities (one [B, P] × [P, K] product, P = 6 quadratic features), 4 for the
   normalisation, one exp, and 2P for the statistics (P = 1 + D + D(D+1)/2). The script measures
   this machine's exp and multiply-add rates and prints the floor and our distance from it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from src.data.truths_2d import gaussian_mixture
from src.fits.em import EMFit
from src.models.gmm import GaussianMixture

K, D, REG, STEPS = 8, 2, 1e-6, 8
P = 1 + D + D * (D + 1) // 2
ROOT = Path(__file__).resolve().parents[1]


def large_run(n: int, batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, "-m", "src.train", "model=gmm", "fit=em", "data=mog2d",
            f"data.n_train={n}", f"data.batch_size={batch}", "data.n_val=10000",
            "data.n_test=10000", f"fit.max_iter={STEPS}", "fit.tol=1e-12",
            f"trainer.max_epochs={STEPS}", "callbacks=none", "~logger", f"paths.log_dir={tmp}",
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - start
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        (metrics_file,) = Path(tmp).glob("*/runs/*/metrics.json")
        metrics = json.loads(metrics_file.read_text())
    steps = metrics["train/iterations"]
    print(
        f"N = {n:,} in batches of {batch:,}: peak resident memory {peak_gib:.2f} GiB "
        f"(goal < 4 GiB; the data alone {n * D * 4 / 2**30:.2f} GiB in float32), "
        f"{metrics['fit_seconds'] / steps:.2f} s per EM step ({steps:.0f} steps, "
        f"process start to exit {wall:.0f} s), test/kl_gap {metrics['test/kl_gap']:.4f}"
    )


@torch.no_grad()
def em_update(fit: EMFit, x: torch.Tensor, batch: int) -> None:
    """One EM update as `fit=em` runs an epoch (`EMFit.training_step`): each batch's statistics
    in float64 with its count n, summed, then `update`."""
    sums = None
    for part in x.split(batch):
        stats = fit.batch_statistics(part.to(fit.compute_dtype))
        stats = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in stats.items()}
        stats["n"] = torch.tensor(float(len(part)), dtype=torch.float64)
        sums = stats if sums is None else {k: sums[k] + v for k, v in stats.items()}
    fit.update({k: v.to(fit.compute_dtype) for k, v in sums.items()})


def ours(fit: EMFit, x: torch.Tensor, start: dict, batch: int) -> tuple[float, float]:
    times = []
    for _ in range(3):
        fit.model.load_state_dict(start)
        begin = time.perf_counter()
        for _ in range(STEPS):
            em_update(fit, x, batch)
        times.append((time.perf_counter() - begin) / STEPS)
    with torch.no_grad():
        return min(times), float(fit.model.log_prob(x.to(fit.compute_dtype)).mean())


def sklearn_per_iteration(x: np.ndarray, init: dict) -> tuple[float, float]:
    def fit(iterations: int) -> tuple[float, SkGaussianMixture]:
        best, model = float("inf"), None
        for _ in range(3):
            model = SkGaussianMixture(
                K, covariance_type="full", reg_covar=REG, tol=0.0, max_iter=iterations,
                init_params="random_from_data", **init,
            )  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                begin = time.perf_counter()
                model.fit(x)
            best = min(best, time.perf_counter() - begin)
        return best, model

    one, _ = fit(1)
    many, model = fit(STEPS + 1)
    return (many - one) / STEPS, model.score(x)


def floor_seconds(n: int) -> float:
    """This machine's time for N·K exps plus (4P + 4)·N·K multiply-adds, at measured rates."""
    a = torch.randn(2**16, K, dtype=torch.float64)
    phi, w = torch.randn(2**16, P, dtype=torch.float64), torch.randn(P, K, dtype=torch.float64)
    begin = time.perf_counter()
    for _ in range(50):
        torch.exp(a)
    exp_rate = 50 * a.numel() / (time.perf_counter() - begin)
    begin = time.perf_counter()
    for _ in range(50):
        phi @ w
    flop_rate = 50 * 2 * phi.shape[0] * P * K / (time.perf_counter() - begin)
    return n * K / exp_rate + n * K * (4 * P + 4) / flop_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--batch", type=int, default=1_000_000)
    parser.add_argument("--n", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    large_run(args.large, args.batch)

    torch.manual_seed(0)
    x = gaussian_mixture(K, D).sample((args.n,))
    fit = EMFit(GaussianMixture(K, D, reg_covar=REG), seed=0)
    fit.prepare(x, resuming=False)  # restart 0's initialisation, as `fit=em` starts
    gmm = fit.model
    start = {k: v.clone() for k, v in gmm.state_dict().items()}
    with torch.no_grad():
        init = {
            "weights_init": gmm.logits.softmax(-1).numpy(),
            "means_init": gmm.loc.numpy().copy(),
            "precisions_init": np.linalg.inv(gmm.covariance().numpy()),
        }
    full, ll_full = ours(fit, x, start, len(x))
    mini, ll_mini = ours(fit, x, start, len(x) // 10)
    sk, ll_sk = sklearn_per_iteration(x.double().numpy(), init)
    floor = floor_seconds(args.n)
    print(f"N = {args.n:,}, {STEPS} EM steps from the same start, seconds per step:")
    print("| path | ms per step | / scikit-learn | / full batch | / floor | mean LL − sklearn |")
    print("|---|---|---|---|---|---|")
    for name, seconds, ll in (("full batch", full, ll_full), ("mini-batch N/10", mini, ll_mini)):
        print(
            f"| {name} | {1e3 * seconds:.1f} | {seconds / sk:.3f} | {seconds / full:.2f} | "
            f"{seconds / floor:.1f} | {ll - ll_sk:+.1e} |"
        )
    print(f"| scikit-learn | {1e3 * sk:.1f} | 1 | | {sk / floor:.1f} | 0 |")
    print(f"arithmetic floor on this machine: {1e3 * floor:.1f} ms per step")


if __name__ == "__main__":
    main()
