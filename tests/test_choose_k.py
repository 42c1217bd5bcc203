"""`python -m src.compare` on a sweep over model.n_components: the K chosen by train/bic and by
val/nll, over the seeds every K completed, as a table, a figure and one printed line each."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from src.compare import compare_dirs
from src.sweeps.aggregate import compare
from src.sweeps.choose_k import CSV, FIGURE, MARKDOWN, k_curves, write_choose_k
from src.sweeps.runs import find_runs
from tests.conftest import compose_config, run_module
from tests.fake_runs import fake_run

# BIC lowest at K = 4, val/nll lowest at K = 8. K = 8's seed 2 failed, so seed 2 is left out at
# every K: its values (the traps at K = 1 and 2) would move both minima if they were averaged in.
BIC = {1: [900.0, 910.0, 10.0], 2: [700.0, 690.0, 700.0], 4: [600.0, 620.0, 5000.0]}
BIC |= {8: [650.0, 640.0, None]}
VAL = {1: [3.0, 3.2, 0.1], 2: [2.6, 2.6, 2.6], 4: [2.5, 2.5, 9.0], 8: [2.4, 2.44, None]}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def k_sweep(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for k in BIC:
        for seed in range(3):
            bic, val = BIC[k][seed], VAL[k][seed]
            metrics = {"test/nll": 3.0, "val/nll": val} | ({"train/bic": bic} if bic else {})
            run = (root, f"{k}_{seed}", "gmm", "mog2d", seed, metrics)
            fake_run(
                *run,
                status="completed" if bic else "failed",
                overrides=(f"model.n_components={k}",),
                choices={"fit": "em"},
            )
    return root


def test_each_criterion_chooses_its_k_over_the_seeds_every_k_completed(k_sweep, capsys):
    written = compare_dirs([k_sweep], None, figure=False)
    assert [p.name for p in written[2:]] == [CSV, MARKDOWN]
    assert capsys.readouterr().out.splitlines() == [
        "chosen K for model=gmm data=mog2d fit=em: 4 by train/bic, 8 by val/nll"
    ]
    rows = {row["K"]: row for row in read_csv(k_sweep / CSV)}
    assert list(rows) == ["1", "2", "4", "8"]
    assert {row["seeds"] for row in rows.values()} == {"0 1"}
    assert float(rows["1"]["train/bic:mean"]) == pytest.approx(905.0)  # seed 2's 10 left out
    assert float(rows["1"]["train/bic:se"]) == pytest.approx(5.0)
    assert float(rows["8"]["val/nll:mean"]) == pytest.approx(2.42)
    assert [r["chosen:train/bic"] for r in rows.values()] == ["", "", "*", ""]
    assert [r["chosen:val/nll"] for r in rows.values()] == ["", "", "", "*"]
    assert (rows["8"]["n_failed"], rows["4"]["n_failed"]) == ("1", "0")
    text = (k_sweep / MARKDOWN).read_text()
    assert "## model=gmm data=mog2d fit=em" in text
    assert "Chosen K: 4 by train/bic, 8 by val/nll (seeds 0 1)." in text
    assert "| 4 | **610 ± 10** | 2.5 ± 0 | 0 | 0 |" in text
    assert "| 8 | 645.0 ± 5.0 | **2.420 ± 0.020** | 1 | 0 |" in text


def test_the_figure_has_a_panel_per_criterion(k_sweep, tmp_path):
    curves = k_curves(compare(find_runs([k_sweep])))
    written = write_choose_k(curves, tmp_path, figure=True)
    assert written[-1] == tmp_path / FIGURE and (tmp_path / FIGURE).stat().st_size > 10_000


def test_a_tie_goes_to_the_smaller_k(tmp_path):
    for k in (2, 3):
        metrics = {"val/nll": 1.5, "train/bic": 100.0}
        fake_run(
            tmp_path, str(k), "gmm", "mog2d", 0, metrics, overrides=(f"model.n_components={k}",)
        )
    (curve,) = k_curves(compare(find_runs([tmp_path])))
    assert (curve.chosen("train/bic"), curve.chosen("val/nll")) == (2, 2)


def test_runs_that_do_not_vary_k_write_no_k_table(tmp_path, capsys):
    for model in ("gmm", "realnvp"):
        fake_run(tmp_path, model, model, "mog2d", 0, {"val/nll": 3.0, "test/nll": 3.1})
    fake_run(
        tmp_path, "k4", "gmm", "moons", 0, {"val/nll": 1.0}, overrides=("model.n_components=4",)
    )
    written = compare_dirs([tmp_path], None, figure=False)
    assert [p.name for p in written] == ["comparison.csv", "comparison.md"]
    assert not (tmp_path / CSV).exists() and capsys.readouterr().out == ""


def test_the_fiji_k_study_chooses_by_validation_nll(tmp_path, capsys):
    """CAVI has no BIC: the Fiji study's summary is the validation-NLL curve alone, per data
    setting that varies beside K (two curves here)."""
    sweep = compose_config("experiment=fiji_quakes_k", output_dir=tmp_path / "cfg")
    assert sweep.hydra.sweeper.params["model.n_components"] == "range(1,11)"
    assert sweep.optimized_metric == "val/nll"
    choices = {"model": "earthquake", "data": "fiji_quakes", "fit": "cavi"}
    choices |= {"experiment": "fiji_quakes_k"}
    val = {1: 23.6, 2: 20.3, 3: 20.4}
    for k, nll in val.items():
        for fraction, shift in (("0.1", 0.0), ("0.2", -5.0 * (k == 1))):
            metrics = {"val/nll": nll + shift, "test/nll": nll, "train/elbo": -nll}
            overrides = (f"model.n_components={k}", f"data.val_fraction={fraction}")
            run = (tmp_path / "runs", f"{k}_{fraction}", "earthquake", "fiji_quakes", 0, metrics)
            fake_run(*run, overrides=overrides, choices=choices)
    compare_dirs([tmp_path / "runs"], None, figure=False)
    assert capsys.readouterr().out.splitlines() == [
        "chosen K for model=earthquake data=fiji_quakes fit=cavi experiment=fiji_quakes_k "
        "data.val_fraction=0.1: 2 by val/nll",
        "chosen K for model=earthquake data=fiji_quakes fit=cavi experiment=fiji_quakes_k "
        "data.val_fraction=0.2: 1 by val/nll",
    ]
    header = list(read_csv(tmp_path / "runs" / CSV)[0])
    assert not [h for h in header if "bic" in h]
    assert "| K | val/nll | n_failed | n_running |" in (tmp_path / "runs" / MARKDOWN).read_text()


def test_a_real_k_sweep_through_the_command_line(tmp_path):
    small = ("data.n_train=600", "data.n_val=200", "data.n_test=200", "trainer.max_epochs=2")
    quiet = ("callbacks=none", "logger=[]", f"paths.log_dir={tmp_path}")
    swept = run_module(
        *("src.train", "-m", "model=gmm", "fit=em", "data=mog2d", "model.n_components=1,4"),
        *small,
        *quiet,
    )
    assert swept.returncode == 0, swept.stderr[-2000:]
    (sweep_dir,) = tmp_path.glob("*/multiruns/*")
    result = run_module("src.compare", str(sweep_dir), "--no-figure")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "chosen K for model=gmm data=mog2d fit=em: 4 by train/bic, 4 by val/nll" in (
        result.stdout
    )
    rows = read_csv(sweep_dir / CSV)
    assert [row["K"] for row in rows] == ["1", "4"]
    assert all(float(row["train/bic:mean"]) > 0 for row in rows)
