"""The run contract: metrics.json, checkpoints, TensorBoard events, and eval reproducing them."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from src.build import build_datamodule
from src.eval import evaluate
from src.train import train
from src.utils.instantiate import build

SHORT_RUN = (
    "trainer.max_epochs=3",
    "data.n_train=512",
    "data.n_test=2000",
    "callbacks.figures.every_n_epochs=2",
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.conftest import compose_config

    run_dir = tmp_path_factory.mktemp("run")
    cfg = compose_config(*SHORT_RUN, output_dir=run_dir)
    (run_dir / ".hydra").mkdir()
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")  # as Hydra does for every run
    return run_dir, train(cfg)


def _saved_run(run_dir: Path, checkpoint: str) -> tuple[torch.nn.Module, pl.LightningDataModule]:
    """The run's density model with the weights of `checkpoints/<checkpoint>.ckpt`, and its data,
    rebuilt from the saved config (independently of the fit that trained and tested it)."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    model = build(cfg.model, "model")
    path = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
    state = torch.load(path, weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    return model.eval(), build_datamodule(cfg)


def test_run_writes_its_metrics(run):
    """The test metrics are those of the final model on the test split, recomputed here from
    last.ckpt: the KL gap's standard error is the paired differences' sd / √n."""
    run_dir, metrics = run
    assert json.loads((run_dir / "metrics.json").read_text()) == metrics
    expected = {
        "train/nll",
        "val/nll",
        "test/nll",
        "test/oracle_nll",
        "test/kl_gap",
        "test/kl_gap_se",
        "fit_seconds",
    }
    assert expected <= metrics.keys()
    assert metrics["test/kl_gap"] == pytest.approx(
        metrics["test/nll"] - metrics["test/oracle_nll"], abs=1e-9
    )
    model, data = _saved_run(run_dir, "last")
    with torch.no_grad():
        log_p = model.log_prob(data.splits["test"]).double()
    gap = data.oracle_log_prob.double() - log_p
    assert metrics["test/nll"] == pytest.approx(-float(log_p.mean()), rel=1e-6)
    assert metrics["test/kl_gap"] == pytest.approx(float(gap.mean()), abs=1e-6)
    assert metrics["test/kl_gap_se"] == pytest.approx(float(gap.std() / len(gap) ** 0.5), rel=1e-6)


def test_run_keeps_last_and_best_checkpoints(run):
    """last.ckpt is the third and last epoch; best.ckpt holds the weights of the lowest val/nll
    the run logged."""
    run_dir, _ = run
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"last.ckpt", "best.ckpt"}
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 6)  # 512 points in batches of 256
    events = EventAccumulator(str(only_tensorboard_run(run_dir))).Reload()
    lowest = min(e.value for e in events.Scalars("val/nll"))
    model, data = _saved_run(run_dir, "best")
    with torch.no_grad():
        assert -float(model.log_prob(data.splits["val"]).mean()) == pytest.approx(lowest, rel=1e-6)


def only_tensorboard_run(run_dir):
    """The run's TensorBoard run, named after it (`<model>-<data>-s<seed>`)."""
    (named,) = (run_dir / "tensorboard").iterdir()
    assert named.name == "flow1d-mog1d-s0"
    return named


def test_tensorboard_reads_scalars_figures_and_hparams(run):
    run_dir, metrics = run
    events = EventAccumulator(
        str(only_tensorboard_run(run_dir)), size_guidance={"images": 0}
    ).Reload()
    tags = events.Tags()
    assert {"train/nll", "val/nll", "test/nll", "test/kl_gap", "fit_seconds"} <= set(
        tags["scalars"]
    )
    assert [e.value for e in events.Scalars("train/nll")][-1] == pytest.approx(
        metrics["train/nll"], rel=1e-6
    )
    assert len(events.Scalars("val/nll")) == 3
    assert {"fit/density", "fit/x_to_z", "samples/samples"} <= set(tags["images"])
    per_epoch = metrics["global_step"] // 3
    drawn = [e.step for e in events.Images("fit/density")]
    assert drawn == [2 * per_epoch, 3 * per_epoch]  # every 2nd epoch, and once at the end
    assert "_hparams_/session_start_info" in events.summary_metadata


