"""The thread policy: the numbers `threads=auto` chooses, and that every run applies them."""

import pytest
import torch

from src.callbacks.threads import ThreadPolicy
from src.errors import ConfigError
from src.train import train
from src.utils.threads import WORK_THRESHOLD, check_threads, sweep_workers, threads_for


@pytest.mark.parametrize(
    ("work", "cores", "n_jobs", "world_size", "expected"),
    [
        (128 * 15, 2, 1, 1, 1),  # flow1d, batches of 128: one thread
        (2**20 * 72, 2, 1, 1, 1),  # EM at N = 10⁶: one thread (measured)
        (20_000 * 15, 2, 1, 1, 1),  # flow1d_fast, full batch of 20 000
        (WORK_THRESHOLD - 1, 16, 1, 1, 1),
        (WORK_THRESHOLD, 2, 1, 1, 2),  # large work: every core
        (WORK_THRESHOLD, 16, 1, 1, 16),
        (WORK_THRESHOLD, 16, 4, 1, 4),  # joblib sweep of 4 workers: cores ÷ workers
        (WORK_THRESHOLD, 16, 1, 2, 8),  # DDP with 2 ranks: cores ÷ ranks
        (WORK_THRESHOLD, 16, 2, 4, 2),
        (WORK_THRESHOLD, 2, 4, 1, 1),  # more workers than cores: never 0
        (128 * 15, 16, 4, 1, 1),  # small work in a sweep: still one
    ],
)
def test_threads_for(work, cores, n_jobs, world_size, expected):
    assert threads_for(work, cores, n_jobs, world_size) == expected


@pytest.mark.parametrize(("n_jobs", "expected"), [(None, 1), (2, 2), (-1, 8), (-2, 7), (0, 1)])
def test_sweep_workers_reads_joblib_n_jobs(n_jobs, expected):
    assert sweep_workers(n_jobs, 8) == expected


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "all", None])
def test_bad_threads_are_one_line_config_errors(value):
    expected = r"^threads=.* is invalid: expected auto or an integer >= 1$"
    with pytest.raises(ConfigError, match=expected):
        check_threads(value)


def test_a_run_with_bad_threads_is_refused(make_cfg):
    with pytest.raises(ConfigError, match="threads=0 is invalid"):
        train(make_cfg("debug=fast", "threads=0"))


@pytest.fixture
def callers_threads():
    """The caller's torch threads set to 3: neither a choice of the runs below (1, 2) nor the
    default of the 1- and 2-core machines the suite runs on (with OMP_NUM_THREADS=1 the caller
    had 1 thread, so a run that chose 1 and never set or restored anything passed)."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def test_a_small_run_trains_on_one_thread_and_restores_the_callers(
    make_cfg, monkeypatch, callers_threads
):
    seen = []
    setup = ThreadPolicy.setup

    def spy(self, trainer, module, stage):
        setup(self, trainer, module, stage)
        seen.append((stage, self.chosen, torch.get_num_threads()))

    monkeypatch.setattr(ThreadPolicy, "setup", spy)
    train(make_cfg("debug=fast"))
    assert seen and all(chosen == 1 == now for _, chosen, now in seen)
    assert torch.get_num_threads() == callers_threads


def test_an_integer_is_used_as_given(make_cfg, monkeypatch, callers_threads):
    seen = []
    setup = ThreadPolicy.setup

    def spy(self, trainer, module, stage):
        setup(self, trainer, module, stage)
        seen.append(torch.get_num_threads())

    monkeypatch.setattr(ThreadPolicy, "setup", spy)
    train(make_cfg("debug=fast", "threads=2"))
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == callers_threads


def test_a_joblib_sweep_job_reads_its_workers(make_cfg):
    from hydra.types import RunMode
    from omegaconf import open_dict

    from src.utils.hydra_context import launcher_jobs

    cfg = make_cfg("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert launcher_jobs(cfg) is None  # a single run: no sweep
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    assert launcher_jobs(cfg) == 2


def test_the_default_profiler_costs_nothing_and_a_configured_one_is_kept(make_cfg):
    from pytorch_lightning.profilers import SimpleProfiler

    from src.callbacks.lean import NoProfiler
    from tests.conftest import fit_trainer

    assert isinstance(fit_trainer(make_cfg()).profiler, NoProfiler)
    assert isinstance(fit_trainer(make_cfg("+trainer.profiler=simple")).profiler, SimpleProfiler)


def test_turning_the_progress_bar_off_leaves_out_the_bar_callback(make_cfg):
    """Lightning refuses `enable_progress_bar=False` beside a bar callback; the bar goes."""
    from pytorch_lightning.callbacks import ProgressBar

    from tests.conftest import fit_trainer

    trainer = fit_trainer(make_cfg("+trainer.enable_progress_bar=false"))
    assert not any(isinstance(c, ProgressBar) for c in trainer.callbacks)
    assert any(isinstance(c, ProgressBar) for c in fit_trainer(make_cfg()).callbacks)
