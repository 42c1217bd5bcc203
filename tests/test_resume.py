"""A real training process killed mid-run resumes to exactly the uninterrupted result."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.train import train
from tests.conftest import ROOT, compose_config, run_module

EPOCHS = 30
SETTINGS = [
    f"trainer.max_epochs={EPOCHS}",
    "data.n_train=4000",
    "data.batch_size=32",
    "callbacks.figures.every_n_epochs=1000",
]


def start_training(log_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "src.train", *SETTINGS, *extra, f"paths.log_dir={log_dir}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epochs(log_dir: Path, process: subprocess.Popen, epochs: int) -> Path:
    """The run dir once `last.ckpt` has been written `epochs` times (still training)."""
    deadline, seen, last_mtime = time.monotonic() + 240, 0, None
    while seen < epochs:
        assert process.poll() is None and time.monotonic() < deadline, "training ended too early"
        ckpts = list(log_dir.glob("train/runs/*/checkpoints/last.ckpt"))
        if ckpts and ckpts[0].stat().st_mtime_ns != last_mtime:
            seen, last_mtime = seen + 1, ckpts[0].stat().st_mtime_ns
        time.sleep(0.02)
    return ckpts[0].parent.parent


def validations(events_file: Path) -> int:
    """How many val/nll values one TensorBoard event file holds."""
    events = EventAccumulator(str(events_file)).Reload()
    return len(events.Scalars("val/nll")) if "val/nll" in events.Tags()["scalars"] else 0


def resume(run_dir: Path) -> dict:
    """Resume the killed run; check that it went on from its last.ckpt rather than from scratch
    (which reaches the same metrics too: the seed fixes both): the resume's own TensorBoard
    event files, in the run's TensorBoard run, hold validations of the epochs after it only."""
    killed_at = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"]
    before = set((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    result = run_module("src.train", f"resume={run_dir}")
    assert result.returncode == 0, result.stderr
    new = set((run_dir / "tensorboard").rglob("events.out.tfevents.*")) - before
    assert new and len({path.parent for path in before | new}) == 1  # the same TB run grows
    assert sum(map(validations, new)) == EPOCHS - 1 - killed_at
    return json.loads((run_dir / "metrics.json").read_text())


def without_timing(metrics: dict) -> dict:
    """The measured numbers and the status (identity fields such as the run's own paths and
    command-line overrides differ between two run directories by design)."""
    return {
        k: v
        for k, v in metrics.items()
        if k != "fit_seconds" and (isinstance(v, float) or k == "status")
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return without_timing(
        train(compose_config(*SETTINGS, output_dir=tmp_path_factory.mktemp("ref")))
    )


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_metrics(uninterrupted, tmp_path):
    process = start_training(tmp_path)
    run_dir = wait_for_epochs(tmp_path, process, 3)
    process.kill()
    process.wait()
    assert not (run_dir / "metrics.json").exists()
    assert without_timing(resume(run_dir)) == uninterrupted
    # the resume's own config and log, in exactly one new directory, nothing overwritten
    assert len(list((run_dir / "resumed").iterdir())) == 1


@pytest.mark.slow
def test_sigint_stops_cleanly_and_resumes_to_the_same_metrics(uninterrupted, tmp_path):
    process = start_training(tmp_path)
    run_dir = wait_for_epochs(tmp_path, process, 3)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2  # a user error, not a crash
    assert "resume=" in stderr.strip().splitlines()[-1]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "interrupted"
    assert (run_dir / "checkpoints" / "interrupted.ckpt").is_file()
    assert without_timing(resume(run_dir)) == uninterrupted


def test_a_resume_keeps_every_earlier_row_of_the_csv_log(tmp_path):
    """Lightning's CSVLogger deletes metrics.csv when it reopens the directory; ours appends."""
    import csv

    from omegaconf import OmegaConf

    settings = ("logger=csv", "data.n_train=300", "callbacks.figures=null")
    cfg = compose_config("trainer.max_epochs=3", *settings, output_dir=tmp_path)
    train(cfg)
    saved = OmegaConf.to_container(cfg)
    saved.pop("hydra")
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(saved, tmp_path / ".hydra" / "config.yaml")
    log = tmp_path / "csv" / "metrics.csv"
    before = list(csv.DictReader(log.open()))
    train(compose_config(f"resume={tmp_path}", "trainer.max_epochs=6", output_dir=tmp_path / "r"))
    after = list(csv.DictReader(log.open()))
    assert len(after) > len(before) > 0
    assert [row["step"] for row in after[: len(before)]] == [row["step"] for row in before]
    steps = [int(row["step"]) for row in after if row.get("train/nll")]
    assert steps == sorted(steps) and len(steps) == 6  # one train/nll per epoch, continuing


def test_a_failed_checkpoint_write_leaves_the_previous_file_whole(tmp_path):
    from src.utils.checkpoint_io import LocalCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    io = LocalCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)
    with pytest.raises(Exception, match="pickle"):
        io.save_checkpoint({"epoch": 2, "bad": lambda: None}, path)  # fails while writing
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]  # no partial left
    io.save_checkpoint({"epoch": 3}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 3}


@pytest.fixture(scope="module")
def completed(tmp_path_factory) -> Path:
    """A completed 2-epoch run of gmm on mog2d, through the command line (its .hydra record)."""
    from tests.conftest import trained_run

    root = tmp_path_factory.mktemp("completed")
    return trained_run(root, "run", "model=gmm", "data=mog2d", "data.n_train=300")


def resumed(run_dir: Path, *overrides: str) -> dict:
    """`python -m src.train resume=<run dir> <overrides>`, in-process."""
    output = run_dir / "resumed" / f"t{time.monotonic_ns()}"
    return train(compose_config(f"resume={run_dir}", *overrides, output_dir=output))


def test_a_resume_that_would_change_the_run_is_refused_and_changes_nothing(completed):
    from src.errors import UserError

    before = (
        (completed / "metrics.json").read_text(),
        (completed / ".hydra/config.yaml").read_text(),
    )
    for override in ("model.n_components=3", "seed=1", "data=banana", "optimizer.lr=0.5"):
        key = override.split("=")[0]
        with pytest.raises(UserError, match=rf"^resume=.* cannot change {key}: it would change"):
            resumed(completed, override)
    ckpt = completed / "checkpoints" / "last.ckpt"
    with pytest.raises(UserError, match=r"^give resume=<run dir> or ckpt_path=<checkpoint>"):
        resumed(completed, f"ckpt_path={ckpt}")
    after = (completed / "metrics.json").read_text(), (completed / ".hydra/config.yaml").read_text()
    assert after == before


def test_a_completed_run_resumed_changes_nothing_until_its_budget_grows(completed, capsys):
    record = json.loads((completed / "metrics.json").read_text())
    assert resumed(completed) == record  # complete: the record as it was, nothing trained
    assert "is complete; nothing changed" in capsys.readouterr().out
    grown = resumed(completed, "trainer.max_epochs=4")
    assert grown["epochs"] == 4 and grown["status"] == "completed"
    assert {k: grown[k] for k in ("model", "data", "fit", "seed")} == {
        k: record[k] for k in ("model", "data", "fit", "seed")
    }
    assert grown["overrides"] == record["overrides"] | {"trainer.max_epochs": "4"}
    saved = (completed / ".hydra" / "config.yaml").read_text()
    assert "max_epochs: 4" in saved  # what src.compare and the next resume read
    ckpt = torch.load(completed / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 3
