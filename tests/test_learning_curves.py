"""Learning curves: every run's `curve.csv` (the validation KL gap against training seconds),
kept across a resume, and `src.compare --curves` drawing them or refusing a run without one;
the comparison's cost table (fit seconds, parameter count)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from src.build import assemble
from src.callbacks.figures import FigureCallback
from src.callbacks.learning_curve import LearningCurve
from src.compare import main
from src.fits.em import EMFit
from src.models.gmm import GaussianMixture
from src.sweeps.aggregate import compare
from src.sweeps.curves import learning_curves
from src.sweeps.runs import find_runs
from src.train import train
from src.utils.runs import RunIdentity
from tests.conftest import compose_config
from tests.fake_runs import fake_run, scored


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_run_writes_its_curve_with_the_validation_kl_gap_of_the_truth(tmp_path, one_torch_thread):
    overrides = ["model=gmm", "data=mog2d", "model.n_components=3", "trainer.max_epochs=3"]
    tiny = ["data.n_train=300", "data.n_val=200", "data.n_test=200", "~logger"]
    quiet = ["callbacks.figures=null", "callbacks.progress_bar=null"]
    cfg = compose_config(*overrides, *tiny, *quiet, output_dir=tmp_path)
    train(cfg)
    curve = rows(tmp_path / "curve.csv")
    assert [int(r["epoch"]) for r in curve] == [0, 1, 2]
    steps, seconds = [int(r["step"]) for r in curve], [float(r["seconds"]) for r in curve]
    assert steps == sorted(steps) and steps[0] > 0 and seconds == sorted(seconds)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert float(curve[-1]["val/kl_gap"]) == pytest.approx(metrics["val/kl_gap"])
    # the gap is the model's NLL minus the truth's on the validation points, drawn here anew
    data = assemble(cfg, RunIdentity.of_command(cfg), stage="fit").datamodule
    truth_nll = -data.truth.log_prob(data.splits["val"]).double().mean().item()
    assert metrics["val/nll"] - metrics["val/kl_gap"] == pytest.approx(truth_nll, rel=1e-5)
    assert metrics["n_parameters"] == 3 * 2 + 3 + 3 * 2 + 3 * 4  # logits, loc, diag, lower


def trainer(step: int, epoch: int = 0, **metrics: float) -> SimpleNamespace:
    values = {k.replace("_", "/", 1): torch.tensor(v) for k, v in metrics.items()}
    return SimpleNamespace(
        is_global_zero=True,
        sanity_checking=False,
        fast_dev_run=False,
        global_step=step,
        current_epoch=epoch,
        callback_metrics=values | {"train/nll": torch.tensor(9.0)},
    )


def test_a_resumed_curve_continues_its_seconds_and_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "curve.csv"
    first = LearningCurve(path)
    first.on_train_start(trainer(0), None)
    for step in (10, 20):
        first.on_validation_end(trainer(step, step // 10, val_nll=1.0, val_kl_gap=0.5), None)
    state = first.state_dict()
    first.on_validation_end(trainer(30, 3, val_nll=1.0, val_kl_gap=0.4), None)  # then killed
    resumed = LearningCurve(path)
    resumed.load_state_dict(state)  # the checkpoint of step 20
    resumed.on_train_start(trainer(20), None)
    resumed.on_validation_end(trainer(30, 3, val_nll=1.0, val_kl_gap=0.3), None)
    curve = rows(path)
    assert [r["step"] for r in curve] == ["10", "20", "30"]
    assert list(curve[0]) == ["epoch", "step", "seconds", "val/kl_gap", "val/nll"]
    assert float(curve[-1]["val/kl_gap"]) == pytest.approx(0.3)
    assert float(curve[-1]["seconds"]) >= state["seconds"]
    LearningCurve(path).on_train_start(trainer(0), None)  # a fresh run starts a new curve
    assert rows(path) == []


def test_a_sanity_check_or_a_run_without_validation_metrics_adds_no_row(tmp_path):
    path = tmp_path / "curve.csv"
    callback = LearningCurve(path)
    callback.on_train_start(trainer(0), None)
    checking = trainer(0, val_nll=1.0)
    checking.sanity_checking = True
    callback.on_validation_end(checking, None)
    callback.on_validation_end(trainer(5), None)  # only train/ metrics
    assert not path.exists()


def curve_file(run: Path, points: list[tuple[float, float]], column: str = "val/kl_gap") -> None:
    lines = [f"epoch,step,seconds,{column}"]
    lines += [f"{i},{10 * (i + 1)},{s},{v}" for i, (s, v) in enumerate(points)]
    (run / "curve.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for model, gap in (("gmm", 0.01), ("nsf", 0.05)):
        for seed in (0, 1):
            metrics = scored(gap, 3.0, 3.0, seed) | {"n_parameters": 1234.0}
            run = fake_run(root, f"{model}_{seed}", model, "rings", seed, metrics)
            curve_file(run, [(1.0 + seed, 0.5), (2.0, float("nan")), (3.0, gap)])
    return root


def test_curves_are_grouped_by_data_set_one_line_per_seed_without_blank_values(sweep):
    (panel,) = learning_curves(compare(find_runs([sweep]))).values()
    assert [(model, seconds) for model, seconds, _ in panel] == [
        ("gmm", [1.0, 3.0]),
        ("gmm", [2.0, 3.0]),
        ("nsf", [1.0, 3.0]),
        ("nsf", [2.0, 3.0]),
    ]
    assert panel[-1][2] == [0.5, 0.05]


def test_compare_draws_the_curves_and_the_cost_table(sweep, capsys):
    assert main([str(sweep), "--curves"]) == 0
    assert (sweep / "learning_curves.png").stat().st_size > 5_000
    table = (sweep / "comparison.md").read_text().split("## Cost by model and data set")[1]
    assert "| gmm | 1.5 s · 1,234 |" in table  # fit_seconds 1 and 2 over the two seeds


@pytest.mark.parametrize("broken", ["missing", "no_gap_column"])
def test_compare_refuses_a_run_without_a_curve_by_name(sweep, broken, capsys):
    run = sweep / "nsf_1"
    if broken == "missing":
        (run / "curve.csv").unlink()
    else:
        curve_file(run, [(1.0, 3.0)], column="val/nll")
    assert main([str(sweep), "--curves"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "nsf_1" in error and error.count("\n") == 1
    assert not (sweep / "learning_curves.png").exists()
    assert main([str(sweep)]) == 0  # without --curves nothing is asked of them


def test_em_counts_the_free_parameters_of_a_full_mixture():
    """K − 1 weights, K·D means, K·D(D+1)/2 covariances: 2 + 6 + 9 for K = 3, D = 2, where the
    tensors hold 3 + 6 + 6 + 12 numbers."""
    assert EMFit(GaussianMixture(3, 2)).parameter_count() == 17


def test_the_end_of_fit_figure_is_drawn_outside_the_curve_s_clock(
    tmp_path, monkeypatch, one_torch_thread
):
    """The last epoch's figure comes after the curve's last row: drawing it in that epoch's
    validation put its seconds (2 s for a 48-bin NSF) into the curve, as training time."""
    drawn: list[tuple[str, int]] = []

    def record(self, trainer, module, stage):
        drawn.append((stage, len(rows(tmp_path / "curve.csv"))))

    monkeypatch.setattr(FigureCallback, "_draw", record)
    overrides = ["model=gmm", "data=mog2d", "model.n_components=3", "trainer.max_epochs=3"]
    tiny = ["data.n_train=300", "data.n_val=200", "data.n_test=200", "~logger"]
    every_2 = ["callbacks.figures.every_n_epochs=2", "callbacks.progress_bar=null"]
    train(compose_config(*overrides, *tiny, *every_2, output_dir=tmp_path))
    assert drawn == [("fit", 1), ("fit", 3), ("samples", 3)]  # epoch 2 in its validation
