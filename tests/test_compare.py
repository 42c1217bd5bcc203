"""`python -m src.compare`: results over seeds, paired differences, failed runs counted and never
averaged in, and the figure of every model next to the truth."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from src.compare import compare_dirs, figure_rows, main
from src.sweeps.aggregate import compare
from src.sweeps.runs import find_runs
from tests.conftest import compose_config, run_module
from tests.fake_runs import fake_run, scored

# 2 models × 2 data sets × 3 seeds. mog2d has a truth (test/kl_gap), moons has none (test/nll).
# realnvp's seed 2 on mog2d failed: its metrics.json says so, and its 99s must never count.
GAP = {("gmm", 0): 0.010, ("gmm", 1): 0.013, ("gmm", 2): 0.016}
GAP |= {("realnvp", 0): 0.050, ("realnvp", 1): 0.056}
MOONS_NLL = {("gmm", s): 0.30 + 0.02 * s for s in range(3)}
MOONS_NLL |= {("realnvp", s): 0.20 + 0.03 * s for s in range(3)}


@pytest.fixture
def study(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    for model in ("gmm", "realnvp"):
        for seed in range(3):
            name = f"{model}_{seed}"
            gap = GAP.get((model, seed))
            if gap is None:
                fake_run(
                    root, f"{name}_mog2d", model, "mog2d", seed, scored(99, 99, 0, seed), "failed"
                )
            else:  # val/nll lowest for the highest seed: a trap for a `best` chosen by it
                fake_run(
                    root,
                    f"{name}_mog2d",
                    model,
                    "mog2d",
                    seed,
                    scored(gap, 3.5 + gap, 3 - seed, seed),
                )
            nll = MOONS_NLL[model, seed]
            fake_run(root, f"{name}_moons", model, "moons", seed, scored(None, nll, 3 - seed, seed))
    return root


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def by_config(rows: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, str]]:
    return {(row["model"], row["data"]): row for row in rows}


def se(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def test_mean_and_se_over_seeds_leave_the_failed_run_out(study):
    compare_dirs([study], None, figure=False)
    rows = by_config(read_csv(study / "comparison.csv"))
    assert len(rows) == 4
    gmm = rows["gmm", "mog2d"]
    assert float(gmm["test/kl_gap:mean"]) == pytest.approx(0.013)
    assert float(gmm["test/kl_gap:se"]) == pytest.approx(0.003 / math.sqrt(3))  # sd = 0.003
    assert (gmm["n_seeds"], gmm["n_failed"], gmm["seeds"]) == ("3", "0", "0 1 2")
    realnvp = rows["realnvp", "mog2d"]  # seeds 0 and 1 only: the failed seed 2 is not in it
    assert float(realnvp["test/kl_gap:mean"]) == pytest.approx(0.053)
    assert float(realnvp["test/kl_gap:se"]) == pytest.approx(0.003)  # sd = 0.003·√2, n = 2
    assert float(realnvp["test/nll:mean"]) == pytest.approx(3.553)
    assert (realnvp["n_seeds"], realnvp["n_failed"], realnvp["seeds"]) == ("2", "1", "0 1")
    moons = rows["realnvp", "moons"]
    assert float(moons["test/nll:mean"]) == pytest.approx(0.23)
    assert float(moons["test/nll:se"]) == pytest.approx(se([0.20, 0.23, 0.26]))
    assert moons["test/kl_gap:mean"] == ""  # no truth, no gap


def test_seed_is_not_a_grouping_column(study):
    compare_dirs([study], None, figure=False)
    header = list(read_csv(study / "comparison.csv")[0])
    assert "seed" not in header and "paths.log_dir" not in header
    assert header[:3] == ["model", "data", "fit"]  # old runs without a `fit` choice: mle
    assert {row["fit"] for row in read_csv(study / "comparison.csv")} == {"mle"}


def test_paired_differences_use_the_seeds_both_models_completed(study):
    comparison = compare(find_runs([study]))
    ((a, b, diff),) = comparison.pairs("mog2d")
    assert (a, b, diff.n) == ("gmm", "realnvp", 2)  # seed 2 failed for realnvp
    assert diff.mean == pytest.approx(-0.0415)  # (0.010 − 0.050 + 0.013 − 0.056) / 2
    assert diff.se == pytest.approx(se([-0.040, -0.043]))
    ((_, _, moons),) = comparison.pairs("moons")
    assert (moons.n, moons.mean) == (3, pytest.approx(0.09))
    assert moons.se == pytest.approx(0.01 / math.sqrt(3))
    text = (compare_dirs([study], None, figure=False)[1]).read_text()
    assert "| mog2d | test/kl_gap | gmm | realnvp | 2 | -0.0415 ± 0.0015 |" in text
    assert "| moons | test/nll | gmm | realnvp | 3 | 0.0900 ± 0.0058 |" in text


def test_best_per_data_set_is_bold_and_a_data_set_without_truth_says_so(study):
    compare_dirs([study], None, figure=False)
    text = (study / "comparison.md").read_text()
    assert "| model | mog2d | moons (test/nll: no oracle) |" in text
    assert "| gmm | **0.0130 ± 0.0017** | 0.320 ± 0.012 |" in text
    assert "| realnvp | 0.0530 ± 0.0030 (1 failed) | **0.230 ± 0.017** |" in text
    assert text.count("| **") == 2  # one best per data set


def test_unfinished_runs_are_counted_and_the_latest_run_of_a_seed_counts(tmp_path):
    root = tmp_path / "runs"
    fake_run(root, "a", "gmm", "mog2d", 0, scored(0.5, 4.0, 4.0, 0), "interrupted")
    fake_run(root, "b", "gmm", "mog2d", 1, None)  # killed: no metrics.json
    fake_run(root, "c", "gmm", "mog2d", 2, None, record={"status": "running", "started": 1.0})
    fake_run(root, "d", "gmm", "mog2d", 3, scored(0.9, 4.4, 4.0, 3), record={"started": 2.0})
    fake_run(root, "e", "gmm", "mog2d", 3, scored(0.1, 3.6, 4.0, 3), record={"started": 3.0})
    (config,) = compare(find_runs([root])).configs
    assert (len(config.by_seed), config.n_failed, config.n_running) == (1, 2, 1)
    assert config.stat("test/kl_gap").mean == 0.1  # the later run of seed 3
    compare_dirs([root], None, figure=False)
    assert "Left out: 1 earlier completed run(s)" in (root / "comparison.md").read_text()


def test_labels_name_only_what_sets_models_apart(tmp_path):
    root = tmp_path / "runs"
    gmm, realnvp = {"experiment": "gmm_mog2d"}, {"experiment": "realnvp_banana"}
    fake_run(root, "a", "gmm", "mog2d", 0, scored(0.1, 3.6, 3.6, 0), choices=gmm)
    fake_run(root, "b", "gmm", "mog2d", 0, scored(0.2, 3.7, 3.6, 0), choices=gmm | {"fit": "em"})
    fake_run(root, "c", "realnvp", "banana", 0, scored(0.3, 2.2, 2.2, 0), choices=realnvp)
    n_train = ("data.n_train=100",)
    fake_run(root, "d", "gmm", "mog2d", 0, scored(0.4, 3.9, 3.6, 0), overrides=n_train, choices=gmm)
    comparison = compare(find_runs([root]))
    # each experiment only names a model on a data set: it tells no two rows apart
    assert comparison.models == ["gmm fit=mle", "gmm fit=em", "realnvp fit=mle"]
    assert comparison.datasets == ["mog2d", "banana", "mog2d data.n_train=100"]
    assert comparison.cell("gmm fit=mle", "mog2d data.n_train=100").stat("test/kl_gap").mean == 0.4


def test_run_directories_are_found_once_and_eval_or_resumed_dirs_are_not_runs(study):
    run = study / "gmm_0_mog2d"
    shutil.copytree(run / ".hydra", run / "resumed" / "t" / ".hydra")  # a resume's own config
    fake_run(study, "eval", "gmm", "mog2d", 0, {"test/nll": 1.0})
    hydra = study / "eval" / ".hydra" / "hydra.yaml"
    content = yaml.safe_load(hydra.read_text())
    content["hydra"]["job"]["config_name"] = "eval"
    hydra.write_text(yaml.safe_dump(content))
    assert len(find_runs([study, run, study.parent])) == 12


def test_cli_refuses_a_missing_directory_or_one_without_runs_in_one_line(tmp_path):
    missing = run_module("src.compare", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [f"error: {tmp_path / 'nope'} is not a directory"]
    empty = run_module("src.compare", str(tmp_path))
    assert empty.returncode == 2 and len(empty.stderr.splitlines()) == 1
    assert empty.stderr.startswith(f"error: no runs under {tmp_path}")


def test_cli_writes_the_tables_where_asked(study, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(study), "--out", str(out), "--no-figure"]) == 0
    assert capsys.readouterr().out.split() == [
        str(out / "comparison.csv"),
        str(out / "comparison.md"),
    ]
    assert not (study / "comparison.csv").exists()


# --- the figure ----------------------------------------------------------------------------


def saved_run(root: Path, name: str, model: str, data: str, gap: float) -> Path:
    """A run of a real model config with untrained weights saved as Lightning saves them."""
    import torch
    from hydra.utils import instantiate

    run = fake_run(root, name, model, data, 0, scored(gap, 1.0 + gap, 1.0, 0))
    cfg = compose_config(f"model={model}", f"data={data}", output_dir=run)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")
    weights = {f"model.{k}": v for k, v in instantiate(cfg.model).state_dict().items()}
    (run / "checkpoints").mkdir()
    torch.save({"state_dict": weights, "epoch": 0}, run / "checkpoints" / "last.ckpt")
    return run


def grid_cells(fig) -> tuple[tuple[int, int], dict[str, object]]:
    """The grid's shape and its cells by title (colour bars are not cells)."""
    grid = [ax for ax in fig.axes if ax.get_subplotspec() is not None]
    shape = grid[0].get_subplotspec().get_geometry()[:2]
    return shape, {ax.get_title().split(" (")[0]: ax for ax in grid if ax.get_title()}


