"""A run's whole life through the command line, as a user lives it: train, SIGKILL mid-epoch,
`resume=`, `src.eval`, `src.compare`. The resumed run must still be the run it was (its names,
overrides, TensorBoard run and saved config), end with the metrics of an uninterrupted run,
re-test to the same numbers, and be drawn by the comparison.

Before the one run assembly, a resume recorded `model: flow1d, data: mog1d` for an nsf run and
opened a second TensorBoard run, and `src.compare` could not rebuild a `data=table` model.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from src.train import train
from tests.conftest import ROOT, compose_config, run_module

CASES = {
    "nsf-checkerboard": (
        ("model=nsf", "data=checkerboard", "data.n_train=2000", "data.batch_size=100"),
        {"model": "nsf", "data": "checkerboard", "fit": "mle"},
    ),
    "gmm-table": (
        ("model=gmm", "data=table", "data.path={table}", "data.batch_size=100"),
        {"model": "gmm", "data": "table", "fit": "mle"},
    ),
    "gmm-em-mog2d": (
        (
            "model=gmm",
            "fit=em",
            "fit.n_init=4",
            "data=mog2d",
            "data.n_train=20000",
            "data.batch_size=500",
        ),
        {"model": "gmm", "data": "mog2d", "fit": "em"},
    ),
    "estimator-study": (
        ("study=estimator", "data.steps_per_epoch=40", "study.n_samples=200"),
        {"study": "estimator", "data": "none"},
    ),
}
FAST = {"gmm-table"}  # nsf, EM and the study: -m slow (the fast suite stays under 10 minutes)
COMMON = ("trainer.max_epochs=40", "callbacks.figures.every_n_epochs=1000")  # EM: converged


def table_file(directory: Path) -> Path:
    """Two correlated columns with a header, as a user's CSV."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 2)) @ np.array([[1.0, 0.6], [0.0, 0.5]]) + [3.0, -1.0]
    path = directory / "table.csv"
    np.savetxt(path, x, delimiter=",", header="height,weight", comments="")
    return path


def train_and_kill(settings: list[str], log_dir: Path) -> Path:
    """Train as a real process and SIGKILL it once `last.ckpt` has been written twice (so the
    kill lands inside a later epoch); returns the run directory."""
    process = subprocess.Popen(
        [sys.executable, "-m", "src.train", *settings, f"paths.log_dir={log_dir}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, writes, seen = time.monotonic() + 300, 0, None
    while writes < 2:
        assert process.poll() is None, f"training ended before the kill: {process.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint in time"
        found = list(log_dir.glob("train/runs/*/checkpoints/last.ckpt"))
        if found and found[0].stat().st_mtime_ns != seen:
            writes, seen = writes + 1, found[0].stat().st_mtime_ns
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return found[0].parent.parent


@pytest.mark.parametrize(
    "case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in CASES]
)
def test_train_kill_resume_eval_compare(case, tmp_path):
    overrides, names = CASES[case]
    table = table_file(tmp_path)
    settings = [o.format(table=table) for o in (*overrides, *COMMON)]
    reference = train(compose_config(*settings, output_dir=tmp_path / "reference"))

    run_dir = train_and_kill(settings, tmp_path / "runs")
    killed_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    assert killed_at < reference["epochs"] - 1 and not (run_dir / "metrics.json").exists()
    config_before = (run_dir / ".hydra" / "config.yaml").read_text()

    resumed = run_module("src.train", f"resume={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == reference["epochs"]
    assert {k: metrics.get(k) for k in names} == names
    assert "model" in names or "model" not in metrics
    assert metrics["overrides"] == dict(s.split("=", 1) for s in settings) | {
        "paths.log_dir": str(tmp_path / "runs")
    }
    what = names.get("model") or names["study"]
    assert [p.name for p in (run_dir / "tensorboard").iterdir()] == [f"{what}-{names['data']}-s0"]
    assert (run_dir / ".hydra" / "config.yaml").read_text() == config_before
    scored = [k for k in reference if k.startswith(("val/", "test/"))]
    assert {"val/nll", "test/nll"} <= set(scored) or "val/objective_exact" in scored
    for key in scored:
        assert metrics[key] == pytest.approx(reference[key], rel=1e-6, abs=1e-9), key

    evaluated = run_module("src.eval", f"ckpt_path={run_dir}", f"paths.log_dir={tmp_path}/eval")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    (eval_metrics,) = (tmp_path / "eval").glob("eval/runs/*/metrics.json")
    again = json.loads(eval_metrics.read_text())
    assert again["checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert {k: again.get(k) for k in names} == names
    for key in (k for k in scored if k.startswith("test/")):
        assert again[key] == pytest.approx(metrics[key], rel=1e-9, abs=1e-12), key

    compared = run_module("src.compare", str(tmp_path / "runs"))
    assert compared.returncode == 0 and compared.stderr == "", compared.stderr
    if "model" in names:  # a density: drawn beside the truth (or the data), never a note
        from src.compare import figure_rows
        from src.sweeps.aggregate import compare
        from src.sweeps.runs import find_runs

        (row,) = figure_rows(compare(find_runs([tmp_path / "runs"])))
        assert [cell.note for cell in row.cells] == [""] and row.cells[0].model is not None
        assert (tmp_path / "runs" / "comparison.png").stat().st_size > 10_000
