"""data=table: any numeric file as a data set, its one-line refusals, and fits in the file's units.

The examples under data/examples/table_*.csv come from `example_tables()` below (a test checks
they still do). The run assembly (src/build.py) wraps the model in the data set's
standardization; `wired` keeps the built data module for a test to inspect.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal

from src.data.table import TableDataModule
from src.errors import ConfigError, UserError
from src.models.flow1d import MixtureCDFFlow1d
from src.models.gmm import GaussianMixture
from src.models.realnvp import RealNVP
from src.models.standardized import Standardized, standardized
from src.train import train
from src.utils.constraints import make
from tests.conftest import ROOT, compose_config, run_module

EXAMPLES = ROOT / "data" / "examples"
SHORT = ("trainer.max_epochs=3", "logger=csv", "callbacks.figures.every_n_epochs=2")


def example_tables() -> dict[str, str]:
    """The shipped examples, 300 rows each: a 1-D bimodal sample, a 2-D banana in two different
    units, two 4-D Gaussian clusters with a text label column, and counts from two binomials."""
    rng, n = np.random.default_rng(18), 300
    first = rng.random(n) < 0.4
    x = np.where(first, rng.normal(-2.0, 0.5, n), rng.normal(1.5, 0.8, n))
    a = rng.normal(size=n)
    b = 0.5 * rng.normal(size=n) + 0.5 * (a**2 - 1)
    label = rng.random(n) < 0.5
    cloud = rng.normal(size=(n, 4)) + np.where(label[:, None], 2.0, -2.0)
    low = rng.random(n) < 0.5
    counts = np.where(low, rng.binomial(11, 0.2, n), rng.binomial(11, 0.7, n))
    return {
        "table_1d.csv": "x\n" + "".join(f"{v:.4f}\n" for v in x),
        "table_2d.csv": "height_cm,weight_kg\n"
        + "".join(f"{170 + 10 * u:.2f},{70 + 12 * v:.2f}\n" for u, v in zip(a, b)),
        "table_4d.csv": "x1,x2,x3,x4,label\n"
        + "".join(
            ",".join(f"{v:.4f}" for v in row) + f",{'ab'[int(c)]}\n" for row, c in zip(cloud, label)
        ),
        "table_counts.csv": "count\n" + "".join(f"{c}\n" for c in counts),
    }


def table(tmp_path: Path, text: str | bytes, name: str = "t.csv", **settings) -> TableDataModule:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return TableDataModule(str(path), **settings)


def rows(n: int, columns: int = 2, seed: int = 0) -> str:
    values = np.random.default_rng(seed).normal(size=(n, columns))
    header = ",".join(f"c{j}" for j in range(columns))
    return header + "\n" + "".join(",".join(f"{v:.5f}" for v in r) + "\n" for r in values)


@pytest.fixture
def wired(monkeypatch):
    """The data module the run assembly builds, kept for the test to inspect."""
    import src.build

    built = {}
    build_datamodule = src.build.build_datamodule

    def build_data(cfg):
        built["data"] = build_datamodule(cfg)
        return built["data"]

    monkeypatch.setattr(src.build, "build_datamodule", build_data)
    return built


# ---- the shipped examples ---------------------------------------------------------------------


def test_examples_follow_their_recipe():
    for name, text in example_tables().items():
        assert (EXAMPLES / name).read_text() == text, name


@pytest.mark.parametrize(
    ("name", "settings", "event_shape", "dim", "usecols"),
    [
        ("table_1d.csv", {}, (), None, [0]),
        ("table_2d.csv", {}, (2,), 2, [0, 1]),
        ("table_4d.csv", {}, (4,), 4, [0, 1, 2, 3]),
        ("table_4d.csv", {"columns": ["x2", 0]}, (2,), 2, [1, 0]),
    ],
)
def test_continuous_examples_load(name, settings, event_shape, dim, usecols):
    """Every row once, in the chosen columns and their order (x2 before x1)."""
    data = TableDataModule(f"data/examples/{name}", **settings)
    file = np.loadtxt(EXAMPLES / name, np.float32, delimiter=",", skiprows=1, usecols=usecols)
    rows = torch.cat([data.splits[s] for s in ("train", "val", "test")]).reshape(300, -1)
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, file.reshape(300, -1).tolist()))
    assert data.support == "continuous" and tuple(data.event_shape) == event_shape
    assert data.dim == dim and data.n_bins is None and data.truth is None
    assert data.train_x.dtype == torch.float32 and data.batch_size == 256
    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [240, 30, 30]
    assert data.standardization is not None


def test_the_text_column_is_left_out_and_logged(caplog):
    with caplog.at_level(logging.INFO, logger="src.data.table"):
        TableDataModule("data/examples/table_4d.csv")
    assert "not numeric, left out: column 'label'" in caplog.text
    assert "column 'x1', column 'x2', column 'x3', column 'x4' (continuous)" in caplog.text


def test_counts_are_discrete_with_inferred_bins(caplog):
    with caplog.at_level(logging.INFO, logger="src.data.table"):
        data = TableDataModule("data/examples/table_counts.csv")
    counts = np.loadtxt(EXAMPLES / "table_counts.csv", skiprows=1, dtype=int)
    assert data.support == "discrete" and data.train_x.dtype == torch.long
    assert data.n_bins == counts.max() + 1 and data.dim is None and data.batch_size is None
    assert data.standardization is None
    assert f"n_bins={data.n_bins}, the largest count + 1" in caplog.text
    assert TableDataModule("data/examples/table_counts.csv", n_bins=40).n_bins == 40
    assert TableDataModule("data/examples/table_counts.csv", dtype="continuous").n_bins is None


# ---- what is accepted -----------------------------------------------------------------------


def test_byte_order_mark_windows_line_endings_and_empty_lines(tmp_path):
    """Columns chosen by name: a byte-order mark left on the first name would hide it."""
    plain = table(tmp_path, rows(50), "plain.csv", columns=["c0", "c1"])
    lines = rows(50).splitlines()
    windows = "\r\n".join([*lines[:10], "", *lines[10:], "", ""])  # and two empty lines
    data = table(tmp_path, b"\xef\xbb\xbf" + windows.encode(), "windows.csv", columns=["c0", "c1"])
    for split in ("train", "val", "test"):
        assert torch.equal(data.splits[split], plain.splits[split])


def test_headerless_tsv_and_a_savetxt_header(tmp_path):
    values = np.random.default_rng(1).normal(size=(40, 3))
    np.savetxt(tmp_path / "bare.tsv", values, delimiter="\t")
    np.savetxt(tmp_path / "named.csv", values, delimiter=",", header="a,b,c")
    bare = TableDataModule(str(tmp_path / "bare.tsv"), columns=[2, 0])
    named = TableDataModule(str(tmp_path / "named.csv"), columns=["c", "a"])
    assert torch.equal(bare.train_x, named.train_x)
    expected = torch.from_numpy(values[:, [2, 0]]).float()
    assert {tuple(r) for r in bare.train_x.tolist()} <= {tuple(r) for r in expected.tolist()}


def test_a_trailing_delimiter_adds_no_column(tmp_path):
    data = table(tmp_path, "x,y,\n" + "".join(f"{i}.5,{i % 7}.25,\n" for i in range(30)))
    assert data.dim == 2


def test_numpy_files(tmp_path):
    values = np.random.default_rng(2).normal(size=(60, 3)).astype(np.float64)
    np.save(tmp_path / "x.npy", values)
    np.savez(tmp_path / "x.npz", train=values, other=values[:5])
    np.save(tmp_path / "k.npy", np.arange(60) % 7)
    a = TableDataModule(str(tmp_path / "x.npy"), columns=[0, 1])
    b = TableDataModule(str(tmp_path / "x.npz"), key="train", columns=[0, 1])
    assert torch.equal(a.train_x, b.train_x) and a.dim == 2
    counts = TableDataModule(str(tmp_path / "k.npy"))
    assert counts.support == "discrete" and counts.n_bins == 7


def test_parquet_reads_the_chosen_columns_row_for_row(tmp_path):
    """pandas and pyarrow come with the test extra, so this runs wherever the tests do."""
    import pandas as pd

    x = np.linspace(0, 1, 50)
    frame = pd.DataFrame({"x": x, "n": np.arange(50) % 5, "s": ["a"] * 50})
    frame.to_parquet(tmp_path / "t.parquet")
    data = TableDataModule(str(tmp_path / "t.parquet"), columns=["n", "x"], dtype="continuous")
    rows = torch.cat([data.splits[s] for s in ("train", "val", "test")])
    expected = np.stack([np.arange(50) % 5, x], axis=1).astype(np.float32)
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, expected.tolist()))
    assert data.dim == 2 and data.support == "continuous"
    counts = TableDataModule(str(tmp_path / "t.parquet"), columns=["n"])
    assert counts.support == "discrete" and counts.n_bins == 5


# ---- integers beside real numbers: refused, each way out named --------------------------------


def mixed(n: int = 60) -> str:
    """Two measurements and an integer label, as iris is: the label's values are integers."""
    rng = np.random.default_rng(3)
    label = rng.integers(0, 3, n)
    a, b = rng.normal(size=n) + label, rng.normal(size=n)
    return "a,b,label\n" + "".join(f"{u:.3f},{v:.3f},{k}\n" for u, v, k in zip(a, b, label))