@pytest.mark.parametrize("override", ["data.n_test=300", "seed=5", "model=gmm", "fit=em"])
def test_eval_refuses_a_setting_that_would_change_the_runs_test(run, make_cfg, override):
    """The run's split belongs to the run: a table run re-split with seed=5 "tested" 10 of its
    15 training rows, with no warning (test/nll 0.007 against the run's 1.537)."""
    from src.errors import UserError

    run_dir, _ = run
    cfg = make_cfg(f"ckpt_path={run_dir}", override, config_name="eval")
    with pytest.raises(UserError, match=rf"^src.eval cannot change {override.split('=')[0]}: "):
        evaluate(cfg)


def test_last_ckpt_is_the_last_epoch_and_reproduces_the_test_metrics(make_cfg, tmp_path):
    """best.ckpt by the *highest* val/nll is (nearly always) epoch 0: Lightning's own
    save_last then left last.ckpt at the best epoch, so this run used to fail both checks."""

    from tests.conftest import compose_config

    cfg = make_cfg(
        "trainer.max_epochs=8", "data.n_train=400", "callbacks.model_checkpoint.mode=max",
        "callbacks.figures=null", "~logger",
    )  # fmt: skip
    metrics = train(cfg)
    checkpoints = tmp_path / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    best = torch.load(checkpoints / "best.ckpt", weights_only=True)
    assert last["epoch"] == 7 and best["epoch"] < 7
    assert metrics["checkpoint"] == str(checkpoints / "last.ckpt")
    saved = OmegaConf.to_container(cfg)
    saved.pop("hydra")
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(saved, tmp_path / ".hydra" / "config.yaml")  # as the command line saves it
    eval_cfg = compose_config(
        f"ckpt_path={checkpoints / 'last.ckpt'}", output_dir=tmp_path / "eval", config_name="eval"
    )
    (tmp_path / "eval").mkdir()
    again = evaluate(eval_cfg)
    assert again["checkpoint"] == str(checkpoints / "last.ckpt") and again["epochs"] == 8
    for key in ("test/nll", "test/kl_gap", "test/kl_gap_se"):
        assert again[key] == pytest.approx(metrics[key], rel=1e-9), key


def test_a_batch_already_on_the_device_is_not_walked_again_and_others_are_moved():
    from src.data.seed003 import Seed003DataModule

    data = Seed003DataModule(num_train=10, num_val=10, num_test=10)
    batch = {"x": torch.zeros(3), "oracle_log_prob": torch.ones(3)}
    assert data.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch
    moved = data.transfer_batch_to_device(batch, torch.device("meta"), 0)
    assert moved is not batch and {t.device.type for t in moved.values()} == {"meta"}


def test_the_progress_bar_reads_the_metrics_only_every_refresh_rate_steps(tmp_path, monkeypatch):
    """Lightning's TQDM bar (its public `refresh_rate`): Rich's bar read every logged metric on
    every step, which for these tiny models cost about as much as the step itself."""
    from pytorch_lightning.callbacks import TQDMProgressBar

    from tests.conftest import compose_config

    reads = []
    get_metrics = TQDMProgressBar.get_metrics

    def counted(self, trainer, module):
        reads.append(trainer.global_step)
        return get_metrics(self, trainer, module)

    monkeypatch.setattr(TQDMProgressBar, "get_metrics", counted)
    cfg = compose_config(
        "trainer.max_epochs=2", "data.n_train=2560", "data.batch_size=64",
        "callbacks.figures=null", output_dir=tmp_path,
    )  # fmt: skip
    assert cfg.callbacks.progress_bar.refresh_rate == 10
    train(cfg)
    # 40 steps an epoch: 4 refreshes, and a few at an epoch's start and end and a validation's end
    assert 0 < len(reads) <= 2 * (40 // 10 + 3)
