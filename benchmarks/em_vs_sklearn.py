"""EM per-iteration time and final log-likelihood: `fit=em` as a user runs it, against
scikit-learn's GaussianMixture (and pomegranate's GeneralMixtureModel, when installed).

Ours is the command line, run in a child process for each timing:

    python -m src.train model=gmm fit=em data=mog2d data.n_train=N model.n_components=8
        model.covariance_type=full model.reg_covar=1e-6 fit.n_init=1 fit.tol=1e-300
        fit.max_iter=M fit.precision=64 trainer.max_epochs=M ~logger callbacks=none

(8 Gaussians on a ring, D = 2, full covariances, float64; `threads: auto`, the project's rule).
`fit.tol` must be positive; at 1e-300 a run stops before M steps only where the mean
log-likelihood repeats exactly in float64 (a fixed point), and M is then the number of steps it
made (`train/iterations` in metrics.json, the same in every repeat). Its time is the run's
`fit_seconds` from metrics.json, the wall time of `trainer.fit`: per epoch one EM step over the
N training points, the validation pass over data.n_val = 2000 points and the `last.ckpt` write;
once per run the k-means++ initialisation and Lightning's set-up. Seconds per iteration =
(fit_seconds(M) − fit_seconds(1)) / (M − 1), each the best of three runs, which removes the
per-run cost and keeps the per-epoch one.

scikit-learn fits the same training split (read back from the 1-step run with
`src.build.rebuild`), in float64, from that run's parameters after its one EM step
(weights_init/means_init/precisions_init), with tol = 0: M − 1 iterations end where our M-step
run ends, and `ours − sklearn` is our M-step model's mean log-likelihood (`load_run`) minus
scikit-learn's `score` on the training points. Its seconds per iteration are
(T(M − 1) − T(1)) / (M − 2), best of three each, in this process. pomegranate, from the same
start with tol = −inf (its check is `improvement < tol`), is timed the same way; it adds no
reg_covar, so its log-likelihood may differ in the last digits. It is in the `bench` extra
(`pip install -e .[bench]`); without it its columns are left empty.

    .venv/bin/python benchmarks/em_vs_sklearn.py [--sizes 10000 100000 1000000]
        [--iterations 20] [--device cuda]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
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

from src.build import load_run, rebuild

K, D, REG, REPEATS = 8, 2, 1e-6, 3
TOL = 1e-300  # fit.tol must be > 0: a run stops early only where the log-likelihood is fixed
ROOT = Path(__file__).resolve().parents[1]


def train_run(n: int, iterations: int, log_dir: Path, device: str) -> tuple[Path, float, int]:
    """One `python -m src.train` run of at most `iterations` EM steps: its run directory,
    fit_seconds and the number of steps it made."""
    command = [
        sys.executable, "-m", "src.train", "model=gmm", "fit=em", "data=mog2d",
        f"data.n_train={n}", f"model.n_components={K}", "model.covariance_type=full",
        f"model.reg_covar={REG}", "fit.n_init=1", f"fit.tol={TOL}",
        f"fit.max_iter={iterations}", "fit.precision=64", f"trainer.max_epochs={iterations}",
        "~logger", "callbacks=none", f"paths.log_dir={log_dir}",
    ]  # fmt: skip
    if device == "cuda":
        command.append("trainer=gpu")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    (metrics_file,) = log_dir.glob("*/runs/*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    return metrics_file.parent, metrics["fit_seconds"], int(metrics["train/iterations"])


def ours(n: int, iterations: int, tmp: Path, device: str) -> tuple[float, int, Path, Path]:
    """Seconds per EM step of `fit=em`, the steps M it made (`iterations`, or fewer where the
    log-likelihood stopped changing in float64), and the run directories after 1 and M steps."""
    best = {}
    for cap in (1, iterations):
        runs = [train_run(n, cap, tmp / f"n{n}-m{cap}-{r}", device) for r in range(REPEATS)]
        steps = {made for _, _, made in runs}
        if len(steps) != 1:
            raise RuntimeError(f"N = {n}: repeated runs made {sorted(steps)} EM steps")
        best[cap] = (runs[-1][0], min(seconds for _, seconds, _ in runs), steps.pop())
    (one_dir, one, _), (many_dir, many, m) = best[1], best[iterations]
    if m < 3:
        raise RuntimeError(f"N = {n}: the fit converged after {m} EM steps; 3 are needed")
    return (many - one) / (m - 1), m, one_dir, many_dir


def sklearn_fit(x: np.ndarray, init: dict, iterations: int) -> tuple[float, SkGaussianMixture]:
    """Best of three fits' wall time (the machine may be shared) and the fitted model."""
    times = []
    for _ in range(REPEATS):
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
    for _ in range(REPEATS):
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


def run(n: int, iterations: int, device: str, tmp: Path) -> None:
    our_per_iter, iterations, one_dir, many_dir = ours(n, iterations, tmp, device)
    first = rebuild(one_dir)  # the training split and the parameters after one EM step
    x = first.datamodule.train_x.double().cpu()
    gmm = first.model.double().cpu()
    with torch.no_grad():
        init = {
            "weights_init": gmm.logits.softmax(-1).numpy(),
            "means_init": gmm.loc.numpy().copy(),
            "precisions_init": np.linalg.inv(gmm.covariance().numpy()),
        }
        final, _ = load_run(many_dir)
        our_ll = float(final.double().cpu().log_prob(x).mean())
    x_np = x.numpy()
    t_one, _ = sklearn_fit(x_np, init, 1)
    t_all, sk = sklearn_fit(x_np, init, iterations - 1)
    sk_per_iter = (t_all - t_one) / (iterations - 2)
    sk_ll = sk.score(x_np)
    pg = "| — | — | — "
    if importlib.util.find_spec("pomegranate") is not None and device == "cpu":
        pg_one, _ = pomegranate_fit(x, init, 1)
        pg_all, pg_ll = pomegranate_fit(x, init, iterations - 1)
        pg_per_iter = (pg_all - pg_one) / (iterations - 2)
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
    parser.add_argument("--iterations", type=int, default=20, help="M, at least 3")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if args.iterations < 3:
        parser.error("--iterations must be at least 3")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f}; ours through `python -m src.train` (threads=auto) on "
        f"{args.device}"
    )
    print(
        "| N | iters | sklearn ms/iter | ours ms/iter | ours/sklearn | sklearn mean LL "
        "| ours − sklearn | pomegranate ms/iter | ours/pomegranate | pomegranate − sklearn |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            run(n, args.iterations, args.device, Path(tmp))


if __name__ == "__main__":
    main()
