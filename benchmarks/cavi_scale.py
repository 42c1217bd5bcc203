"""Seconds per CAVI sweep of the earthquake mixture against scikit-learn's variational GMM.

    python benchmarks/cavi_scale.py [--sizes 10000 100000 1000000] [--k 8] [--threads 1]

For each N: one CAVI sweep (`src.fits.cavi_updates.sweep`, one restart, float64, the step
`fit=cavi` runs; on CUDA too when available, float32 and float64) against one
iteration of `sklearn.mixture.BayesianGaussianMixture(covariance_type="diag")` on the same
locations. sklearn's per-iteration time is the slope between fits of two `max_iter` values, so
its initialisation is not counted. Also the peak resident-memory growth per N·K element (the
sweep holds a few [N, K] arrays). The goal is a ratio ≤ 0.1 at N = 10⁶.
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture

from src.data.earthquake import EarthquakeTruth
from src.fits import cavi_updates as cavi
from src.models import earthquake as eq
from src.utils.kmeans import kmeans_plus_plus


def events(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, eq.Prior]:
    torch.manual_seed(seed)
    prior = eq.make_prior(k, None, tau=1.0, nu=[0.0, 0.0], rho=100.0, alpha=4.0, beta=0.4)
    means = 10 * torch.randn(k, 2, dtype=torch.float64)
    rates = torch.distributions.Gamma(4.0, 0.4).sample((k,)).double()
    events, _ = EarthquakeTruth(prior.log_pi, means, prior.tau, rates).sample(n)
    return events[:, :2], events[:, 2].long(), prior


def seconds_per_sweep(x, s, prior, device: str, dtype: torch.dtype, repeats: int) -> float:
    x, s = x.to(device, dtype), s.to(device)
    prior = prior._replace(log_pi=prior.log_pi.to(device, dtype), nu=prior.nu.to(device, dtype))
    k = len(prior.log_pi)
    generator = torch.Generator(device=device).manual_seed(0)
    f, constant = eq.features(x, s), eq.data_constant(x, s, prior)
    q = cavi.initial_posterior(f, kmeans_plus_plus(x, k, generator), prior)
    q, elbo = cavi.sweep(f, constant, q, prior)  # warm-up
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        q, elbo = cavi.sweep(f, constant, q, prior)
    float(elbo.max())  # the per-sweep convergence check syncs once, as in training
    sync()
    return (time.perf_counter() - start) / repeats


def sklearn_seconds_per_iteration(
    x: torch.Tensor, k: int, iters: tuple[int, int], repeats: int
) -> float:
    """Slope of the fit time between two `max_iter` values (best of `repeats` each)."""
    times = []
    for max_iter in iters:
        best = float("inf")
        for _ in range(repeats):
            model = BayesianGaussianMixture(
                n_components=k, covariance_type="diag", max_iter=max_iter, tol=0.0, random_state=0
            )
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x.numpy())
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return (times[1] - times[0]) / (iters[1] - iters[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"K = {args.k}, torch threads = {torch.get_num_threads()}")
    header = (
        f"{'N':>9} {'CAVI s/sweep':>13} {'sklearn s/iter':>15} {'ratio':>7} {'bytes/(N·K)':>12}"
    )
    cuda = torch.cuda.is_available()
    print(header + ("  CUDA f64 s/sweep  CUDA f32 s/sweep" if cuda else ""))
    for n in sorted(args.sizes):
        x, s, prior = events(n, args.k)
        repeats = max(3, min(50, int(2e6 // n)))
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cavi = seconds_per_sweep(x, s, prior, "cpu", torch.float64, repeats)
        grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
        big = n >= 1_000_000
        skl = sklearn_seconds_per_iteration(x, args.k, (2, 5) if big else (2, 12), 1 if big else 3)
        line = f"{n:>9} {cavi:>13.4g} {skl:>15.4g} {cavi / skl:>7.3f} {grown / (n * args.k):>12.1f}"
        if cuda:
            gpu = [
                seconds_per_sweep(x, s, prior, "cuda", dt, 20)
                for dt in (torch.float64, torch.float32)
            ]
            line += "".join(f"  {t:>16.3g}" for t in gpu)
        print(line, flush=True)
    print("ratio = CAVI seconds per sweep / sklearn seconds per iteration (goal ≤ 0.1 at 10⁶);")
    print("bytes/(N·K): peak RSS growth during the sweeps (0 once an earlier peak covers it)")


if __name__ == "__main__":
    main()