def test_integers_beside_real_numbers_are_refused_naming_each_way_out(tmp_path):
    with pytest.raises(UserError) as error:
        table(tmp_path, mixed())
    message = str(error.value)
    assert message == (
        f"{tmp_path / 't.csv'}: integer column 'label' beside real-valued columns 'a', 'b': "
        "data.dtype=auto does not guess whether integers are counts or real numbers; choose "
        "data.columns=[a,b] (the real-valued columns), data.dtype=continuous (every column as "
        "real numbers) or data.columns=[label] (counts alone, for a discrete model)"
    )
    reals = table(tmp_path, mixed(), columns=["a", "b"])
    assert reals.support == "continuous" and reals.dim == 2
    every = table(tmp_path, mixed(), dtype="continuous")
    assert every.support == "continuous" and every.dim == 3
    counts = table(tmp_path, mixed(), columns=["label"])
    assert counts.support == "discrete" and counts.n_bins == 3


def test_a_headerless_or_oddly_named_mix_is_refused_with_columns_to_type(tmp_path):
    bare = "\n".join(mixed().splitlines()[1:]) + "\n"
    with pytest.raises(UserError, match=r"integer column 2 beside real-valued columns 0, 1: .*"
                       r"data\.columns=\[0,1\] .* data\.columns=\[2\] \(counts"):  # fmt: skip
        table(tmp_path, bare)
    odd = "length (cm),2020\n" + "".join(f"{i}.5,{i % 3}\n" for i in range(30))
    with pytest.raises(UserError, match=r"data\.columns=\['length \(cm\)'\] .* "
                       r"data\.columns=\['2020'\] \(counts"):  # fmt: skip
        table(tmp_path, odd)
    assert table(tmp_path, odd, columns=["length (cm)"]).dim is None  # as the line writes it
    assert table(tmp_path, odd, columns=["2020"]).n_bins == 3


