"""The training bar shows epochs over the run, the fit's objective and epochs per second, never
the TensorBoard version (`v_num`) or a full-batch fit's one step per epoch as it/s."""

from __future__ import annotations

import pytest

from src.callbacks.progress import EpochProgressBar
from src.train import train
from tests.conftest import compose_config, run_module

QUIET = ("trainer.max_epochs=2", "callbacks.figures=null")


@pytest.mark.parametrize(
    ("overrides", "objective"),
    [
        (("data.n_train=300",), "train/nll"),  # gradient descent, several batches an epoch
        (("model=gmm", "fit=em", "data=mog2d", "data.n_train=300"), "train/nll"),  # full batch
        (("experiment=earthquake_cavi",), "train/elbo"),
    ],
    ids=["mle", "em", "cavi"],
)
def test_the_bar_shows_the_objective_without_v_num_and_counts_epochs(
    tmp_path, monkeypatch, overrides, objective, one_torch_thread
):
    shown: list[tuple[EpochProgressBar, dict]] = []
    get_metrics = EpochProgressBar.get_metrics

    def recorded(self, trainer, module):
        metrics = get_metrics(self, trainer, module)
        shown.append((self, metrics))
        return metrics

    monkeypatch.setattr(EpochProgressBar, "get_metrics", recorded)
    cfg = compose_config(*overrides, *QUIET, output_dir=tmp_path)
    assert cfg.callbacks.progress_bar._target_ == "src.callbacks.progress.EpochProgressBar"
    metrics = train(cfg)
    bar, last = shown[-1]  # the final epoch's objective, as metrics.json reports it
    assert float(last[objective]) == pytest.approx(metrics[objective], rel=1e-4)
    assert all("v_num" not in metrics for _, metrics in shown)
    progress = bar.train_progress_bar
    assert (progress.n, progress.total) == (2, 2)  # epochs done of the run, not batches
    assert "epochs/s" in str(progress) and f"{objective}=" in str(progress)


def test_the_command_line_bar_reads_epochs_the_nll_and_epochs_per_second(tmp_path):
    done = run_module(
        "src.train", *QUIET, "data.n_train=300", f"paths.log_dir={tmp_path}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    final = [line for line in done.stdout.replace("\r", "\n").splitlines() if "2/2" in line]
    assert final and "Epochs: 100%" in final[-1] and "epochs/s" in final[-1]
    assert "train/nll=" in final[-1] and "v_num" not in done.stdout + done.stderr