def test_figure_has_a_row_per_data_set_the_truth_first_and_a_column_per_model(tmp_path):
    from src.plots.comparison import draw

    root = tmp_path / "runs"
    saved_run(root, "gmm", "gmm", "mog2d", 0.01)
    saved_run(root, "realnvp", "realnvp", "mog2d", 0.02)
    saved_run(root, "flow1d", "flow1d", "mog1d", 0.03)
    broken = saved_run(root, "hist", "histogram", "mog1d", 0.04)
    (broken / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    fig = draw(figure_rows(compare(find_runs([root]))), tmp_path / "comparison.png")
    assert (tmp_path / "comparison.png").stat().st_size > 10_000
    shape, cells = grid_cells(fig)
    assert shape == (2, 5)  # mog2d, mog1d × truth, gmm, realnvp, flow1d, histogram
    assert list(cells) == ["mog2d: truth", "gmm", "realnvp", "mog1d: truth", "flow1d", "histogram"]
    assert "\nkl_gap 0.01 (1 seed)" in cells["gmm"].get_title()
    assert cells["mog2d: truth"].images and cells["realnvp"].images  # 2-D: densities
    assert len(fig.axes) == 2 * 5 + 3  # with a colour bar beside each
    assert cells["mog1d: truth"].lines and len(cells["flow1d"].lines) == 2  # 1-D: model, truth
    (note,) = cells["histogram"].texts
    said = note.get_text().replace("\n", " ")
    assert said.startswith("cannot rebuild the model: ConfigError: run=")


# --- the figure of real runs ----------------------------------------------------------


def train_run(run_dir: Path, model: str, *overrides: str) -> None:
    """A tiny real run with the `.hydra/` files Hydra would have written around `train`."""
    from src.train import train

    typed = [f"model={model}", "data=mog2d", "seed=0", *overrides]
    tiny = ["trainer.max_epochs=2", "data.n_train=500", "data.n_val=200", "data.n_test=500"]
    quiet = ["~logger", "callbacks.figures=null", "callbacks.progress_bar=null"]
    cfg = compose_config(*typed, *tiny, *quiet, output_dir=run_dir)
    train(cfg)
    hydra = {
        "hydra": {
            "job": {"num": 0, "config_name": "train"},
            "runtime": {"choices": {"model": model, "data": "mog2d"}},
        }
    }
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
    (run_dir / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(typed))


@pytest.mark.slow
def test_figure_of_real_runs_draws_the_truth_and_each_model_and_survives_a_broken_run(
    tmp_path, one_torch_thread, monkeypatch
):
    from src.plots import comparison as plots

    train_run(tmp_path / "runs" / "gmm", "gmm", "model.n_components=8")
    train_run(tmp_path / "runs" / "realnvp", "realnvp")
    broken = tmp_path / "runs" / "broken"
    shutil.copytree(tmp_path / "runs" / "gmm", broken)
    typed = ["model=gmm", "model.n_components=3"]
    (broken / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(typed))
    (broken / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    figures = []
    draw = plots.draw
    monkeypatch.setattr(plots, "draw", lambda *args: figures.append(draw(*args)))

    assert main([str(tmp_path / "runs")]) == 0
    assert (tmp_path / "runs" / "comparison.png").stat().st_size > 10_000
    (fig,) = figures
    shape, cells = grid_cells(fig)
    assert shape == (1, 4)  # truth + 3 models
    assert len(fig.axes) == 4 + 3  # a colour bar beside each density drawn
    assert cells.keys() == {
        "mog2d: truth",
        "gmm model.n_components=8",
        "realnvp",
        "gmm model.n_components=3",
    }
    assert "\nkl_gap " in cells["realnvp"].get_title()
    assert cells["realnvp"].images and cells["gmm model.n_components=8"].images
    (note,) = cells["gmm model.n_components=3"].texts
    assert note.get_text().startswith("cannot rebuild the model")


def test_readme_block_is_replaced_by_the_models_by_data_table(study, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- comparison:start -->\nstale\n<!-- comparison:end -->\nrest\n")
    args = [str(study), "--out", str(tmp_path / "out"), "--no-figure", "--readme", str(readme)]
    assert main(args) == 0
    text = readme.read_text()
    assert text.startswith("intro\n<!-- comparison:start -->\n") and text.endswith("-->\nrest\n")
    block = text.split("<!-- comparison:start -->")[1].split("<!-- comparison:end -->")[0]
    assert "stale" not in block and "#" not in block  # no heading, no other section
    assert [line for line in block.splitlines() if line.startswith("|")] == [
        "| model | mog2d | moons (test/nll: no oracle) |",
        "|---|---|---|",
        "| gmm | **0.0130 ± 0.0017** | 0.320 ± 0.012 |",
        "| realnvp | 0.0530 ± 0.0030 (1 failed) | **0.230 ± 0.017** |",
    ]
    readme.write_text("no markers\n")
    capsys.readouterr()
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"error: --readme {readme}: no <!-- comparison:start --> … <!-- comparison:end --> "
        "block to replace\n"
    )
    assert readme.read_text() == "no markers\n"  # left as it was