def test_integers_are_told_by_how_they_are_written(tmp_path):
    """3.0 is a real number that happens to be whole, 3 an integer; a column is integers only if
    every cell is written as one (its first cell alone does not decide)."""
    floats = "x,y\n" + "".join(f"{i}.25,{i % 4}.0\n" for i in range(30))
    assert table(tmp_path, floats).dim == 2  # whole numbers written as 3.0: real numbers
    later = "x,y\n" + "".join(f"{i}.25,{i % 4}\n" for i in range(29)) + "1.5,2.5\n"
    assert table(tmp_path, later).dim == 2  # y's last cell is 2.5: a column of real numbers
    both = "x,y\n" + "".join(f"{i}.25,{i % 4}\n" for i in range(29)) + "1.5,2.0\n"
    assert table(tmp_path, both).dim == 2  # y's last cell is written 2.0
    ints = "x,y,k\n" + "".join(f"{i}.25,{i % 5}.5,{i % 4}\n" for i in range(29)) + "1.5,2,3\n"
    with pytest.raises(UserError, match=r"integer column 'k' beside real-valued columns 'x', 'y'"):
        table(tmp_path, ints)  # y's last cell 2 is written as an integer, its others are not
    two = "a,b,x\n" + "".join(f"{i % 3},{i % 5},{i}.5\n" for i in range(30))
    with pytest.raises(UserError, match=r"integer columns 'a', 'b' beside real-valued column 'x'"):
        table(tmp_path, two)
    one_bad = "a,b,x\n" + "".join(f"{i % 3},{i % 5},{i}.5\n" for i in range(29)) + "1,2.0,3.5\n"
    with pytest.raises(UserError, match=r"integer column 'a' beside real-valued columns 'b', 'x'"):
        table(tmp_path, one_bad)  # both candidates read again one by one: a alone is integers


