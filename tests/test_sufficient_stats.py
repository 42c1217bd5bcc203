"""EM and CAVI from summed sufficient statistics: the fit does not depend on the batch size or
the number of processes, a killed mini-batch run resumes bit for bit, and the objective never
decreases from one update to the next."""

import itertools
from pathlib import Path

import pytest
import torch

from src.train import train
from tests.conftest import bare_trainer, compose_config, kill_after_first_epoch_and_resume

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUIET = ("callbacks=none", "~logger")
EM = (
    "experiment=gmm_em_mog2d",
    "data.n_train=3000",
    "data.n_val=300",
    "data.n_test=1000",
    "fit.n_init=2",
    "fit.tol=1e-10",
    "fit.max_iter=15",
)
CAVI = (
    "experiment=earthquake_cavi",
    "data.n_train=3000",
    "data.n_val=300",
    "data.n_test=1000",
    "fit.n_init=2",
    "fit.max_iter=15",
)
CHECKPOINTS_ONLY = ("~logger", "callbacks.figures=null", "callbacks.progress_bar=null")
FIT_METRICS = ("test/nll", "val/nll", "test/kl_gap")


def _fitted(cfg) -> tuple[dict, dict]:
    """The final metrics and the fitted model's parameters, read back from last.ckpt."""
    metrics = train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    return metrics, state


def _assert_same_fit(one, other, tol):
    (m1, s1), (m2, s2) = one, other
    for key in FIT_METRICS:
        assert m2[key] == pytest.approx(m1[key], rel=0, abs=tol), key
    assert s1.keys() == s2.keys()
    for key in s1:
        torch.testing.assert_close(s2[key], s1[key], rtol=0, atol=tol, msg=key)


@pytest.mark.parametrize("setting", [EM, CAVI], ids=["em", "cavi"])
def test_mini_batches_give_the_full_batch_fit(setting, tmp_path):
    runs = []
    for name, batch in (("full", "null"), ("mini", "1000")):
        cfg = compose_config(
            *setting,
            f"data.batch_size={batch}",
            *CHECKPOINTS_ONLY,
            output_dir=tmp_path / name,
        )
        runs.append(_fitted(cfg))
    _assert_same_fit(*runs, tol=1e-10)
    assert runs[0][0]["train/iterations"] == runs[1][0]["train/iterations"]


@pytest.mark.parametrize("setting", [EM, CAVI], ids=["em", "cavi"])
def test_the_objective_never_decreases(setting, make_cfg):
    from src.build import build_datamodule, build_module

    # six components (the truths have 8 and 4) and a tight tol: every restart runs max_iter steps
    cfg = make_cfg(*setting, "data.batch_size=700", "model.n_components=6", "fit.tol=1e-13", *QUIET)
    datamodule = build_datamodule(cfg)
    fit = build_module(cfg, datamodule)
    bare_trainer(100).fit(fit, datamodule=datamodule)
    assert len(fit.state["traces"]) == 2
    for trace in fit.state["traces"]:
        assert len(trace) > 3
        assert all(b >= a - 1e-12 * abs(a) for a, b in itertools.pairwise(trace))


@pytest.mark.slow  # two spawned processes, each importing torch and Lightning
@pytest.mark.parametrize("setting", [EM, CAVI], ids=["em", "cavi"])
def test_two_processes_give_the_one_process_fit(setting, tmp_path):
    runs = []
    for name, trainer in (("one", "default"), ("two", "ddp_cpu")):
        cfg = compose_config(
            *setting,
            "data.batch_size=1000",
            f"trainer={trainer}",
            *CHECKPOINTS_ONLY,
            output_dir=tmp_path / name,
        )
        runs.append(_fitted(cfg))
    _assert_same_fit(*runs, tol=1e-10)
    assert runs[0][0]["train/iterations"] == runs[1][0]["train/iterations"]


@pytest.mark.slow  # a real process killed in mid-epoch
def test_a_mini_batch_em_run_killed_in_mid_epoch_resumes_bit_for_bit(tmp_path):
    settings = [
        "experiment=gmm_em_mog2d",
        "data.n_train=400000",
        "data.batch_size=2000",
        "data.n_val=1000",
        "data.n_test=1000",
        "fit.tol=1e-12",
        "fit.max_iter=6",
        "fit.n_init=2",
        "callbacks.figures=null",
        "~logger",
    ]
    reference, resumed, killed_at = kill_after_first_epoch_and_resume(settings, tmp_path, 0.4)
    assert 0 < killed_at["global_step"] < 12  # killed before the end
    for key, value in reference.items():
        if key != "fit_seconds" and isinstance(value, float):
            assert resumed[key] == value, key
