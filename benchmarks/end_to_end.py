"""Where the time of one command goes, process start to exit, as a user runs it.

Runs `python -m src.train <args>` as a subprocess with DENSITYLAB_TIMING set (src/utils/timing.py
then logs when each stage ends) and prints, median over the runs: interpreter (Python, Hydra,
OmegaConf), config (Hydra composes it and makes the run dir), imports (torch, Lightning, the
project), data, model set-up (model, fit, trainer), fit (of which figures and last.ckpt
writes), test (of which figures), writes (metrics, hparams) and exit. Also times
`--cfg job`. With `--busy` a `python -c "while True: pass"` process keeps one core busy; with
`--load-effect` it prints instead the fit's time with that process over its time without.
`--against DIR` runs another checkout alternately (A/B).

    python benchmarks/end_to_end.py [--runs 3] [--busy | --load-effect] [--against DIR]
        [-- experiment=flow1d_fast ...]
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
    parser.add_argument("args", nargs="*", default=["experiment=flow1d_fast"])
    opts = parser.parse_args()
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