def test_typed_files_mix_by_their_dtypes(tmp_path):
    """Parquet keeps a dtype per column: an int column beside a float one is the same mix. A
    .npy array has one dtype, so a float array's whole-valued column is real numbers."""
    import pandas as pd

    x = np.linspace(0, 1, 50)
    pd.DataFrame({"x": x, "n": np.arange(50) % 5}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(UserError, match=r"integer column 'n' beside real-valued column 'x': .*"
                       r"data\.columns=\[x\] \(the real-valued"):  # fmt: skip
        TableDataModule(str(tmp_path / "t.parquet"))
    assert TableDataModule(str(tmp_path / "t.parquet"), columns=["x"]).dim is None
    np.save(tmp_path / "f.npy", np.stack([x, np.arange(50) % 5], axis=1))
    assert TableDataModule(str(tmp_path / "f.npy")).dim == 2


@pytest.mark.parametrize(
    "fix", [("data.columns=[a,b]",), ("data.dtype=continuous",)], ids=["columns", "continuous"]
)
def test_the_suggested_fixes_train(tmp_path, make_cfg, fix, one_torch_thread):
    path = tmp_path / "mixed.csv"
    path.write_text(mixed(200))
    overrides = ("data=table", f"data.path={path}", "model=gmm", "model.n_components=2")
    with pytest.raises(UserError, match=r"integer column 'label'"):
        train(make_cfg(*overrides, *SHORT))
    metrics = train(make_cfg(*overrides, *fix, *SHORT))
    assert metrics["status"] == "completed" and math.isfinite(metrics["test/nll"])


def test_parquet_without_pandas_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(UserError, match=r"reading Parquet needs pandas and pyarrow"):
        TableDataModule(str(tmp_path / "t.parquet"))


def test_relative_paths_resolve_from_the_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert TableDataModule("data/examples/table_1d.csv").dim is None


# ---- splits and standardization ---------------------------------------------------------------


def test_splits_are_seeded_disjoint_and_cover_every_row(tmp_path):
    text = "x\n" + "".join(f"{i}.5\n" for i in range(200))  # distinct values: rows are labels
    data, again = table(tmp_path, text, seed=3), table(tmp_path, text, seed=3)
    reseeded = table(tmp_path, text, seed=4)  # the same fractions: only the seed differs
    other = table(tmp_path, text, seed=4, val_fraction=0.2, test_fraction=0.25)
    parts = [data.splits[s] for s in ("train", "val", "test")]
    assert torch.cat(parts).sort().values.tolist() == [i + 0.5 for i in range(200)]
    assert [len(p) for p in parts] == [160, 20, 20]
    assert all(torch.equal(data.splits[s], again.splits[s]) for s in data.splits)
    assert not torch.equal(data.splits["test"], reseeded.splits["test"])
    assert [len(other.splits[s]) for s in ("train", "val", "test")] == [110, 40, 50]


def test_standardization_uses_the_training_split_only(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="src.data.table"):
        data = TableDataModule("data/examples/table_2d.csv")
    train = data.splits["train"].double()
    shift, scale = data.standardization
    torch.testing.assert_close(shift.double(), train.mean(0), rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(scale.double(), train.std(0, correction=0), rtol=1e-5, atol=0)
    everything = torch.cat([data.splits[s] for s in data.splits]).double()
    assert not torch.allclose(shift.double(), everything.mean(0), rtol=0, atol=1e-3)
    assert "standardized by the training split's mean" in caplog.text
    assert TableDataModule("data/examples/table_2d.csv", standardize=False).standardization is None


class Gaussian(torch.nn.Module):
    """A fixed N(μ, Σ) as a density model."""

    support, event_shape = "continuous", torch.Size([2])

    def __init__(self, loc: torch.Tensor, cov: torch.Tensor) -> None:
        super().__init__()
        self.dist = MultivariateNormal(loc, cov)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(x)

    def sample(self, n: int) -> torch.Tensor:
        return self.dist.sample((n,))


def test_log_det_correction_gives_the_density_in_original_units():
    """N(μ, Σ) of x is N((μ − m)/s, S⁻¹ΣS⁻¹) of z = (x − m)/s, S = diag(s): wrapped in
    `Standardized`, the z-model must give exactly the x-density, samples included."""
    torch.manual_seed(0)
    loc, cov = torch.tensor([1e4, -3.0]), torch.tensor([[4e6, 30.0], [30.0, 0.01]]).double()
    shift, scale = torch.tensor([9e3, -2.0]).double(), torch.tensor([2e3, 0.1]).double()
    inner = Gaussian((loc - shift) / scale, cov / torch.outer(scale, scale))
    model = Standardized(inner, shift, scale)
    x = MultivariateNormal(loc.double(), cov).sample((1000,))
    torch.testing.assert_close(model.log_prob(x), MultivariateNormal(loc.double(), cov).log_prob(x))
    sd = cov.diagonal().sqrt()
    z = (model.sample(100_000) - loc) / sd  # N(0, correlation) if the samples are right
    assert z.mean(0).abs().max() < 0.02  # 6 standard errors
    torch.testing.assert_close(z.T.cov(), cov / torch.outer(sd, sd), rtol=0, atol=0.02)
    assert standardized(inner, None) is inner


def test_a_1d_model_fitted_on_standardized_data_integrates_to_one_in_original_units():
    flow = MixtureCDFFlow1d(n_components=3)
    model = Standardized(flow, torch.tensor(500.0), torch.tensor(40.0)).double()
    grid = torch.linspace(-1500, 2500, 400_001, dtype=torch.float64)
    with torch.no_grad():
        total = torch.trapezoid(model.log_prob(grid).exp(), grid)
    assert total.item() == pytest.approx(1.0, abs=1e-6)


def test_gaussian_fitted_in_standardized_space_has_the_original_maximum_likelihood():
    """A one-component mixture's start is its maximum-likelihood Gaussian; fitted to z, then
    scored in x's units, its mean log-likelihood is that of the MLE Gaussian of x itself."""
    data = TableDataModule("data/examples/table_2d.csv")
    x = data.train_x.double()
    model = Standardized(GaussianMixture(1, 2, reg_covar=0.0), *data.standardization).double()
    model.init_from_data(x)
    mle = MultivariateNormal(x.mean(0), x.T.cov(correction=0))
    assert model.log_prob(x).mean().item() == pytest.approx(mle.log_prob(x).mean().item(), abs=1e-6)


# ---- bad input: one line each -----------------------------------------------------------------

BAD = {
    "empty file": ("", "t.csv", {}, r"t\.csv: the file is empty$"),
    "header only": ("x,y\n", "t.csv", {}, r"t\.csv: a header but no rows$"),
    "header only, crlf": ("x,y\r\n\r\n", "t.csv", {}, r"a header but no rows$"),
    "non-numeric": ("x,y\n1,2\n3,abc\n", "t.csv", {}, r"line 3, column 'y': 'abc' is not a number"),
    "empty cell": ("x,y\n1,2\n3,\n", "t.csv", {}, r"line 3, column 'y': an empty cell \(a missing"),
    "NA in the first row": (
        "x,y\n1,NA\n",
        "t.csv",
        {},
        r"line 2, column 'y': 'NA' is not a number",
    ),
    "nan": ("x,y\n1,2\n3,4\nnan,5\n", "t.csv", {}, r"line 4, column 'x': nan is not a finite"),
    "inf": ("x\n1\n\n2\n-inf\n", "t.csv", {}, r"line 5, column 'x': -inf is not a finite number"),
    "float32 overflow": (
        "x\n1\n1e39\n",
        "t.csv",
        {},
        r"line 3, column 'x': 1e39 is beyond float32",
    ),
    "ragged": ("x,y\n1,2\n3,4,5\n", "t.csv", {}, r"line 3: 3 fields, the header has 2$"),
    "ragged, short": ("1,2\n3\n", "t.csv", {}, r"line 2: 1 fields, line 1 has 2$"),
    "ragged, subset": (
        "x,y,z\n1,2,3\n4,5,6\n7,8,9,10\n",
        "t.csv",
        {"columns": ["x"]},
        r"line 4: 4 fields, the header has 3$",
    ),
    "text column chosen": ("x,s\n1,a\n", "t.csv", {"columns": ["s"]}, r"line 2, column 's': 'a'"),
    "no numeric column": ("s\na\nb\n", "t.csv", {}, r"t\.csv: no numeric column$"),
    "not utf-8": (b"x\n\xe9\n", "t.csv", {}, r"not UTF-8 text \(byte 0xe9\)"),
    "utf-16": ("x\n1\n".encode("utf-16"), "t.csv", {}, r"not UTF-8 text"),
    "constant column": (
        "x,y\n" + "".join(f"{i}.5,7.0\n" for i in range(20)),
        "t.csv",
        {},
        r"column 'y' is constant \(7\) in the training split",
    ),
    "too few rows": ("x\n1\n2\n3\n", "t.csv", {}, r"3 rows are too few for val_fraction=0\.1"),
    "count out of range": (
        "k\n0\n1\n2\n7\n3\n",
        "t.csv",
        {"n_bins": 5},
        r"line 5, column 'k': 7 is too large; expected a count in 0…4 \(data\.n_bins=5\)$",
    ),
    "negative count": ("k\n0\n-1\n2\n", "t.csv", {}, r"line 3, column 'k': -1 is below 0"),
    "fractional count": (
        "k\n0\n1.0\n2.5\n",
        "t.csv",
        {"dtype": "discrete"},
        r"line 4, column 'k': 2\.5 is not a whole number",
    ),
    "discrete with two columns": (
        "a,b\n0,1\n1,2\n",
        "t.csv",
        {},
        r"column 'a', column 'b' as discrete data: the discrete models are 1-D",
    ),
}


@pytest.mark.parametrize(("text", "name", "settings", "message"), BAD.values(), ids=BAD)
def test_bad_files_are_refused_in_one_line(tmp_path, text, name, settings, message):
    with pytest.raises(UserError, match=message) as error:
        table(tmp_path, text, name, **settings)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["unix", "windows", "old-mac"])
@pytest.mark.parametrize("block", [16, 64, 1 << 24])
def test_line_numbers_across_blocks(tmp_path, monkeypatch, block, end):
    """The error paths read the text in blocks of whole lines: the line numbers must not
    depend on where the blocks end (a line longer than a block included) or the line ends."""
    monkeypatch.setattr("src.data.table_files.BLOCK", block)
    body = "".join(f"{i}.5,{i}.25,t{end}" + (end if i % 7 == 0 else "") for i in range(40))
    head = f"\ufeffx,y,label{end}" + body  # 40 rows and 6 empty lines: the next is line 48
    cases = {
        "40.5,x,t": r"line 48, column 'y': 'x' is not a number",
        "40.5,nan,t": r"line 48, column 'y': nan is not a finite number",
        "40.5,1,t,extra": r"line 48: 4 fields, the header has 3",
        "40.5," + "1" * 100 + "e400,t": r"line 48, column 'y': 1{100}e400 is beyond",
    }
    for last, message in cases.items():
        with pytest.raises(UserError, match=message):
            table(tmp_path, head + last + f"{end}1.5,2.5,t{end}", columns=["x", "y"])
    assert table(tmp_path, head, columns=["x", "y"]).dim == 2
    counts = "k\n" + "".join(f"{i % 5}\n" + ("\n" if i % 3 == 0 else "") for i in range(30))
    with pytest.raises(UserError, match=r"line 42, column 'k': 9 is too large; expected .* 0…4 "):
        table(tmp_path, counts + "9\n", n_bins=5)


def test_bad_numpy_files(tmp_path):
    cases = {
        "cube.npy": (np.zeros((2, 2, 2)), r"an array of shape \(2, 2, 2\): expected \(N,\) or"),
        "none.npy": (np.zeros((0, 2)), r"shape \(0, 2\)"),
        "complex.npy": (np.zeros(5, complex), r"dtype complex128 is not numeric"),
        "text.npy": (np.array(["a", "b"]), r"dtype <U1 is not numeric"),
        "nan.npy": (np.array([[1.0, 2.0], [3.0, np.nan]]), r"row 1, column 1: nan is not a fin"),
    }
    for name, (array, message) in cases.items():
        np.save(tmp_path / name, array)
        with pytest.raises(UserError, match=message):
            TableDataModule(str(tmp_path / name))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match=r"objects\.npy: not a readable \.npy file"):
        TableDataModule(str(tmp_path / "objects.npy"))
    np.savez(tmp_path / "two.npz", a=np.zeros(9), b=np.ones(9))
    with pytest.raises(ConfigError, match=r"^key=None is invalid: expected one of the arrays"):
        TableDataModule(str(tmp_path / "two.npz"))
    with pytest.raises(ConfigError, match=r"^key='c' is invalid: .*two\.npz: a, b$"):
        TableDataModule(str(tmp_path / "two.npz"), key="c")
    (tmp_path / "broken.npy").write_bytes(b"not numpy")
    with pytest.raises(UserError, match=r"broken\.npy: not a readable \.npy file"):
        TableDataModule(str(tmp_path / "broken.npy"))


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"path": "nowhere.csv"}, "path"),
        ({"path": None}, "path"),
        ({"path": "README.md"}, "path"),
        ({"columns": ["weight"]}, "columns"),
        ({"columns": [2]}, "columns"),
        ({"columns": [0, 0]}, "columns"),
        ({"columns": []}, "columns"),
        ({"dtype": "float"}, "dtype"),
        ({"n_bins": 5}, "n_bins"),
        ({"dim": 3}, "dim"),
        ({"standardize": "yes"}, "standardize"),
        ({"val_fraction": 0}, "val_fraction"),
        ({"test_fraction": 0.95}, "test_fraction"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_settings_name_the_setting(settings, key):
    settings = {"path": "data/examples/table_2d.csv"} | settings
    with pytest.raises(ConfigError, match=rf"^{key}="):
        make(TableDataModule, **settings)


def test_a_dimension_check_for_one_column():
    with pytest.raises(ConfigError, match=r"^dim=1 is invalid: expected null \(one column\)"):
        TableDataModule("data/examples/table_1d.csv", dim=1)
    assert TableDataModule("data/examples/table_2d.csv", dim=2).dim == 2


# ---- degenerate but valid data --------------------------------------------------------------


def degenerate(case: str, columns: int) -> str:
    """Many duplicates of one point, points on a line (2-D), or one huge outlier."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, columns))
    if case == "duplicates":
        x[:270] = 3.0
    elif case == "line":
        x[:, 1] = 2 * x[:, 0] + 1
    else:
        x[0] = 1e7
    return "".join(",".join(f"{v:.6g}" for v in r) + "\n" for r in x)


@pytest.mark.parametrize("case", ["duplicates", "line", "outlier"])
@pytest.mark.parametrize("standardize", [True, False])
def test_degenerate_data_fit_finite_at_model_level(tmp_path, case, standardize, one_torch_thread):
    torch.manual_seed(0)
    data = table(tmp_path, degenerate(case, 2), standardize=standardize)
    for model in (GaussianMixture(8, 2), RealNVP(2, n_layers=4, hidden=32)):
        finite_after_fitting(standardized(model, data.standardization), data)
    if case != "line":
        data = table(tmp_path, degenerate(case, 1), "one.csv", standardize=standardize)
        finite_after_fitting(standardized(MixtureCDFFlow1d(), data.standardization), data)


def finite_after_fitting(model: torch.nn.Module, data: TableDataModule, steps: int = 150) -> None:
    x = data.train_x
    model.init_from_data(x)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps):
        batch = x[torch.randint(len(x), (128,))]
        loss = -model.log_prob(batch).mean()
        assert torch.isfinite(loss), (type(model), step)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.isfinite(model.log_prob(data.splits["test"])).all()
    assert torch.isfinite(model.sample(500)).all()


def test_gmm_start_with_fewer_distinct_points_than_components():
    x = torch.cat([torch.ones(298, 2), torch.tensor([[0.0, 0.0], [2.0, 1.0]])])
    model = GaussianMixture(8, 2)
    model.init_from_data(x)  # k-means++ once drew from all-zero distances and failed
    assert torch.isfinite(model.log_prob(x)).all()


@pytest.mark.parametrize(
    ("model", "case", "columns"),
    [
        ("gmm", "duplicates", 2),
        ("gmm", "line", 2),
        ("gmm", "outlier", 2),
        ("realnvp", "line", 2),
        ("realnvp", "outlier", 2),
        ("flow1d", "duplicates", 1),
        ("flow1d", "outlier", 1),
    ],
)
def test_degenerate_data_train_finite(tmp_path, make_cfg, wired, model, case, columns):
    path = tmp_path / f"{case}.csv"
    path.write_text(degenerate(case, columns))
    dim = (f"model.dim={columns}",) if model != "flow1d" else ()
    cfg = make_cfg(f"model={model}", *dim, "data=table", f"data.path={path}", *SHORT)
    metrics = train(cfg)
    assert isinstance(wired["data"].standardization, tuple)
    assert metrics["status"] == "completed"
    assert all(math.isfinite(metrics[k]) for k in ("train/nll", "val/nll", "test/nll"))


# ---- every kind end to end ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        ("model=flow1d", "data.path=data/examples/table_1d.csv"),
        ("model=gmm", "model.dim=2", "data.path=data/examples/table_2d.csv"),
        ("model=realnvp", "model.dim=4", "data.path=data/examples/table_4d.csv"),
        ("model=histogram", "model.d=12", "data.path=data/examples/table_counts.csv"),
        ("model=dmol", "data.n_bins=12", "data.path=data/examples/table_counts.csv"),
    ],
    ids=["1d-flow1d", "2d-gmm", "4d-realnvp", "counts-histogram", "counts-dmol"],
)
def test_every_kind_trains_end_to_end(make_cfg, wired, overrides, one_torch_thread):
    metrics = train(make_cfg("data=table", *overrides, *SHORT))
    assert metrics["status"] == "completed" and "test/oracle_nll" not in metrics
    assert all(math.isfinite(metrics[k]) for k in ("train/nll", "val/nll", "test/nll"))


def test_models_read_the_dimension_and_bins_the_data_found(tmp_path, wired, one_torch_thread):
    """Neither model.dim nor model.d given: the run assembly takes them from the data."""
    for model, name in (("realnvp", "table_4d.csv"), ("dmol", "table_counts.csv")):
        overrides = ("data=table", f"model={model}", f"data.path=data/examples/{name}", *SHORT)
        cfg = compose_config(*overrides, output_dir=tmp_path / model)
        assert train(cfg)["status"] == "completed"


def test_reported_nll_is_in_the_files_units(tmp_path, wired, one_torch_thread):
    """The same data in two units, one 1000 times the other: the model sees the same
    standardized numbers, so the test NLLs differ by exactly log 1000 per coordinate."""
    text = (EXAMPLES / "table_2d.csv").read_text().splitlines()
    scaled = [",".join(f"{float(v) * 1000:.6f}" for v in line.split(",")) for line in text[1:]]
    (tmp_path / "big.csv").write_text(text[0] + "\n" + "\n".join(scaled) + "\n")
    nll = {}
    for path in (EXAMPLES / "table_2d.csv", tmp_path / "big.csv"):
        overrides = ("model=gmm", "model.dim=2", "data=table", f"data.path={path}", *SHORT)
        nll[path.name] = train(compose_config(*overrides, output_dir=tmp_path / path.stem))[
            "test/nll"
        ]
    assert nll["big.csv"] - nll["table_2d.csv"] == pytest.approx(2 * math.log(1000), abs=1e-3)


# ---- the command line -------------------------------------------------------------------------

CLI = {
    "missing file": ("data.path=nowhere.csv", "error: data.path='nowhere.csv' is invalid"),
    "bad cell": ("data.path={bad}", "error: {bad}, line 3, column 'y': 'x' is not a number"),
    "unknown column": ("data.columns=[nope]", "error: data.columns=['nope'] is invalid"),
}


@pytest.mark.slow  # each case is a fresh interpreter importing Lightning
@pytest.mark.parametrize(("override", "line"), CLI.values(), ids=CLI)
def test_cli_refuses_bad_input_with_exit_code_2(tmp_path, override, line):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,x\n")
    override, line = override.format(bad=bad), line.format(bad=bad)
    done = run_module(
        "src.train", "data=table", override, "trainer.max_epochs=1", f"paths.log_dir={tmp_path}"
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(line)
    assert "Traceback" not in done.stderr
