"""Where the time of one command goes, process start to exit, as a user runs it.

Runs `python -m src.train <args>` as a subprocess with DENSITYLAB_TIMING set (src/utils/timing.py
then logs when each stage ends) and prints, median over the runs: interpreter (Python, Hydra,
OmegaConf), config (Hydra composes it and makes the run dir), imports (torch, Lightning, the
project), data, model set-up (model, fit, trainer), fit (of which figures and last.ckpt
writes), test (of which figures), writes (metrics, hparams) and exit. Also times
`--cfg job`. With `--busy` a `python -c "while True: pass"` process keeps one core busy; with
`--load-effect` it prints instead the fit's time with that process over its time without.
`--against DIR` runs another checkout alternately (A/B). `--imports` prints instead what each
heavy module adds to the imports stage, in fresh interpreters.

    python benchmarks/end_to_end.py [--runs 3] [--busy | --load-effect | --imports]
        [--against DIR] [-- experiment=flow1d_fast ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("interpreter", "config", "imports", "data", "model", "fit", "test", "writes")


def run_once(args: list[str], log_dir: Path, root: Path = ROOT) -> dict[str, float]:
    """Seconds per stage of one command (and `total`, process start to exit), run in the
    checkout `root` (another one's stages are known only where it logs them)."""
    log = log_dir / f"timing-{time.monotonic_ns()}.txt"
    run_dir = log_dir / f"run-{time.monotonic_ns()}"
    env = os.environ | {"DENSITYLAB_TIMING": str(log), "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "src.train", *args, f"hydra.run.dir={run_dir}"]
    start = time.time()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    end = time.time()
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    marks: dict[str, float] = {}
    parts: dict[str, float] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        name, value = line.split()
        if name.endswith("+"):
            parts[name[:-1]] = parts.get(name[:-1], 0.0) + float(value)
        else:
            marks[name] = float(value)
    seconds, before = {}, start
    for stage in STAGES:
        if stage in marks:
            seconds[stage], before = marks[stage] - before, marks[stage]
    seconds["exit"] = end - before
    seconds["total"] = end - start
    seconds["fit_seconds"] = json.loads((run_dir / "metrics.json").read_text())["fit_seconds"]
    return seconds | {f"  {k}": v for k, v in parts.items()}


def cfg_job_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "src.train", *args, "--cfg", "job"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - start


# The imports stage, one module at a time: each row imports the rows above it and its own module.
IMPORT_CHAIN = (
    ("torch", "every run: the models and the training loop"),
    ("torch._dynamo", "Lightning's fabric wrappers import it unconditionally"),
    ("scipy.signal", "torchmetrics imports it whenever scipy is installed"),
    ("matplotlib.pyplot", "torchmetrics imports it whenever matplotlib is installed"),
    ("torchmetrics", "Lightning imports it unconditionally"),
    ("pytorch_lightning", "the rest of Lightning"),
    ("src.build", "this project: its models, data, fits and callbacks"),
)


def import_breakdown(runs: int) -> None:
    """Seconds each module adds, median over `runs` fresh interpreters per row."""

    def seconds(modules: list[str]) -> float:
        code = f"import {', '.join(modules)}" if modules else "pass"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
        return time.perf_counter() - start

    chain = [module for module, _ in IMPORT_CHAIN]
    times: list[list[float]] = [[] for _ in range(len(chain) + 1)]
    for _ in range(runs):  # row by row within each round, so drift falls on every row alike
        for i in range(len(chain) + 1):
            times[i].append(seconds(chain[:i]))
    medians = [statistics.median(t) for t in times]
    print(f"imports, median of {runs} fresh interpreters; load average {os.getloadavg()[0]:.1f}")
    print("| module | adds s | why it is imported |")
    print("|---|---|---|")
    print(f"| (interpreter start) | {medians[0]:.2f} | |")
    for i, (module, why) in enumerate(IMPORT_CHAIN, start=1):
        print(f"| {module} | {medians[i] - medians[i - 1]:.2f} | {why} |")
    print(f"| all | {medians[-1]:.2f} | |")


def busy_core() -> subprocess.Popen:
    """Another user's job: a process that keeps one core busy until killed."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def load_effect(args: list[str], runs: int, roots: list[Path]) -> None:
    """The fit's time with one core kept busy over its time without, per checkout; the runs
    alternate (without, with) so that the machine's other load falls on both alike."""
    print(f"python -m src.train {' '.join(args)}: fit_seconds, median of {runs} runs")
    print("| checkout | without | with one core busy | ratio (goal <= 1.3x) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for root in roots:
            quiet, loaded = [], []
            for _ in range(runs):
                quiet.append(run_once(args, Path(tmp), root)["fit_seconds"])
                busy = busy_core()
                try:
                    loaded.append(run_once(args, Path(tmp), root)["fit_seconds"])
                finally:
                    busy.kill()
                    busy.wait()
            q, b = statistics.median(quiet), statistics.median(loaded)
            print(f"| {root} | {q:.2f} | {b:.2f} | {b / q:.2f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    parser.add_argument("--against", type=Path, help="another checkout, run alternately (A/B)")
    parser.add_argument(
        "--load-effect", action="store_true", help="fit time with one core busy / without"
    )
    parser.add_argument("--imports", action="store_true", help="what each heavy import adds")
    parser.add_argument("args", nargs="*", default=["experiment=flow1d_fast"])
    opts = parser.parse_args()
    if opts.imports:
        return import_breakdown(opts.runs)
    if opts.load_effect:
        roots = [ROOT] + ([opts.against.resolve()] if opts.against else [])
        return load_effect(opts.args, opts.runs, roots)
    busy = busy_core() if opts.busy else None
    try:
        load = os.getloadavg()[0]
        runs, other = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(opts.runs):
                if opts.against:
                    other.append(run_once(opts.args, Path(tmp), opts.against.resolve()))
                runs.append(run_once(opts.args, Path(tmp)))
        cfg_job = statistics.median(cfg_job_seconds(opts.args) for _ in range(opts.runs))
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print(
        f"python -m src.train {' '.join(opts.args)}: median of {opts.runs} runs, "
        f"load average {load:.1f}{', one core kept busy' if busy else ''}"
    )
    print("| stage | seconds |")
    print("|---|---|")
    for key in runs[0]:
        values = [r.get(key, 0.0) for r in runs]
        print(f"| {key} | {statistics.median(values):.2f} |")
    print(f"| `--cfg job` (process start to exit) | {cfg_job:.2f} |")
    if other:
        ours = statistics.median(r["total"] for r in runs)
        theirs = statistics.median(r["total"] for r in other)
        print(f"total, {opts.against}: {theirs:.2f} s; this checkout / that: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
