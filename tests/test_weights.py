"""Row weights (`data.weight_column`): a row of integer weight w is the row repeated w times.

Each fit is checked against the repeated data: EM and CAVI (initialisation, restarts and
convergence included) within 1e-10, gradient MLE by the same gradient; the data module reads,
splits and refuses weights by line; the metrics are weighted means with their se and n_eff.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from src.data.earthquake import EarthquakeDataModule, SyntheticEarthquakes
from src.data.table import TableDataModule
from src.errors import ConfigError, UserError
from src.fits.cavi import CAVIFit
from src.fits.em import EMFit
from src.fits.mle import MLEFit
from src.fits.svi import SVIFit
from src.models.earthquake import EarthquakeMixture
from src.models.flow1d import MixtureCDFFlow1d
from src.models.gmm import GaussianMixture
from src.train import train
from tests.conftest import bare_trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write(path, rows: np.ndarray, header: str) -> str:
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.17e")
    return str(path)


def _blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
    return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 2))


def test_the_weight_column_is_read_beside_the_data_and_follows_its_rows(tmp_path):
    """columns: null leaves the weights out of the data; each split's weights are its rows'."""
    rows = np.arange(40.0)
    table = np.column_stack([rows, rows**0.5, 0.5 * rows])  # w = x / 2
    path = _write(tmp_path / "t.csv", table, "x,y,w")
    data = TableDataModule(path, weight_column="w", standardize=False)
    assert data.dim == 2 and data.column_names == ["x", "y"] and data.weight_column == "w"
    for split, x in data.splits.items():
        assert torch.equal(data.extras[split]["weight"], x[:, 0].double() / 2), split
    assert torch.equal(data.train_weights, data.extras["train"]["weight"])


def test_own_split_files_take_the_weights_by_the_training_files_name(tmp_path):
    train_rows = np.column_stack([np.arange(10.0), np.ones(10) * 2, np.arange(10.0) ** 2])
    path = _write(tmp_path / "train.csv", train_rows, "x,w,y")
    test_rows = np.column_stack([np.arange(5.0) ** 2, np.arange(5.0), [1, 2, 3, 4, 5.0]])
    test = _write(tmp_path / "test.csv", test_rows, "y,x,w")  # another order
    data = TableDataModule(path, weight_column="w", test_path=test, standardize=False)
    assert data.extras["test"]["weight"].tolist() == [1, 2, 3, 4, 5]
    assert data.splits["test"][:, 0].tolist() == [0, 1, 2, 3, 4]  # x, matched by name


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("1,2,-1,3", r"line 4, column 'w': -1 is below 0; expected a weight"),
        ("1,2,nan,3", r"line 4, column 'w': nan is not a finite number"),
        ("0,0,0,0", r"every weight of the train split .* is 0"),
    ],
)
def test_bad_weights_are_refused_by_line(tmp_path, weights, message):
    path = tmp_path / "t.csv"
    w = weights.split(",")
    path.write_text("x,w\n" + "".join(f"{i}.5,{v}\n" for i, v in enumerate(w)))
    with pytest.raises(UserError, match=message):
        TableDataModule(str(path), weight_column="w", val_path=None, test_path=None,
                        val_fraction=0.25, test_fraction=0.25)  # fmt: skip


def test_a_weight_column_among_the_data_columns_or_missing_is_refused(tmp_path):
    path = _write(tmp_path / "t.csv", np.column_stack([np.arange(9.0), np.ones(9)]), "x,w")
    with pytest.raises(ConfigError, match="weight_column"):
        TableDataModule(path, columns=["x", "w"], weight_column="w")
    with pytest.raises(ConfigError, match="weight_column"):
        TableDataModule(path, weight_column="mass")


def _repeated(rows, w: np.ndarray, kind: str):
    """The rows each repeated w times in place ("integers"), or the file twice ("twos")."""
    if kind == "twos":
        return (
            np.concatenate([rows, rows])
            if isinstance(rows, np.ndarray)
            else torch.cat([rows, rows])
        )
    counts = w.astype(int)
    if isinstance(rows, np.ndarray):
        return np.repeat(rows, counts, axis=0)
    return rows.repeat_interleave(torch.from_numpy(counts), 0)


def _weights(n: int, kind: str, seed: int) -> np.ndarray:
    """Integer weights 0…3 (a 0 drops its row), or 2 on every row."""
    if kind == "twos":
        return np.full(n, 2.0)
    return np.random.default_rng(seed).integers(0, 4, n).astype(float)


def _em(x: np.ndarray, w: np.ndarray | None, tmp_path, name: str, **settings) -> dict:
    """A weighted (or plain) EM run through `train`, train and test on the data set's own files
    (so the repeated file's rows are not split at random)."""
    data = x if w is None else np.column_stack([x, w])
    header = "a,b" if w is None else "a,b,w"
    path = _write(tmp_path / f"{name}.csv", data, header)
    held = _blobs(60, 9)  # a weighted data set's own splits carry the weight column too
    if w is None:
        held_out = _write(tmp_path / "held_out.csv", held, "a,b")
    else:
        held_out = _write(tmp_path / "held_out_w.csv", np.column_stack([held, np.ones(60)]), header)
    from tests.conftest import compose_config

    overrides = [
        "model=gmm",
        "data=table",
        f"data.path={path}",
        f"data.val_path={held_out}",
        f"data.test_path={held_out}",
        "data.standardize=false",
        "model.n_components=3",
        "fit.n_init=3",
        "fit.tol=1e-10",
        "callbacks=none",
        "logger=[]",
        *[f"{k}={v}" for k, v in settings.items()],
    ]
    if w is not None:
        overrides.append("data.weight_column=w")
    return train(compose_config(*overrides, output_dir=tmp_path / name))


@pytest.mark.parametrize("kind", ["integers", "twos"])
@pytest.mark.parametrize("fit", ["em", "online_em"])
def test_em_with_weights_is_em_on_the_repeated_rows(fit, kind, tmp_path):
    """Restarts, convergence, the chosen restart and BIC (N = Σ w) within 1e-10; for batch EM
    any batch size gives the same weighted fit (online EM on full batches: its batches are
    its updates)."""
    x = _blobs(120, 0)
    w = _weights(len(x), kind, 1)
    weighted = _em(x, w, tmp_path, "weighted", fit=fit)
    repeated = _em(_repeated(x, w, kind), None, tmp_path, "repeated", fit=fit)
    assert weighted["weights"] == "w" and "weights" not in repeated
    keys = ("train/nll", "train/bic", "train/aic", "val/nll", "test/nll", "epochs")
    for key in keys:
        assert weighted[key] == pytest.approx(repeated[key], rel=1e-10, abs=1e-10), key
    if fit == "em":
        batched = _em(x, w, tmp_path, "batched", fit=fit, **{"data.batch_size": 17})
        for key in keys:
            assert batched[key] == pytest.approx(weighted[key], rel=1e-10, abs=1e-10), key


@pytest.mark.parametrize("kind", ["integers", "twos"])
@pytest.mark.parametrize("fit_class", [CAVIFit, SVIFit])
def test_cavi_with_weights_is_cavi_on_the_repeated_events(fit_class, kind):
    """Full batches (SVI's batches are its updates): the traces of both restarts and the final
    posterior within 1e-10."""
    source = SyntheticEarthquakes(n_components=3, rho=16.0, n_train=150, n_val=50, n_test=50)
    events = source.splits["train"]
    w = _weights(len(events), kind, 2)
    held = {s: source.splits[s] for s in ("val", "test")}

    def fit(train_events, weights):
        splits = {"train": train_events, **held}
        all_weights = None
        if weights is not None:
            all_weights = {"train": weights} | {s: torch.ones(len(v)) for s, v in held.items()}
        data = EarthquakeDataModule(splits, None, 0, all_weights, "w")
        module = fit_class(EarthquakeMixture(n_components=3), n_init=2, tol=1e-12, max_iter=60)
        module.prepare(data.train_x, False, data.train_weights)
        bare_trainer(1000, num_sanity_val_steps=0, limit_val_batches=0).fit(module, datamodule=data)
        return module

    weighted = fit(events, torch.from_numpy(w))
    repeated = fit(_repeated(events, w, kind), None)
    assert len(weighted.state["traces"]) == len(repeated.state["traces"]) == 2
    for ours, theirs in zip(weighted.state["traces"], repeated.state["traces"]):
        assert ours == pytest.approx(theirs, rel=1e-10)
    for key, value in repeated.model.state_dict().items():
        assert torch.allclose(weighted.model.state_dict()[key], value, rtol=1e-10), key


@pytest.mark.parametrize("kind", ["integers", "twos"])
def test_mle_with_weights_has_the_gradient_of_the_repeated_rows(kind):
    """Σ_b w ℓ / (B w̄) on the full batch is the repeated rows' mean: the same gradient."""
    x = torch.randn(50).double()
    w = _weights(50, kind, 0)
    gradients = []
    for batch, weights in (
        ({"x": x, "weight": torch.from_numpy(w)}, torch.from_numpy(w)),
        ({"x": _repeated(x, w, kind)}, None),
    ):
        torch.manual_seed(0)
        flow = MixtureCDFFlow1d(n_components=4).double()
        fit = MLEFit(flow, optimizer=torch.optim.SGD)
        fit.prepare(x, False, weights)
        fit.on_train_epoch_start()
        flow.init_from_data(x)  # the same start for both: the gradient is what is compared
        loss = fit.training_step(batch, 0)
        gradients.append(torch.autograd.grad(loss, list(flow.parameters())))
    for weighted, repeated in zip(*gradients):
        assert torch.allclose(weighted, repeated, rtol=1e-12, atol=1e-14)


def test_weighted_test_metrics_are_the_weighted_mean_with_its_se_and_ess(tmp_path):
    x = _blobs(80, 5)
    w = np.random.default_rng(6).uniform(0.2, 3.0, len(x))
    train_path = _write(tmp_path / "train.csv", np.column_stack([x, w]), "a,b,w")
    test_x, test_w = _blobs(70, 7), np.random.default_rng(8).uniform(0.0, 2.0, 70)
    test_path = _write(tmp_path / "test.csv", np.column_stack([test_x, test_w]), "a,b,w")
    data = TableDataModule(train_path, weight_column="w", test_path=test_path, standardize=False)
    model = GaussianMixture(2, 2).double()
    model.init_from_data(data.train_x.double(), data.train_weights)
    fit = EMFit(model)
    fit.prepare(data.train_x, False, data.train_weights)
    trainer = bare_trainer(3, num_sanity_val_steps=0)
    trainer.fit(fit, datamodule=data)
    metrics = trainer.test(fit, datamodule=data, verbose=False)[0]
    nll = -fit.model.log_prob(torch.from_numpy(test_x)).double()
    weights = torch.from_numpy(test_w)
    mean = float((weights * nll).sum() / weights.sum())
    ess = float(weights.sum() ** 2 / weights.square().sum())
    var = float((weights.square() * (nll - mean).square()).sum() / weights.sum() ** 2)
    assert metrics["test/nll"] == pytest.approx(mean, rel=1e-6)
    assert metrics["test/ess"] == pytest.approx(ess, rel=1e-9)
    assert metrics["test/nll_se"] == pytest.approx(math.sqrt(var * ess / (ess - 1)), rel=1e-6)


DDP_FITS = {
    "mle": ("model=gmm", "fit=mle", "trainer.max_epochs=3", "optimizer.lr=0.01"),
    "em": ("model=gmm", "fit=em", "fit.n_init=2"),
    "online_em": ("model=gmm", "fit=online_em", "fit.max_iter=3"),
    "cavi": ("model=earthquake", "fit=cavi", "fit.n_init=2"),
    "svi": ("model=earthquake", "fit=svi", "fit.max_iter=3"),
}


@pytest.mark.slow  # two spawned processes, each importing torch and Lightning
@pytest.mark.parametrize("fit", list(DDP_FITS))
def test_weighted_fits_on_two_ddp_processes_equal_one(fit, tmp_path):
    """Full-batch shards: the all-reduced weighted statistics (EM, CAVI) and the mean of the
    ranks' gradients of Σ_b w ℓ / (B w̄) (MLE) are the whole split's."""
    from tests.conftest import compose_config

    rng = np.random.default_rng(4)
    if DDP_FITS[fit][0] == "model=gmm":
        rows = np.column_stack([_blobs(200, 4), rng.uniform(0.1, 3.0, 200)])
        data = ("data=table", f"data.path={_write(tmp_path / 'w.csv', rows, 'a,b,w')}")
        data += ("data.standardize=false", "model.n_components=3")
    else:
        events = SyntheticEarthquakes(n_components=3, rho=16.0, n_train=300).splits["train"]
        rows = np.column_stack([events.numpy(), rng.uniform(0.1, 3.0, len(events))])
        data = ("data=earthquake_csv", f"data.path={_write(tmp_path / 'q.csv', rows, 'x,y,s,w')}")
        data += ("model.n_components=3",)
    settings = (*DDP_FITS[fit], *data, "data.weight_column=w", "callbacks=none", "logger=[]")
    one = train(compose_config(*settings, "data.batch_size=null", output_dir=tmp_path / "one"))
    batch = "data.batch_size=null" if fit in ("online_em", "svi") else "data.batch_size=80"
    if fit == "mle":  # each rank's batch its whole shard: one full-data step per epoch
        batch = "data.batch_size=100"
    two = train(compose_config(*settings, batch, "trainer=ddp_cpu", output_dir=tmp_path / "two"))
    for key in ("val/nll", "test/nll", "test/nll_se", "test/ess"):
        assert two[key] == pytest.approx(one[key], rel=1e-6), key
