"""data=table with a data set's own splits (data.val_path, data.test_path): the layout of the
MAF/NSF tabular benchmarks once converted (docs/tabular_benchmarks.md), on small generated files.

One run is trained through the command line on three headerless .npy files and its test split
scored by `python -m src.score`; the other checks build the data module in-process.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from src import load_run
from src.data.table import TableDataModule
from src.errors import ConfigError, UserError
from src.utils.constraints import make
from src.utils.instantiate import check_node
from tests.conftest import run_module

SIZES = {"train": 300, "val": 40, "test": 50}
TARGET = "src.data.table.TableDataModule"


def benchmark_files(root: Path, suffix: str = ".npy") -> dict[str, Path]:
    """Three splits of a 3-D Gaussian in other units than the standard ones, as files of one
    layout: headerless .npy, or CSV with the header a,b,c."""
    rng = np.random.default_rng(0)
    files = {}
    for split, n in SIZES.items():
        values = (rng.normal(size=(n, 3)) * [1.0, 3.0, 0.2] + [5.0, -1.0, 0.0]).astype(np.float32)
        files[split] = root / f"{split}{suffix}"
        if suffix == ".npy":
            np.save(files[split], values)
        else:
            np.savetxt(files[split], values, delimiter=",", header="a,b,c", comments="", fmt="%.6g")
    return files


def own_splits(files: dict[str, Path], **settings) -> TableDataModule:
    paths = {"val_path": str(files["val"]), "test_path": str(files["test"])}
    return make(TableDataModule, path=str(files["train"]), **paths, **settings)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("splits")
    files = benchmark_files(root)
    done = run_module(
        "src.train",
        "data=table",
        f"data.path={files['train']}",
        f"data.val_path={files['val']}",
        f"data.test_path={files['test']}",
        "model=gmm",
        "trainer.max_epochs=2",
        "callbacks=none",
        "~logger",
        f"paths.log_dir={root / 'runs'}",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run_dir,) = (root / "runs").glob("train/runs/*")
    return run_dir, files


def test_the_test_split_scored_is_exactly_the_test_file(run, tmp_path):
    run_dir, files = run
    out = tmp_path / "scores.csv"
    done = run_module("src.score", f"ckpt_path={run_dir}", f"out={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    scores = np.loadtxt(out, delimiter=",", skiprows=1)
    test = np.load(files["test"])
    assert len(scores) == len(test) == SIZES["test"]
    model, _ = load_run(run_dir)
    with torch.no_grad():
        ends = model.log_prob(torch.from_numpy(test[[0, -1]])).double().numpy()
    np.testing.assert_allclose(scores[[0, -1]], ends, rtol=0, atol=1e-9)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test/nll"] == pytest.approx(-scores.mean(), abs=1e-9)


def test_each_split_is_its_file_whole(tmp_path, caplog):
    files = benchmark_files(tmp_path)
    with caplog.at_level("INFO", logger="src.data.table"):
        data = own_splits(files)
    for split in SIZES:
        assert torch.equal(data.splits[split], torch.from_numpy(np.load(files[split])))
    assert "the data set's own splits" in caplog.text and str(files["test"]) in caplog.text


def test_standardization_comes_from_the_training_file_alone(tmp_path):
    files = benchmark_files(tmp_path)
    shift, scale = own_splits(files).standardization
    train = np.load(files["train"]).astype(np.float64)
    np.testing.assert_allclose(shift.numpy(), train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(scale.numpy(), train.std(0), rtol=1e-6)


def test_columns_in_another_order_read_identically(tmp_path):
    files = benchmark_files(tmp_path, ".csv")
    shuffled = {"train": files["train"]}
    for split in ("val", "test"):
        values = np.loadtxt(files[split], delimiter=",", skiprows=1)
        shuffled[split] = tmp_path / f"{split}_cab.csv"
        np.savetxt(shuffled[split], values[:, [2, 0, 1]], delimiter=",", header="c,a,b",
                   comments="", fmt="%.6g")  # fmt: skip
    data, again = own_splits(files), own_splits(shuffled)
    assert all(torch.equal(data.splits[s], again.splits[s]) for s in SIZES)
    chosen = own_splits(shuffled, columns=["c", "a"])  # data.columns chooses in every file
    torch.testing.assert_close(chosen.splits["test"], data.splits["test"][:, [2, 0]])


@pytest.mark.parametrize(
    ("header", "message"),
    [("a,c", "no column 'b'"), ("a,b,c,d", "extra column 'd'")],
)
def test_a_missing_or_extra_column_is_one_line_naming_the_file(tmp_path, header, message):
    files = benchmark_files(tmp_path, ".csv")
    width = len(header.split(","))
    np.savetxt(files["test"], np.ones((5, width)), delimiter=",", header=header, comments="")
    with pytest.raises(UserError) as error:
        own_splits(files)
    assert str(error.value).startswith(f"{files['test']}: {message}")
    assert "expected the training columns a, b, c" in str(error.value)
    assert "\n" not in str(error.value)


def test_one_own_split_draws_the_other_from_the_training_file(tmp_path):
    files = benchmark_files(tmp_path)
    data = make(TableDataModule, path=str(files["train"]), test_path=str(files["test"]))
    train = torch.from_numpy(np.load(files["train"]))
    assert [len(data.splits[s]) for s in SIZES] == [270, 30, 50]
    drawn = torch.cat([data.splits["train"], data.splits["val"]])
    assert torch.equal(drawn.sort(0).values, train.sort(0).values)


@pytest.mark.parametrize(
    ("settings", "start"),
    [
        ({"test_path": "test.npy", "test_fraction": 0.2}, "data.test_fraction=0.2 is invalid"),
        ({"val_path": "val.npy", "val_fraction": 0.3}, "data.val_fraction=0.3 is invalid"),
    ],
)
def test_a_fraction_beside_its_own_file_is_refused(tmp_path, settings, start):
    files = benchmark_files(tmp_path)
    node = {"_target_": TARGET, "path": str(files["train"])}
    settings = {k: str(tmp_path / v) if k.endswith("_path") else v for k, v in settings.items()}
    with pytest.raises(ConfigError) as error:
        check_node(node | settings, "data")
    message = str(error.value)
    assert message.startswith(start) and "\n" not in message
    split = start.split(".")[1].split("_")[0]
    assert f"data.{split}_path=" in message and f"data.{split}_path=null" in message


def test_the_training_file_as_its_own_test_split_is_refused(tmp_path):
    files = benchmark_files(tmp_path)
    with pytest.raises(ConfigError, match=r"^test_path='.*' is invalid: expected a file other"):
        make(TableDataModule, path=str(files["train"]), test_path=str(files["train"]))
    with pytest.raises(ConfigError, match=r"^val_path='nope.npy' is invalid: expected an existing"):
        make(TableDataModule, path=str(files["train"]), val_path="nope.npy")


def test_counts_beyond_the_training_bins_are_refused_by_line(tmp_path):
    for name, counts in {"train": [0, 3, 1, 2, 3, 1], "val": [1, 2], "test": [1, 4, 2]}.items():
        (tmp_path / f"{name}.csv").write_text("n\n" + "".join(f"{c}\n" for c in counts))
    files = {s: tmp_path / f"{s}.csv" for s in SIZES}
    with pytest.raises(UserError) as error:
        own_splits(files)
    assert str(error.value) == (
        f"{files['test']}, line 3, column 'n': 4 is beyond the training bins; expected a count "
        "in 0…3 (n_bins=4 from the training file)"
    )
    data = own_splits(files, n_bins=5)
    assert data.n_bins == 5 and data.splits["test"].tolist() == [1, 4, 2]
