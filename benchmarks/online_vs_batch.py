"""Online against batch closed-form fits: test KL gap against passes over the data and seconds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/online_vs_batch.py [--n 100000] [--batch 1000]
        [--every 10] [--passes 4] [--within 0.005 0.0005]

Two problems, N = `--n` training points each, fitted through the project's configs and
Lightning as `python -m src.train` runs them (one restart each, the same seeded start):
1. `data=mog2d model=gmm`: `fit=em` (one full E+M step per pass) against `fit=online_em`
   (an M-step after each mini-batch of `--batch`);
2. synthetic earthquakes (`experiment=earthquake_cavi data.n_components=8 data.rho=400`):
   `fit=cavi` against `fit=svi`.
After every batch-fit update, and every `--every` online updates, the test split's NLL is
evaluated (the evaluation's time is left out of the seconds). The script prints each curve
(passes, seconds, test NLL, KL gap), then for each fit the passes and seconds it takes to
come within each `--within` (nats) of the batch fit's final KL gap, and the ratios; for the
earthquakes also the final ARI and λ error. The figure (KL gap against passes and against
seconds, batch and online side by side) is saved as a PNG whose path is printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from src.build import build_datamodule, build_module

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "benchmarks"


class Curve(pl.Callback):
    """Test KL gap after updates: (passes, seconds without evaluation, test NLL, KL gap)."""

    def __init__(self, every: int | None) -> None:
        self.every, self.points, self.eval_seconds = every, [], 0.0

    def _evaluate(self, trainer: pl.Trainer, module: pl.LightningModule, passes: float) -> None:
        start = time.perf_counter()
        data = trainer.datamodule
        with torch.no_grad():
            nll = float(-module.model.log_prob(data.splits["test"].to(module.device)).mean())
        oracle = float(-data.oracle_log_prob.double().mean())
        self.eval_seconds += time.perf_counter() - start
        seconds = time.perf_counter() - self.start - self.eval_seconds
        self.points.append((passes, seconds, nll, nll - oracle))

    def on_train_start(self, trainer, module) -> None:
        self.start = time.perf_counter()
        self._evaluate(trainer, module, 0.0)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        n_batches = trainer.num_training_batches
        passes = trainer.current_epoch + (batch_idx + 1) / n_batches
        last = batch_idx + 1 == n_batches
        if (self.every is None and last) or (self.every and trainer.global_step % self.every == 0):
            self._evaluate(trainer, module, passes)


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("train", overrides=list(overrides), return_hydra_config=True)


def run(overrides: list[str], every: int | None) -> tuple[list, pl.LightningModule]:
    cfg = compose(*overrides, "callbacks=none", "~logger")
    datamodule = build_datamodule(cfg)
    fit = build_module(cfg, datamodule)
    curve = Curve(every)
    trainer = pl.Trainer(
        max_epochs=1000,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[curve],
    )
    trainer.fit(fit, datamodule=datamodule)
    return curve.points, fit


def first_within(points: list, target: float) -> tuple[float, float] | None:
    return next(((p, s) for p, s, _, gap in points if gap <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10, help="online updates between evaluations")
    parser.add_argument("--passes", type=int, default=4, help="online passes")
    parser.add_argument(
        "--within", type=float, nargs="+", default=[0.005, 0.0005], help="nats above batch's gap"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = [f"data.n_train={args.n}", "data.n_val=1000", "data.n_test=20000", "seed=0"]
    online = [f"data.batch_size={args.batch}", f"fit.max_iter={args.passes}", "fit.tol=1e-12"]
    # K = 8 means drawn with ρ = 400 (spread 20): separable (CAVI's ARI ≈ 0.98), and not
    # already fitted by the initialisation, as the default K = 4 is at N = 10⁵
    quakes = [*data, "data.n_components=8", "data.rho=400"]
    problems = {
        "mog2d (GMM, K=8)": (
            ["model=gmm", "data=mog2d", *data, "fit=em", "fit.tol=1e-8", "fit.max_iter=500"],
            ["model=gmm", "data=mog2d", *data, "fit=online_em", *online],
            ("EM", "online EM"),
        ),
        "earthquakes (K=8)": (
            ["experiment=earthquake_cavi", *quakes, "fit=cavi", "fit.n_init=1", "fit.max_iter=500"],
            ["experiment=earthquake_cavi", *quakes, "fit=svi", "fit.n_init=1", *online],
            ("CAVI", "SVI"),
        ),
    }
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for row, (title, (batch_cfg, online_cfg, names)) in enumerate(problems.items()):
        curves = {}
        for name, overrides, every in zip(names, (batch_cfg, online_cfg), (None, args.every)):
            curves[name], fit = run(overrides, every)
            print(f"\n{title}: {name}  (passes, seconds, test NLL, KL gap)")
            for passes, seconds, nll, gap in curves[name]:
                print(f"  {passes:7.2f} {seconds:8.3f} {nll:10.5f} {gap:10.5f}")
            if hasattr(fit, "extra_test_metrics"):
                extra = fit.extra_test_metrics()
                if extra:
                    shown = ", ".join(
                        f"{k.removeprefix('test/')} {v:.4f}" for k, v in extra.items()
                    )
                    print(f"  final: {shown}")
        for within in args.within:
            target = curves[names[0]][-1][3] + within
            print(f"\n{title}: to a KL gap within {within} of {names[0]}'s final ({target:.5f})")
            reached = {name: first_within(points, target) for name, points in curves.items()}
            for name, hit in reached.items():
                final = curves[name][-1]
                shown = f"{hit[0]:.2f} passes, {hit[1]:.3f} s" if hit else "not reached"
                print(f"  {name:10s} {shown}   (final gap {final[3]:.5f}, {final[0]:.2f} passes)")
            if all(reached.values()):
                (pb, sb), (po, so) = reached[names[0]], reached[names[1]]
                print(
                    f"  ratio {names[0]}/{names[1]}: passes {pb / po:.1f}x, seconds {sb / so:.1f}x"
                )
        target = curves[names[0]][-1][3] + args.within[0]
        for col, (index, label) in enumerate(((0, "passes over the data"), (1, "seconds"))):
            ax = axes[row, col]
            for name, points in curves.items():  # a gap ≤ 1e-5 (or negative) is drawn at 1e-5
                ax.plot([p[index] for p in points], [max(p[3], 1e-5) for p in points], label=name)
            ax.axhline(
                target, color="grey", linestyle=":", label=f"{names[0]} final + {args.within[0]}"
            )
            ax.set(xlabel=label, ylabel="test KL gap (nats)", yscale="log", title=title)
            ax.legend()
    figure.tight_layout()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "online_vs_batch.png"
    figure.savefig(path, dpi=120)
    print(f"\nfigure: {path}")


if __name__ == "__main__":
    main()
