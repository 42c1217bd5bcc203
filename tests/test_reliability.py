"""Divergence stops at once, checkpoints load without running code, reruns are identical."""

from pathlib import Path

import pytest
import torch

from src.build import build_datamodule, build_module, load_weights
from src.callbacks.run_guard import NonFiniteError, RunGuard
from src.errors import ConfigError
from src.train import train
from tests.conftest import compose_config

# one experiment per model, shortened
PER_MODEL = {
    "flow1d": ("experiment=flow1d_fast", "trainer.max_epochs=3"),
    "histogram": ("experiment=hw1_histogram_d20", "trainer.max_epochs=3"),
    "dmol": ("experiment=hw1_dmol_d20", "trainer.max_epochs=3"),
    "gmm": ("experiment=gmm_mog2d", "trainer.max_epochs=3", "data.n_train=500"),
    "gmm_em": ("experiment=gmm_em_mog2d", "trainer.max_epochs=3", "data.n_train=500"),
    "realnvp": ("experiment=realnvp_banana", "trainer.max_epochs=1", "data.n_train=1000"),
    "earthquake_cavi": ("experiment=earthquake_cavi", "trainer.max_epochs=3"),
    "estimator": ("experiment=seed003_estimators_fast", "trainer.max_steps=20"),
    "importance": ("experiment=gamblers_ruin", "study.n_paths=2000", "study.n_mc_paths=2000"),
}
QUIET = ("logger=csv", "callbacks=none")


@pytest.mark.parametrize("model", sorted(PER_MODEL))
def test_same_seed_gives_identical_metrics(model, tmp_path):
    """Two runs in one process: the second starts where the first left the random streams, so
    a run that does not reseed them (the estimator's samples, RealNVP's initialisation) differs.
    Three labels are left out: the wall time, the commit, equal by construction here, whose
    "+dirty" would flip if a file were edited between the runs, and the checkpoint's path, in
    each run's own directory."""
    first, second = (
        train(compose_config(*PER_MODEL[model], *QUIET, output_dir=tmp_path / str(i)))
        for i in range(2)
    )
    for metrics in (first, second):
        del metrics["fit_seconds"], metrics["git_commit"], metrics["checkpoint"]
    assert first == second


@pytest.mark.parametrize(
    "data", ["mog1d", "seed003", "mog2d", "banana", "moons", "digits", "earthquake"]
)
def test_different_seeds_give_different_data(data, tmp_path):
    draws = [
        build_datamodule(
            compose_config(f"data={data}", f"seed={seed}", output_dir=tmp_path)
        ).train_x
        for seed in (0, 1)
    ]
    assert not torch.equal(*draws)


def test_a_diverging_run_stops_at_once_naming_step_and_last_value(tmp_path):
    cfg = compose_config(
        "optimizer=sgd", "optimizer.lr=1e12", "trainer.max_epochs=5", *QUIET, output_dir=tmp_path
    )
    with pytest.raises(
        NonFiniteError,
        match=r"^training stopped at step 1 \(epoch 0\): the gradient of model\.\w+ became "
        r"non-finite; last finite train/nll \d+\.\d+ at step 1;",
    ):
        train(cfg)


def test_run_guard_names_the_last_finite_loss():
    check = RunGuard("unused")
    trainer = type("T", (), {"global_step": 7, "current_epoch": 1})()
    check.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.25)}, None, 0)
    trainer.global_step = 8
    with pytest.raises(NonFiniteError) as error:
        check.on_train_batch_end(trainer, None, {"loss": torch.tensor(float("nan"))}, None, 1)
    assert str(error.value).startswith(
        "training stopped at step 8 (epoch 1): the loss train/nll became nan"
    )
    assert "last finite train/nll 1.25 at step 7" in str(error.value)


def test_run_guard_names_the_parameter_with_a_non_finite_gradient():
    model = torch.nn.Linear(2, 1)
    model.weight.grad = torch.tensor([[1.0, float("inf")]])
    model.bias.grad = torch.zeros(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    trainer = type("T", (), {"global_step": 3, "current_epoch": 0})()
    with pytest.raises(NonFiniteError, match="the gradient of weight became non-finite"):
        RunGuard("unused").on_before_optimizer_step(trainer, model, optimizer)
    model.weight.grad = torch.full((1, 2), 3e38)  # the sums overflow, the values are finite
    RunGuard("unused").on_before_optimizer_step(trainer, model, optimizer)


@pytest.fixture(scope="module")
def flow1d_checkpoint(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    train(compose_config("trainer.max_epochs=1", "data.n_train=100", output_dir=run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def test_a_checkpoint_of_another_model_is_refused(flow1d_checkpoint, tmp_path):
    cfg = compose_config("model=gmm", "data=mog2d", output_dir=tmp_path)
    module = build_module(cfg, build_datamodule(cfg))
    with pytest.raises(ConfigError, match=r"^ckpt_path=.* a checkpoint of the configured model"):
        load_weights(module, str(flow1d_checkpoint), cfg)


def test_the_same_class_with_other_settings_is_refused(flow1d_checkpoint, tmp_path):
    """flow1d and flow1d_notes share a class and their weights' shapes: only the saved model
    config tells them apart."""
    cfg = compose_config("model=flow1d_notes", output_dir=tmp_path)
    module = build_module(cfg, build_datamodule(cfg))
    with pytest.raises(ConfigError, match=r"trained with base='uniform', normalized=True"):
        load_weights(module, str(flow1d_checkpoint), cfg)


@pytest.mark.parametrize("kind", ["text", "empty", "truncated", "foreign archive"])
def test_a_file_that_is_not_a_checkpoint_is_refused_in_one_line(kind, flow1d_checkpoint, tmp_path):
    path = tmp_path / "bad.ckpt"
    if kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(flow1d_checkpoint.read_bytes()[:2000])
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    cfg = compose_config(output_dir=tmp_path)
    module = build_module(cfg, build_datamodule(cfg))
    with pytest.raises(ConfigError) as error:
        load_weights(module, str(path), cfg)
    assert str(error.value).startswith("ckpt_path=") and "\n" not in str(error.value)


class Payload:
    """Anything a pickle would have to import and run to rebuild."""


def test_a_checkpoint_that_would_run_code_is_refused(flow1d_checkpoint, tmp_path):
    checkpoint = torch.load(flow1d_checkpoint, weights_only=True)
    checkpoint["state_dict"]["payload"] = Payload()
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save(checkpoint, unsafe)
    cfg = compose_config(output_dir=tmp_path)
    module = build_module(cfg, build_datamodule(cfg))
    with pytest.raises(ConfigError, match=r"^ckpt_path=.*plain tensors"):
        load_weights(module, str(unsafe), cfg)
