"""EM per-iteration time and final log-likelihood: densitylab vs two anchors, scikit-learn's
GaussianMixture and pomegranate's GeneralMixtureModel (the PyTorch mixture library).

Same data (8 Gaussians on a ring, D = 2, float64), same initial parameters (our k-means++
initialisation handed to scikit-learn as weights_init/means_init/precisions_init and to
pomegranate as its components' means, covariances and priors), full covariances, the same
number of iterations (tol = 0; pomegranate's tol = −inf, as its check is `improvement < tol`).
An anchor's time per iteration is (T(m iterations) − T(1 iteration)) / (m − 1), which removes
its set-up cost; every time is the best of three runs. pomegranate adds no reg_covar to the
covariances (1e-6 here): its log-likelihood may differ in the last digits. pomegranate is in
the `bench` extra (`pip install -e .[bench]`); without it its columns are left empty.

    .venv/bin/python benchmarks/em_vs_sklearn.py [--sizes 10000 100000 1000000] [--device cuda]
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from src.data.truths_2d import gaussian_mixture
from src.models.gmm import GaussianMixture

K, D, REG = 8, 2, 1e-6


def sklearn_fit(x: np.ndarray, init: dict, iterations: int) -> tuple[float, SkGaussianMixture]:
    """Best of three fits' wall time (the machine may be shared) and the fitted model."""
    times = []
    for _ in range(3):
        sk = SkGaussianMixture(
            K,
            covariance_type="full",
            reg_covar=REG,
            tol=0.0,
            max_iter=iterations,
            init_params="random_from_data",  # cheap set-up: its result is overridden by init
            **init,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            sk.fit(x)
        times.append(time.perf_counter() - start)
    return min(times), sk


def pomegranate_fit(x: torch.Tensor, init: dict, iterations: int) -> tuple[float, float]:
    """Best of three fits' wall time and the mean log-likelihood after the last one."""
    from pomegranate.distributions import Normal
    from pomegranate.gmm import GeneralMixtureModel

    covs = np.linalg.inv(init["precisions_init"])
    times = []
    for _ in range(3):
        components = [
            Normal(torch.tensor(m), torch.tensor(c), covariance_type="full")
            for m, c in zip(init["means_init"], covs, strict=True)
        ]
        model = GeneralMixtureModel(
            components,
            priors=torch.tensor(init["weights_init"]),
            max_iter=iterations,
            tol=float("-inf"),
        )
        start = time.perf_counter()
        model.fit(x)
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        return min(times), float(model.log_probability(x).mean())


def ours(x: torch.Tensor, start: dict, iterations: int) -> tuple[float, float]:
    gmm = GaussianMixture(K, D, reg_covar=REG).double().to(x.device)
    gmm.load_state_dict(start)
    gmm.em_step(x)  # warm-up (allocator, kernels), then restore the start
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    times = []
    for _ in range(3):  # best of three runs from the same start, as for scikit-learn
        gmm.load_state_dict(start)
        sync()
        begin = time.perf_counter()
        for _ in range(iterations):
            gmm.em_step(x)
        sync()
        times.append(time.perf_counter() - begin)
    per_iter = min(times) / iterations
    with torch.no_grad():
        return per_iter, float(gmm.log_prob(x).mean())


def run(n: int, iterations: int, device: str) -> None:
    torch.manual_seed(n)
    x = gaussian_mixture(K, D).sample((n,))
    gmm = GaussianMixture(K, D, reg_covar=REG).double()
    gmm.init_from_data(x, torch.Generator().manual_seed(0))
    start = {k: v.clone().to(device) for k, v in gmm.state_dict().items()}
    with torch.no_grad():
        cov = gmm.covariance().numpy()
        init = {
            "weights_init": gmm.logits.softmax(-1).numpy(),
            "means_init": gmm.loc.numpy().copy(),
            "precisions_init": np.linalg.inv(cov),
        }
    x_np = x.numpy()
    t_one, _ = sklearn_fit(x_np, init, 1)
    t_all, sk = sklearn_fit(x_np, init, iterations)
    sk_per_iter = (t_all - t_one) / (iterations - 1)
    our_per_iter, our_ll = ours(x.to(device), start, iterations)
    sk_ll = sk.score(x_np)
    pg = "| — | — | — "
    if importlib.util.find_spec("pomegranate") is not None and device == "cpu":
        pg_one, _ = pomegranate_fit(x, init, 1)
        pg_all, pg_ll = pomegranate_fit(x, init, iterations)
        pg_per_iter = (pg_all - pg_one) / (iterations - 1)
        pg = (
            f"| {1e3 * pg_per_iter:>10.2f} | {our_per_iter / pg_per_iter:>6.3f} "
            f"| {pg_ll - sk_ll:+.1e} "
        )
    print(
        f"| {n:>9,} | {iterations:>5} | {1e3 * sk_per_iter:>10.2f} | {1e3 * our_per_iter:>10.2f} | "
        f"{our_per_iter / sk_per_iter:>6.3f} | {sk_ll:.9f} | {our_ll - sk_ll:+.1e} {pg}|",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(
        "| N | iters | sklearn ms/iter | ours ms/iter | ours/sklearn | sklearn mean LL "
        "| ours − sklearn | pomegranate ms/iter | ours/pomegranate | pomegranate − sklearn |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        run(n, args.iterations, args.device)


if __name__ == "__main__":
    main()
