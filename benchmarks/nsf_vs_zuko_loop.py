"""contender=nsf through the command line vs zuko's documented training loop, time to quality.

Both run as users run them, each a process timed from start to exit: the framework as
`python -m src.train contender=nsf data=<toy> seed=<seed> trainer.max_epochs=E
paths.log_dir=<tmp>` with its default callbacks, logger and thread policy; the anchor as
`python benchmarks/anchors/nsf_zuko_loop.py` (zuko's README loop: a shuffled DataLoader,
`-flow().log_prob(x).mean()`, Adam; one thread), given the same flow, batch size, learning rate,
cosine decay and number of epochs, all read from the config the command line composes (so a
change to conf/contender/nsf.yaml or conf/model/nsf.yaml is followed). The anchor fits the same
train split: this script draws it once through the framework's own data module (the config's
`data`, `seed`) and writes it, with the truth's log-density of the validation and test points,
to a .pt file the anchor reads; drawing it is not timed.

Both score the validation KL gap after every epoch against the seconds since training started
(the framework's `curve.csv`, the anchor's own curve). The measure is time to the anchor's
quality: G is the anchor's final validation KL gap and T_loop its training seconds (the clock at
that last validation); t_fw is the first `seconds` of the framework's curve.csv at which
`val/kl_gap` ≤ G, and the ratio t_fw / T_loop (goal ≤ 1.2x). A framework run that never reaches G
counts as its final seconds, marked `>`.

The two start from the same weights (the framework's `seed_everything(seed)` and the anchor's
`torch.manual_seed(seed)` both precede the flow's construction) but shuffle differently (the
DataLoader's order vs the framework's per-epoch permutation), so either may end better, and G
alone counts that luck against the one that ends worse: also printed is the time each takes to
the worse of their two final gaps, which both reach, framework / loop. The anchor's Adam is
torch's default, as zuko's documentation writes it; the framework's is `fused` (conf/optimizer),
and `--fused-loop` gives the anchor that too. Also printed: each process's wall time start to
exit and its CPU time, the seconds per epoch of each (the median span between two validations
of its curve, the last left out: a per-step cost free of start-up, figures and test), what the
framework's last epoch adds (its figures are drawn there, inside the curve's clock), and each
one's final test KL gap. Every figure is the median of `--repeats` runs, the programs
alternating; the ratios are also taken within each repeat (its runs are adjacent) and printed
per repeat with their median and range, as the machine's speed drifts. `--vary-seed` gives
repeat r the seed + r (split, weights, shuffle).

    python benchmarks/nsf_vs_zuko_loop.py [--data eight_gaussians] [--epochs 10] [--repeats 3]
        [--seed 0] [--vary-seed] [--bare] [--fused-loop]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from support.processes import ROOT, timed

LOOP = ROOT / "benchmarks" / "anchors" / "nsf_zuko_loop.py"
BARE = ("callbacks=none", "~logger", "+trainer.enable_progress_bar=false")


def overrides(data: str, seed: int, epochs: int) -> list[str]:
    return ["contender=nsf", f"data={data}", f"seed={seed}", f"trainer.max_epochs={epochs}"]


def settings_and_splits(data: str, seed: int, epochs: int, path: Path) -> dict:
    """The anchor's settings, read from the config `src.train` composes for the same overrides,
    and the run's splits, drawn by the framework's data module and saved to `path`."""
    import torch
    from hydra import compose, initialize_config_dir

    from src.build import build_datamodule
    from src.utils.resolvers import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=overrides(data, seed, epochs))
    model, scheduler = cfg.model, cfg.get("scheduler")
    if not str(model._target_).endswith("zuko_flows.NSF"):
        sys.exit(f"contender=nsf is now {model._target_}: the anchor trains zuko's NSF only")
    if cfg.optimizer._target_ != "torch.optim.Adam":
        sys.exit(f"contender=nsf now trains with {cfg.optimizer._target_}; the anchor uses Adam")
    cosine = scheduler is not None and str(scheduler._target_).endswith("CosineAnnealingLR")
    if scheduler is not None and not cosine:
        sys.exit(f"contender=nsf now schedules with {scheduler._target_}; the anchor: cosine")
    datamodule = build_datamodule(cfg)
    splits = {name: datamodule.splits[name] for name in ("train", "val", "test")}
    for name in ("val", "test"):
        splits[f"{name}_truth"] = datamodule.extras[name]["oracle_log_prob"]
    torch.save(splits, path)
    return {
        "epochs": epochs,
        "batch-size": cfg.data.batch_size,
        "lr": cfg.optimizer.lr,
        "cosine": cosine,
        "transforms": model.transforms,
        "hidden-features": list(model.hidden_features),
        "bins": model.bins,
        "bound": model.bound,
        "seed": seed,
        "n_train": len(splits["train"]),
    }


def loop(data_file: Path, settings: dict, fused: bool) -> tuple[tuple[float, float], dict]:
    command = [sys.executable, str(LOOP), f"--data={data_file}"]
    for key in ("epochs", "batch-size", "lr", "transforms", "bins", "bound", "seed"):
        command.append(f"--{key}={settings[key]}")
    command += ["--hidden-features", *map(str, settings["hidden-features"])]
    command.append("--cosine" if settings["cosine"] else "--no-cosine")
    seconds, out = timed(command + (["--fused"] if fused else []))
    return seconds, json.loads(out.splitlines()[-1])


def framework(
    data: str, seed: int, epochs: int, out: Path, *extra: str
) -> tuple[tuple[float, float], dict, list[dict[str, float]]]:
    log_dir = out / f"log{time.monotonic_ns()}"
    command = [
        sys.executable,
        "-m",
        "src.train",
        *overrides(data, seed, epochs),
        f"paths.log_dir={log_dir}",
        *extra,
    ]
    seconds, _ = timed(command)
    (run_dir,) = (log_dir / "train" / "runs").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with (run_dir / "curve.csv").open(newline="") as file:
        curve = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(file)]
    return seconds, metrics, curve


def per_epoch(curve: list[dict[str, float]], seconds: str) -> float:
    """A run's steady seconds per epoch, from its curve (one row per epoch): the median span
    between consecutive validations, the last left out (the framework draws figures there)."""
    spans = [b[seconds] - a[seconds] for a, b in pairwise(curve)]
    return statistics.median(spans[:-1] if len(spans) > 1 else spans) if spans else 0.0


def matched(framework_curve: list[dict[str, float]], loop_curve: list[dict[str, float]]) -> float:
    """Time to the quality both reach, the worse of the two final validation KL gaps: the
    framework's first seconds there over the loop's (their own shuffles make either one end
    better, which G alone counts against the one that ends worse)."""
    goal = max(framework_curve[-1]["val/kl_gap"], loop_curve[-1]["val_kl_gap"])
    return reached(framework_curve, goal)[0] / reached(loop_curve, goal, "val_kl_gap")[0]


def last_epoch(curve: list[dict[str, float]]) -> float:
    """The last epoch's seconds less the median epoch's: what the final validation adds (the
    framework draws its figures there, inside the curve's clock)."""
    if len(curve) < 3:
        return 0.0
    spans = [b["seconds"] - a["seconds"] for a, b in pairwise(curve)]
    return spans[-1] - statistics.median(spans[:-1])


def reached(
    curve: list[dict[str, float]], goal: float, key: str = "val/kl_gap"
) -> tuple[float, bool]:
    """The first seconds at which a curve's `key` ≤ goal; else its last, False."""
    for row in curve:
        if row[key] <= goal:
            return row["seconds"], True
    return curve[-1]["seconds"], False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="eight_gaussians", help="a conf/data option")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bare", action="store_true", help="also without callbacks and logger")
    parser.add_argument(
        "--vary-seed", action="store_true", help="repeat r uses seed + r (data, init, shuffle)"
    )
    parser.add_argument("--fused-loop", action="store_true", help="the anchor with fused Adam")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    variants = {"framework": (), **({"bare": BARE} if args.bare else {})}
    rows: dict[str, list[dict]] = {name: [] for name in ("loop", *variants)}
    settings_of: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            seed = args.seed + repeat if args.vary_seed else args.seed
            data_file = Path(tmp) / f"splits{seed}.pt"
            if seed not in settings_of:
                settings_of[seed] = settings_and_splits(args.data, seed, args.epochs, data_file)
            settings = settings_of[seed]
            seconds, summary = loop(data_file, settings, args.fused_loop)
            goal, t_loop = summary["val_kl_gap"], summary["train_seconds"]
            rows["loop"].append(
                {
                    "wall": seconds[0],
                    "cpu": seconds[1],
                    "train": t_loop,
                    "epoch": per_epoch(summary["curve"], "seconds"),
                    "gap": summary["test_kl_gap"],
                    "val_gap": goal,
                    "steps": summary["steps"],
                    "seed": seed,
                }
            )
            for name, extra in variants.items():
                seconds, metrics, curve = framework(args.data, seed, args.epochs, Path(tmp), *extra)
                t_fw, ok = reached(curve, goal)
                rows[name].append(
                    {
                        "wall": seconds[0],
                        "cpu": seconds[1],
                        "train": curve[-1]["seconds"],
                        "fit": metrics["fit_seconds"],
                        "epoch": per_epoch(curve, "seconds"),
                        "last": last_epoch(curve),
                        "gap": metrics["test/kl_gap"],
                        "val_gap": curve[-1]["val/kl_gap"],
                        "steps": int(curve[-1]["step"]),
                        "to_goal": t_fw,
                        "reached": ok,
                        "ratio": t_fw / t_loop,
                        "matched": matched(curve, summary["curve"]),
                    }
                )

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[name])

    loop_rows = rows["loop"]
    seeds = sorted({r["seed"] for r in loop_rows})
    print(
        f"contender=nsf on data={args.data} seed={','.join(map(str, seeds))}: {args.epochs} "
        f"epochs of "
        f"{loop_rows[0]['steps'] // args.epochs} steps (batch {settings['batch-size']}, "
        f"{settings['n_train']} points); median of {args.repeats}; load average {load:.1f}"
    )
    print(
        "| program | process wall s | CPU s | training s | ms per epoch | val kl_gap | "
        "test kl_gap |"
    )
    print("|---|---|---|---|---|---|---|")
    names = {
        "loop": "zuko's loop, 1 thread" + (" (fused Adam)" if args.fused_loop else ""),
        "framework": "framework, defaults",
        "bare": "framework, no callbacks/logger",
    }
    for name in rows:
        print(
            f"| {names[name]} | {median(name, 'wall'):.2f} | {median(name, 'cpu'):.2f} | "
            f"{median(name, 'train'):.2f} | {1e3 * median(name, 'epoch'):.1f} | "
            f"{median(name, 'val_gap'):.4f} | {median(name, 'gap'):.4f} |"
        )
    print(
        f"anchor: G = final val kl_gap {median('loop', 'val_gap'):.4f}, "
        f"T_loop = {median('loop', 'train'):.2f} s (median)"
    )
    for name in variants:
        per_repeat = []
        for fw, lp in zip(rows[name], loop_rows):
            mark = "" if fw["reached"] else ">"
            per_repeat.append(
                f"{mark}{fw['ratio']:.2f}x ({mark}{fw['to_goal']:.2f} s / {lp['train']:.2f} s, "
                f"seed {lp['seed']}, G {lp['val_gap']:.4f}, framework's final {fw['val_gap']:.4f})"
            )
        ratios = [r["ratio"] for r in rows[name]]
        missed = sum(not r["reached"] for r in rows[name])
        note = (
            f"; {missed} of {len(ratios)} never reached G (counted at their end)" if missed else ""
        )
        print(
            f"{names[name]}: time to G / T_loop, median {statistics.median(ratios):.2f}x "
            f"(range {min(ratios):.2f}–{max(ratios):.2f}x){note}; per repeat: "
            + "; ".join(per_repeat)
        )
        both = [r["matched"] for r in rows[name]]
        print(
            f"{names[name]}: time to the worse of the two final val kl_gaps, framework / loop, "
            f"median {statistics.median(both):.2f}x (range {min(both):.2f}–{max(both):.2f}x); "
            "per repeat: " + ", ".join(f"{r:.2f}x" for r in both)
        )
        epoch_ratios = [f["epoch"] / lp["epoch"] for f, lp in zip(rows[name], loop_rows)]
        print(
            f"{names[name]}: seconds per epoch / the loop's, median "
            f"{statistics.median(epoch_ratios):.2f}x (range {min(epoch_ratios):.2f}–"
            f"{max(epoch_ratios):.2f}x); start-up + test outside the curve "
            f"{median(name, 'wall') - median(name, 'train'):.2f} s vs the loop's "
            f"{median('loop', 'wall') - median('loop', 'train'):.2f} s; the last epoch "
            f"{median(name, 'last'):+.2f} s on the others (median)"
        )


if __name__ == "__main__":
    main()
