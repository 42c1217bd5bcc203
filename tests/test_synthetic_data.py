"""Synthetic data: the notes' generator, seeded splits, device-resident batches, shards."""

from types import SimpleNamespace

import pytest
import torch

from src.data.batches import TensorBatches
from src.data.seed003 import Seed003DataModule
from src.data.synthetic import SyntheticDataModule
from src.data.truths import mixture_of_gaussians_1d
from src.errors import ConfigError
from src.utils.constraints import make


def test_seed003_follows_the_notes_counts_and_truth():
    data = Seed003DataModule(num_train=5000, num_val=1000, num_test=300, seed=0)
    x = data.train_x
    assert len(x) == 6666 and len(data.splits["val"]) == 1333 and len(data.splits["test"]) == 400
    # fixed counts per component, in order: 1666 near -1, 1666 near 0.2, 3334 near 1.5
    assert x[:1666].mean().item() == pytest.approx(-1.0, abs=0.03)
    assert x[1666:3332].mean().item() == pytest.approx(0.2, abs=0.03)
    assert x[3332:].mean().item() == pytest.approx(1.5, abs=0.02)
    for part in (x[:1666], x[1666:3332], x[3332:]):  # sd 0.25, to 3.5 standard errors
        assert part.std().item() == pytest.approx(0.25, rel=0.06)
    # the truth scoring the oracle is that mixture: weights, means and sds in the same order
    mixture, comp = data.truth.mixture_distribution, data.truth.component_distribution
    expected = [
        (mixture.probs, [0.25, 0.25, 0.5]),
        (comp.loc, [-1.0, 0.2, 1.5]),
        (comp.scale, [0.25, 0.25, 0.25]),
    ]
    for actual, values in expected:
        torch.testing.assert_close(actual, torch.tensor(values, dtype=torch.float64))


def test_default_seed003_test_set_gives_a_small_kl_gap_se():
    data = Seed003DataModule()
    assert len(data.splits["test"]) >= 40_000  # se = sd(gap)/sqrt(n) < 1e-3 for sd(gap) < 0.2


def truth():
    return mixture_of_gaussians_1d([-1.0, 2.0], [0.5, 1.0], [0.4, 0.6])


def test_splits_are_seeded_and_independent_of_other_splits_sizes():
    a = SyntheticDataModule(truth(), n_train=100, n_val=50, n_test=70, seed=3)
    b = SyntheticDataModule(truth(), n_train=100, n_val=100, n_test=70, seed=3)
    c = SyntheticDataModule(truth(), n_train=100, n_val=50, n_test=70, seed=4)
    torch.testing.assert_close(a.train_x, b.train_x)
    torch.testing.assert_close(a.splits["test"], b.splits["test"])
    assert not torch.equal(a.train_x, c.train_x)
    # splits of equal size are different draws (one seed for all would make them equal)
    assert not torch.equal(b.train_x, b.splits["val"])


def test_oracle_is_the_truths_log_density_of_the_test_points():
    data = SyntheticDataModule(truth(), n_train=10, n_val=10, n_test=500)
    expected = truth().log_prob(data.splits["test"].double()).float()
    torch.testing.assert_close(data.oracle_log_prob, expected)


def test_batches_cover_the_data_once_per_epoch_in_a_new_order():
    x = torch.arange(10.0)
    batches = TensorBatches({"x": x}, batch_size=4, shuffle=True, seed=0)
    first, second = [torch.cat([b["x"] for b in batches]) for _ in range(2)]
    assert len(batches) == 3 and [len(b["x"]) for b in batches] == [4, 4, 2]
    assert sorted(first.tolist()) == x.tolist() and not torch.equal(first, second)


def test_batch_order_depends_only_on_seed_and_the_trainers_epoch():
    x = torch.arange(100.0)
    epoch = 0
    batches = TensorBatches({"x": x}, batch_size=10, shuffle=True, seed=1, epoch=lambda: epoch)
    first = [torch.cat([b["x"] for b in batches]) for _ in range(2)]
    epoch = 5  # as after resuming from a checkpoint of epoch 4
    resumed = torch.cat([b["x"] for b in batches])
    fresh = TensorBatches({"x": x}, batch_size=10, shuffle=True, seed=1)
    sixth = [torch.cat([b["x"] for b in fresh]) for _ in range(6)][-1]
    torch.testing.assert_close(first[0], first[1])
    torch.testing.assert_close(resumed, sixth)


def test_full_batch_when_batch_size_is_null():
    batches = TensorBatches({"x": torch.zeros(7)}, batch_size=None, shuffle=True)
    assert [len(b["x"]) for b in batches] == [7]


def test_each_ddp_rank_gets_its_own_disjoint_shard():
    data = SyntheticDataModule(truth(), n_train=101, n_val=10, n_test=20)
    shards = []
    for rank in range(2):
        data._shards = {}
        data.trainer = SimpleNamespace(
            strategy=SimpleNamespace(root_device=torch.device("cpu")),
            global_rank=rank,
            world_size=2,
            current_epoch=0,
        )
        data.setup("fit")
        shards.append(data._shards["train"]["x"])
        loader = data.train_dataloader()
        assert len(loader) == len(list(loader)) == 1  # one batch on both ranks (DDP steps)
        data.batch_size = 10  # 51 and 50 points: 6 batches on both ranks, the last may be empty
        assert [len(b["x"]) for b in data.train_dataloader()][-1] == (1 if rank == 0 else 0)
        data.batch_size = None
    assert len(shards[0]) + len(shards[1]) == 101
    assert sorted(torch.cat(shards).tolist()) == sorted(data.train_x.tolist())


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"means": [0.0, 1.0], "stds": [1.0, 0.0], "weights": [0.5, 0.5]}, "stds"),
        ({"means": [0.0, 1.0], "stds": [1.0, 1.0], "weights": [1.5, -0.5]}, "weights"),
        ({"means": [0.0, 1.0], "stds": [1.0, 1.0], "weights": [0.5, 0.6]}, "weights"),
        ({"means": [0.0, 1.0], "stds": [1.0], "weights": [0.5, 0.5]}, "stds"),
    ],
)
def test_bad_truth_settings_name_the_setting(kwargs, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        make(mixture_of_gaussians_1d, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "key"), [({"n_train": 0}, "n_train"), ({"batch_size": 0}, "batch_size")]
)
def test_bad_sizes_name_the_setting(kwargs, key):
    with pytest.raises(ConfigError, match=f"^{key}="):
        make(SyntheticDataModule, truth=truth(), **kwargs)
