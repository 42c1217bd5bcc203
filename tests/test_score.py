"""`src.score` and `load_run`: a trained run's log-density of every row, as the run measured it.

Runs are trained once per module through the real command line; scoring bad files runs
in-process (the same function the command calls), and once through the command line for the
exit code and the one stderr line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src import load_run
from src.build import build_datamodule
from src.errors import UserError
from src.score import score
from tests.conftest import compose_config, run_module, trained_run

COLUMNS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(0)
    table = rng.normal(size=(400, 3)) * [1.0, 2.0, 0.5] + [5.0, 0.0, -1.0]
    np.savetxt(root / "train.csv", table, delimiter=",", header=",".join(COLUMNS), comments="")
    counts = rng.poisson(3.0, size=(400, 1))
    np.savetxt(root / "counts.csv", counts, delimiter=",", header="n", comments="", fmt="%d")
    return {
        "root": root,
        "table": trained_run(
            root, "table", "data=table", f"data.path={root / 'train.csv'}", "model=gmm"
        ),
        "synthetic": trained_run(root, "synthetic", "data.n_train=300", "data.n_test=500"),
        "em": trained_run(root, "em", "model=gmm", "fit=em", "data=mog2d", "data.n_train=500"),
        "discrete": trained_run(
            root, "discrete", "data=table", f"data.path={root / 'counts.csv'}", "model=histogram"
        ),
    }


def scored(run_dir: Path, out: Path, data_path: Path | None = None) -> dict:
    overrides = [f"ckpt_path={run_dir}", f"out={out}"]
    if data_path is not None:
        overrides.append(f"data.path={data_path}")
    cfg = compose_config(*overrides, output_dir=out.parent, config_name="score")
    return score(cfg)


def test_scoring_a_runs_test_split_gives_its_test_nll(runs, tmp_path):
    for kind in ("table", "synthetic", "em", "discrete"):
        summary = scored(runs[kind], tmp_path / f"{kind}.csv")
        metrics = json.loads((runs[kind] / "metrics.json").read_text())
        assert summary["nll"] == pytest.approx(metrics["test/nll"], abs=1e-9), kind
        values = np.loadtxt(tmp_path / f"{kind}.csv", delimiter=",", skiprows=1)
        assert -values.mean() == pytest.approx(metrics["test/nll"], abs=1e-9)
        assert summary["rows"] == len(values)
        assert summary["nll_se"] == pytest.approx(values.std(ddof=1) / len(values) ** 0.5)
        saved = json.loads((tmp_path / f"{kind}.json").read_text())
        assert saved["nll"] == summary["nll"] and saved["model"] == metrics["model"]


def test_load_run_reproduces_the_test_nll(runs):
    """The notebook path: the model from `load_run`, the test split from the run's own config."""
    for kind in ("table", "synthetic", "em"):
        model, cfg = load_run(runs[kind])
        test = build_datamodule(cfg).splits["test"]
        with torch.no_grad():
            nll = -model.log_prob(test).double().mean().item()
        metrics = json.loads((runs[kind] / "metrics.json").read_text())
        assert nll == pytest.approx(metrics["test/nll"], abs=1e-9), kind
        assert isinstance(model, torch.nn.Module) and model.sample(7).shape[0] == 7


