"""flow1d through the command line vs the source notes' plain PyTorch loop, per epoch.

Both run as users run them, each a process timed from start to exit: the framework as
`python -m src.train experiment=seed003_flow1d trainer.max_epochs=E` with its default
callbacks, logger and thread policy; the anchor as
`python benchmarks/anchors/flow1d_plain_loop.py --epochs E` (Dataset + DataLoader, batch 128,
Adam 5e-3, one thread). The steady-state cost per epoch is (T(150 epochs) − T(50 epochs)) / 100,
which removes start-up, data and test from both; each T is the median of `--repeats` runs, the
programs run alternately. The machine's speed drifts between runs, so the ratio is also taken
within each repeat (its four runs are adjacent) and its median and range printed; a wider span
(`--epochs 50 450`) shrinks the noise. T is wall time; the CPU time the process used (user +
system, all its threads) is shown beside it. Then the time to quality of
`experiment=flow1d_fast` (its own fit_seconds) against the anchor's 500 epochs.

    python benchmarks/flow1d_vs_plain_loop.py [--epochs 50 150] [--repeats 3] [--bare]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support.processes import timed

BARE = ("callbacks=none", "~logger", "+trainer.enable_progress_bar=false")


def framework(epochs: int, out: Path, *extra: str) -> tuple[tuple[float, float], dict]:
    run_dir = out / f"run{time.monotonic_ns()}"
    command = [
        sys.executable,
        "-m",
        "src.train",
        "experiment=seed003_flow1d",
        f"trainer.max_epochs={epochs}",
        f"hydra.run.dir={run_dir}",
        *extra,
    ]
    seconds, _ = timed(command)
    return seconds, json.loads((run_dir / "metrics.json").read_text())


def plain(epochs: int) -> tuple[tuple[float, float], float, int]:
    """(wall, CPU) seconds, KL gap and steps per epoch of the notes' loop."""
    seconds, out = timed(
        [sys.executable, "benchmarks/anchors/flow1d_plain_loop.py", f"--epochs={epochs}"]
    )
    printed = dict(line.split() for line in out.splitlines())
    return seconds, float(printed["kl_gap"]), int(printed["steps_per_epoch"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, nargs=2, default=[50, 150])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bare", action="store_true", help="also without callbacks and logger")
    args = parser.parse_args()
    short, long = args.epochs
    times: dict[tuple[str, int], list[tuple[float, float]]] = {}
    gaps: dict[str, float] = {}
    load = os.getloadavg()[0]
    variants = {"framework": (), **({"bare": BARE} if args.bare else {})}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for epochs in (short, long):
                seconds, gaps["plain"], steps = plain(epochs)
                times.setdefault(("plain", epochs), []).append(seconds)
                for name, extra in variants.items():
                    seconds, metrics = framework(epochs, Path(tmp), *extra)
                    times.setdefault((name, epochs), []).append(seconds)
                    gaps[name] = metrics["test/kl_gap"]
        fast_dir = Path(tmp) / "fast"
        timed(
            [
                sys.executable,
                "-m",
                "src.train",
                "experiment=flow1d_fast",
                f"hydra.run.dir={fast_dir}",
            ]
        )
        fast = json.loads((fast_dir / "metrics.json").read_text())

    def median(name: str, epochs: int, clock: int) -> float:
        return statistics.median(t[clock] for t in times[(name, epochs)])

    def per_epoch(name: str, clock: int) -> float:
        return (median(name, long, clock) - median(name, short, clock)) / (long - short)

    print(
        f"flow1d, batches of 128 ({steps} steps per epoch), through the command "
        f"line; median of {args.repeats}; load average {load:.1f}"
    )
    print(
        f"| program | T({short}) s | T({long}) s | ms per epoch | ratio | CPU ms per epoch | "
        f"CPU ratio | kl_gap at {long} |"
    )
    print("|---|---|---|---|---|---|---|---|")
    names = {
        "plain": "plain loop (notes), 1 thread",
        "framework": "framework, defaults",
        "bare": "framework, no callbacks/logger",
    }
    for name in ("plain", *variants):
        wall, cpu = per_epoch(name, 0), per_epoch(name, 1)
        print(
            f"| {names[name]} | {median(name, short, 0):.2f} | {median(name, long, 0):.2f} | "
            f"{1e3 * wall:.2f} | {wall / per_epoch('plain', 0):.2f}x | {1e3 * cpu:.2f} | "
            f"{cpu / per_epoch('plain', 1):.2f}x | {gaps[name]:.4f} |"
        )
    for name in variants:
        ratios = [
            (f[1][0] - f[0][0]) / (p[1][0] - p[0][0])
            for f, p in zip(
                zip(times[(name, short)], times[(name, long)]),
                zip(times[("plain", short)], times[("plain", long)]),
            )
        ]
        print(
            f"{names[name]}: per-epoch ratio within each repeat, median "
            f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}–{max(ratios):.2f}x)"
        )
    plain_500 = 500 * per_epoch("plain", 0)
    print(
        f"time to quality: flow1d_fast fit {fast['fit_seconds']:.2f} s to kl_gap "
        f"{fast['test/kl_gap']:.4f}; the plain loop's 500 epochs ≈ {plain_500:.2f} s "
        f"({fast['fit_seconds'] / plain_500:.3f}x)"
    )


if __name__ == "__main__":
    main()
