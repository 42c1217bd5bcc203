"""The Fiji earthquakes: our CAVI fit against scikit-learn on the same data and split, and the
K study's curves.

    python benchmarks/fiji_peer_check.py [--run <experiment=fiji_quakes run dir>] [--map PNG]
    python benchmarks/fiji_peer_check.py --k-curve <experiment=fiji_quakes_k sweep dir>

Peer check (the run's own data split, rebuilt from its saved config; default run: the latest
under outputs/fiji_quakes/runs/):
- `BayesianGaussianMixture` (full covariances, same K) on the training locations: the adjusted
  Rand index between its clusters and our MAP clusters on the training events;
- `GaussianMixture` (full, same K) on the training locations plus an independent Poisson per
  cluster, λ_k = Σ_n r_nk S_n / Σ_n r_nk (its responsibilities): held-out NLL of location and
  count on the test split beside our posterior predictive's, and the location-only NLLs. Also
  the GaussianMixture + Poisson whose K (1 … 10) is chosen on the validation split.
`--map` saves the run's map (and rate intervals beside it, `<name>_rates.png`).

`--k-curve` reads every job of the sweep (its metrics.json and K), prints K, train/elbo and
test/nll, names the K each prefers (lowest held-out NLL, highest ELBO) and writes
`k_curve.png` and `k_curve.md` into the sweep directory.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def kept_elbo(run: Path, metrics: dict) -> float:
    """The ELBO per event of the restart the run kept. metrics.json's train/elbo is the last
    update's, i.e. the last restart's, which need not be the kept (best) one."""
    ckpt = run / "checkpoints" / "last.ckpt"
    if ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        best = state.get("sufficient_stats_fit", {}).get("best_objective")
        if best is not None:
            return float(best)
    return float(metrics["train/elbo"])


def k_curve(sweep: Path) -> dict:
    from omegaconf import OmegaConf

    rows = []
    for metrics_file in sorted(sweep.glob("*/metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        cfg = OmegaConf.load(metrics_file.parent / ".hydra" / "config.yaml")
        if metrics.get("status", "completed") != "completed":
            continue
        rows.append(
            {
                "K": int(cfg.model.n_components),
                "elbo": kept_elbo(metrics_file.parent, metrics),
                "test_nll": float(metrics["test/nll"]),
                "val_nll": float(metrics["val/nll"]),
            }
        )
    if not rows:
        raise SystemExit(f"error: no finished jobs under {sweep}")
    rows.sort(key=lambda r: r["K"])
    by_nll = min(rows, key=lambda r: r["test_nll"])["K"]
    by_val = min(rows, key=lambda r: r["val_nll"])["K"]
    by_elbo = max(rows, key=lambda r: r["elbo"])["K"]
    lines = [
        "| K | ELBO of the kept restart (nats/event) | val/nll | test/nll | |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        mark = " ".join(
            m
            for m, k in (("← test/nll", by_nll), ("← ELBO", by_elbo), ("← val/nll", by_val))
            if k == r["K"]
        )
        lines.append(
            f"| {r['K']} | {r['elbo']:.4f} | {r['val_nll']:.4f} | {r['test_nll']:.4f} | {mark} |"
        )
    summary = (
        f"K chosen by held-out NLL (test/nll): {by_nll}; by val/nll: {by_val}; "
        f"the ELBO prefers K = {by_elbo}."
    )
    text = "\n".join([*lines, "", summary])
    print(text)
    (sweep / "k_curve.md").write_text(text + "\n")

    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.add_subplot()
    ks = [r["K"] for r in rows]
    ax.plot(ks, [-r["elbo"] for r in rows], "o-", label="−ELBO per event (train)")
    ax.plot(ks, [r["test_nll"] for r in rows], "s-", label="held-out NLL (test)")
    ax.plot(ks, [r["val_nll"] for r in rows], "^:", lw=1, label="NLL (validation)")
    ax.axvline(by_nll, color="C1", ls="--", lw=1)
    ax.axvline(by_elbo, color="C0", ls=":", lw=1)
    ax.set(
        xlabel="K (clusters)",
        ylabel="nats per event",
        xticks=ks,
        title=f"Fiji earthquakes, CAVI with learned π, τ: test NLL picks K = {by_nll}, "
        f"ELBO K = {by_elbo}",
    )
    ax.title.set_fontsize("small")
    ax.legend(fontsize="small")
    fig.savefig(sweep / "k_curve.png", dpi=110)
    print(f"wrote {sweep / 'k_curve.png'} and {sweep / 'k_curve.md'}")
    return {"by_nll": by_nll, "by_elbo": by_elbo, "rows": rows}


def gmm_poisson_log_prob(gmm, rates: np.ndarray, x: np.ndarray, s: np.ndarray) -> np.ndarray:
    """log Σ_k π_k N(x; μ_k, Σ_k) Poisson(s; λ_k) [N]."""
    from scipy.special import gammaln, logsumexp
    from scipy.stats import multivariate_normal

    per_k = np.stack(
        [
            np.log(w) + multivariate_normal(m, c).logpdf(x)
            + s * np.log(lam) - lam - gammaln(s + 1)
            for w, m, c, lam in zip(gmm.weights_, gmm.means_, gmm.covariances_, rates)
        ],
        axis=1,
    )  # fmt: skip
    return logsumexp(per_k, axis=1)


def fit_gmm_poisson(k: int, x: np.ndarray, s: np.ndarray, seed: int):
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(k, covariance_type="full", n_init=8, random_state=seed, max_iter=1000)
    gmm.fit(x)
    r = gmm.predict_proba(x)
    rates = (r * s[:, None]).sum(0) / r.sum(0)
    return gmm, rates


def peer_check(run: Path, map_png: Path | None) -> dict:
    from scipy.special import logsumexp
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import BayesianGaussianMixture

    from src.build import rebuild

    rebuilt = rebuild(run, "run")
    data, model = rebuilt.datamodule, rebuilt.model
    k = model.n_components
    train, val, test = (data.splits[n].double() for n in ("train", "val", "test"))
    x_tr, s_tr = train[:, :2].numpy(), train[:, 2].numpy()
    ours_labels = model.assign(train).numpy()
    with torch.no_grad():
        ours_nll = -float(model.log_prob(test).mean())
        q, tau = model.posterior, float(model.tau)
        loc = torch.distributions.Normal(q.m, (tau + q.s).sqrt()[:, None])
        ours_loc = loc.log_prob(test[:, None, :2]).sum(-1) + model.log_pi
        ours_loc_nll = -float(ours_loc.logsumexp(-1).mean())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgm = BayesianGaussianMixture(
            n_components=k, covariance_type="full", n_init=8, max_iter=2000, random_state=0
        ).fit(x_tr)
        gmm, rates = fit_gmm_poisson(k, x_tr, s_tr, seed=0)
        # the peer's own K, chosen on the validation split
        val_scores = {}
        for kk in range(1, 11):
            g, lam = fit_gmm_poisson(kk, x_tr, s_tr, seed=0)
            nll_val = -gmm_poisson_log_prob(g, lam, val[:, :2].numpy(), val[:, 2].numpy()).mean()
            val_scores[kk] = (nll_val, g, lam)
    best_k = min(val_scores, key=lambda kk: val_scores[kk][0])
    _, g_best, lam_best = val_scores[best_k]
    x_te, s_te = test[:, :2].numpy(), test[:, 2].numpy()
    gmm_nll = -gmm_poisson_log_prob(gmm, rates, x_te, s_te).mean()
    gmm_loc_nll = -gmm.score(x_te)
    gmm_best_nll = -gmm_poisson_log_prob(g_best, lam_best, x_te, s_te).mean()
    bgm_labels = bgm.predict(x_tr)
    gmm_labels = gmm.predict(x_tr)
    # BGM + Poisson too, for completeness (its plug-in density: posterior means)
    r_bgm = bgm.predict_proba(x_tr)
    bgm_rates = (r_bgm * s_tr[:, None]).sum(0) / np.maximum(r_bgm.sum(0), 1e-300)
    live = r_bgm.sum(0) > 1e-6
    bgm_nll = -logsumexp(
        np.stack(
            [
                gmm_poisson_log_prob(_Single(bgm, j), bgm_rates[j : j + 1], x_te, s_te)
                for j in np.flatnonzero(live)
            ],
            axis=1,
        ),
        axis=1,
    ).mean()
    result = {
        "run": str(run),
        "K": k,
        "tau_km2": tau,
        "n_train": len(train),
        "n_test": len(test),
        "ari_ours_vs_bayesian_gmm": adjusted_rand_score(ours_labels, bgm_labels),
        "ari_ours_vs_gmm": adjusted_rand_score(ours_labels, gmm_labels),
        "bayesian_gmm_live_components": int(live.sum()),
        "test_nll_ours": ours_nll,
        "test_nll_gmm_poisson": float(gmm_nll),
        "test_nll_bayesian_gmm_poisson": float(bgm_nll),
        "test_nll_gmm_poisson_best_k": float(gmm_best_nll),
        "gmm_poisson_k_by_val": best_k,
        "test_location_nll_ours": ours_loc_nll,
        "test_location_nll_gmm": float(gmm_loc_nll),
    }
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    diff = gmm_nll - ours_nll
    se = float(
        np.std(
            -gmm_poisson_log_prob(gmm, rates, x_te, s_te) + model.log_prob(test).detach().numpy()
        )
        / math.sqrt(len(test))
    )
    winner = "ours (CAVI posterior predictive)" if diff > 0 else "GaussianMixture + Poisson"
    print(
        f"held-out NLL, GaussianMixture+Poisson − ours = {diff:.4f} ± {se:.4f} (paired se): "
        f"{winner} wins at K = {k}"
    )
    result |= {"test_nll_gmm_minus_ours": float(diff), "paired_se": se}
    if map_png is not None:
        from src.plots.earthquake import event_map, rate_intervals

        map_png.parent.mkdir(parents=True, exist_ok=True)
        event_map(model, data).savefig(map_png, dpi=90)
        rates_png = map_png.with_name(map_png.stem + "_rates.png")
        rate_intervals(model, data).savefig(rates_png, dpi=90)
        print(f"wrote {map_png} and {rates_png}")
    return result


class _Single:
    """One component of a fitted sklearn mixture, weight included, as `gmm_poisson_log_prob`
    reads it."""

    def __init__(self, mixture, j: int) -> None:
        self.weights_ = mixture.weights_[j : j + 1]
        self.means_ = mixture.means_[j : j + 1]
        self.covariances_ = mixture.covariances_[j : j + 1]


def latest_run() -> Path:
    runs = sorted((ROOT / "outputs" / "fiji_quakes" / "runs").glob("*/checkpoints/last.ckpt"))
    if not runs:
        raise SystemExit("error: no run under outputs/fiji_quakes/runs: run experiment=fiji_quakes")
    return runs[-1].parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an experiment=fiji_quakes run directory")
    parser.add_argument("--k-curve", type=Path, help="an experiment=fiji_quakes_k sweep dir")
    parser.add_argument("--map", type=Path, help="save the run's map as this PNG")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.k_curve is not None:
        k_curve(args.k_curve)
        if args.run is None and args.map is None:
            return 0
    peer_check(args.run or latest_run(), args.map)
    return 0


if __name__ == "__main__":
    sys.exit(main())