def test_columns_are_matched_by_name_in_any_order(runs, tmp_path):
    root = runs["root"]
    table = np.loadtxt(root / "train.csv", delimiter=",", skiprows=1)
    np.savetxt(tmp_path / "cab.csv", table[:, [2, 0, 1]], delimiter=",", header="c,a,b",
               comments="")  # fmt: skip
    first = scored(runs["table"], tmp_path / "abc.npy", root / "train.csv")
    second = scored(runs["table"], tmp_path / "cab.npy", tmp_path / "cab.csv")
    np.testing.assert_array_equal(np.load(tmp_path / "abc.npy"), np.load(tmp_path / "cab.npy"))
    assert first["rows"] == second["rows"] == 400 and first["nll"] == second["nll"]
    model, _ = load_run(runs["table"])  # the values are the model's log-density of each row
    with torch.no_grad():
        expected = model.log_prob(torch.tensor(table, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(np.load(tmp_path / "abc.npy"), expected, rtol=0, atol=1e-12)
    assert second["sha256"] != first["sha256"] and len(first["sha256"]) == 64


BAD_FILES = {
    "missing.csv": ("c,a\n1,2\n", "no column 'b'; expected the training columns a, b, c"),
    "extra.csv": ("a,b,c,d\n1,2,3,4\n", "extra column 'd'"),
    "text.csv": ("a,b,c\n1,2,3\n1,x,3\n", "line 3, column 'b': 'x' is not a number"),
    "nan.csv": ("a,b,c\n1,2,3\n1,2,nan\n", "line 3, column 'c': nan is not a finite number"),
    "ragged.csv": ("a,b,c\n1,2,3\n1,2\n", "line 3"),
    "empty.csv": ("", "the file is empty"),
    "label.csv": ("a,b,c,name\n1,2,3,x\n", "not numeric: column 'name'"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_every_bad_file_is_one_line_and_nothing_is_written(runs, tmp_path, name):
    text, message = BAD_FILES[name]
    (tmp_path / name).write_text(text)
    out = tmp_path / "scores.csv"
    with pytest.raises(UserError, match="^" + str(tmp_path / name)) as error:
        scored(runs["table"], out, tmp_path / name)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no scores, no part file


def test_a_count_beyond_the_models_bins_is_refused(runs, tmp_path):
    # the bins are the training file's max + 1 (Poisson(3) counts): 1000 is beyond them
    (tmp_path / "many.csv").write_text("n\n1\n1000\n")
    with pytest.raises(UserError, match=r"many.csv, line 3, column 'n': 1000 is beyond"):
        scored(runs["discrete"], tmp_path / "s.csv", tmp_path / "many.csv")
    (tmp_path / "half.csv").write_text("n\n1\n2.5\n")
    with pytest.raises(UserError, match=r"half.csv, line 3, column 'n': 2.5 is not a whole"):
        scored(runs["discrete"], tmp_path / "s.csv", tmp_path / "half.csv")


def test_the_command_line_exits_2_with_one_line(runs, tmp_path):
    (tmp_path / "missing.csv").write_text("a,b\n1,2\n")
    done = run_module(
        "src.score",
        f"ckpt_path={runs['table']}",
        f"out={tmp_path / 's.csv'}",
        f"data.path={tmp_path / 'missing.csv'}",
        f"paths.log_dir={tmp_path / 'log'}",
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'missing.csv'}")
    assert not (tmp_path / "s.csv").exists()


def training_data(runs) -> object:
    from src.data.table import TableDataModule

    return TableDataModule(str(runs["root"] / "train.csv"))


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_a_file_streams_in_blocks_that_make_up_the_whole(runs, tmp_path, suffix):
    """Blocks of 7 rows of a 50-row file (a last block of 1): together the reader's whole read."""
    from src.data.new_rows import read_rows, row_blocks

    table = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32)
    path = tmp_path / f"rows{suffix}"
    if suffix == ".npy":
        np.save(path, table)  # no names: matched by position
    else:
        np.savetxt(path, table, delimiter=",", header="b,c,a", comments="", fmt="%.9g")
    data = training_data(runs)
    blocks = list(row_blocks(path, data, rows=7))
    assert [len(b) for b in blocks] == [7] * 7 + [1]
    whole = read_rows(path, data)
    torch.testing.assert_close(torch.cat(blocks), whole, rtol=0, atol=0)
    order = [2, 0, 1] if suffix == ".csv" else [0, 1, 2]
    torch.testing.assert_close(whole, torch.from_numpy(table[:, order]), rtol=0, atol=0)


def test_a_bad_cell_in_a_later_block_is_named_by_its_line(runs, tmp_path):
    from src.data.new_rows import row_blocks

    lines = ["a,b,c"] + [f"{i},{i},{i}" for i in range(40)]
    lines[33] = "1,oops,3"  # file line 34, in the fifth block of 7
    (tmp_path / "late.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"late.csv, line 34, column 'b': 'oops' is not a number"):
        list(row_blocks(tmp_path / "late.csv", training_data(runs), rows=7))
    lines[33] = "1,inf,3"
    (tmp_path / "late.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=r"late.csv, line 34, column 'b': inf is not a finite"):
        list(row_blocks(tmp_path / "late.csv", training_data(runs), rows=7))


def test_ctrl_c_midway_leaves_no_file_and_ends_in_one_line(tmp_path, capsys):
    """Ctrl+C while rows are being written: neither the target nor its temporary file is left,
    and the command ends with one line and exit code 130, not a traceback."""
    from src.utils.cli import run_cli
    from src.utils.row_files import row_file

    def interrupted(cfg):
        with row_file(tmp_path / "scores.csv", ["log_density"], [np.dtype(np.float64)]) as write:
            write(np.zeros(10))
            raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stop:
        run_cli(interrupted, None)
    assert stop.value.code == 130
    assert capsys.readouterr().err == "error: interrupted (Ctrl+C)\n"
    assert list(tmp_path.iterdir()) == []
