"""What replaced the project's uses of private Lightning, Hydra and plugin internals, through
the libraries' public APIs: each piece in-process, without a run."""

from __future__ import annotations

import csv

import pytest


@pytest.mark.parametrize(
    ("space", "kind", "fields"),
    [
        ("choice(full, diag)", "CategoricalDistribution", {"choices": ("full", "diag")}),
        ("int(interval(2, 12))", "IntUniformDistribution", {"low": 2, "high": 12}),
        ("tag(log, interval(0.001, 0.1))", "LogUniformDistribution", {"low": 0.001}),
        ("tag(log, int(interval(1, 100)))", "IntLogUniformDistribution", {"high": 100}),
        ("interval(0, 1)", "UniformDistribution", {"low": 0.0, "high": 1.0}),
        ("range(1, 5)", "IntUniformDistribution", {"low": 1, "high": 5, "step": 1}),
        ("range(0.0, 1.0, 0.25)", "DiscreteUniformDistribution", {"q": 0.25}),
    ],
)
def test_a_search_space_reads_as_the_optuna_sweeper_reads_it(space, kind, fields):
    from src.callbacks.search_space_check import optuna_distribution

    distribution = optuna_distribution(f"x={space}")
    assert type(distribution).__name__ == kind
    assert {k: getattr(distribution, k) for k in fields} == fields


def test_a_fixed_parameter_is_its_value():
    from src.callbacks.search_space_check import optuna_distribution

    assert optuna_distribution("x=5") == "5"


def test_a_failed_jobs_error_is_its_exception_in_one_line(capsys):
    from hydra.core.utils import JobReturn, JobStatus

    from src.callbacks.sweep_summary import job_error

    failed = JobReturn(status=JobStatus.FAILED)
    failed.return_value = ValueError("n_components=0\nmore detail")
    assert job_error(failed) == "ValueError: n_components=0"
    assert capsys.readouterr().err == ""  # Hydra's own line about the job is left out


def test_a_ddp_child_of_a_sweep_job_keeps_the_commands_config_flags():
    from src.sweeps.job import config_flags

    args = ["-cn", "eval", "--config-dir=/extra", "-m", "seed=0,1", "--config-path", "/conf"]
    assert config_flags(args) == [
        "--config-path=/conf",
        "--config-name=eval",
        "--config-dir=/extra",
    ]
    assert config_flags(["seed=0", "--multirun"]) == []  # a launcher worker's argv: none
    assert config_flags(["--config-name"]) == []


def test_hydras_errors_become_one_line_from_the_exception():
    from hydra.errors import ConfigCompositionException, MissingConfigException
    from omegaconf.errors import ConfigKeyError

    from src.utils.cli import config_error_line

    missing = MissingConfigException(
        "In 'train': Could not find 'model/nope'\n\nAvailable options in 'model':\n\ta\n\tb\n"
        "Config search path:\n\tprovider=main, path=file:///conf",
        missing_cfg_file="model/nope",
        options=["a", "b"],
    )
    expected = "In 'train': Could not find 'model/nope'; Available options in 'model': a, b"
    assert config_error_line(missing) == expected
    unset = ConfigCompositionException(
        "You must specify 'data', e.g, data=<OPTION>\nAvailable options:\n\tmog1d\n\tmoons"
    )
    expected = "You must specify 'data', e.g, data=<OPTION>; Available options: mog1d, moons"
    assert config_error_line(unset) == expected
    unknown = ConfigCompositionException("Could not override 'foo'.")
    unknown.__cause__ = ConfigKeyError("Key 'foo' is not in struct")
    assert config_error_line(unknown) == "Could not override 'foo'.; Key 'foo' is not in struct"


def test_a_reopened_csv_log_keeps_its_rows_and_columns(tmp_path):
    import warnings

    from src.loggers.csv import ResumableCSVLogger

    first = ResumableCSVLogger(save_dir=tmp_path, name="csv", version="")
    first.log_metrics({"train/nll": 1.0, "epoch": 0}, step=0)
    first.finalize("success")
    again = ResumableCSVLogger(save_dir=tmp_path, name="csv", version="")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*will be deleted")  # they are not
        again.log_metrics({"val/nll": 2.0}, step=1)
    again.finalize("success")
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert [(r["step"], r["train/nll"], r["val/nll"]) for r in rows] == [
        ("0", "1.0", ""),
        ("1", "", "2.0"),
    ]


def test_the_hparams_session_goes_into_the_runs_directory(tmp_path):
    from pytorch_lightning.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from src.utils.hparams import log_hparams

    logger = TensorBoardLogger(tmp_path, name="run", version="")
    logger.log_metrics({"test/nll": 1.5}, step=3)
    logger.finalize("success")
    log_hparams([logger], {"seed": 0}, {"test/nll": 1.5})
    events = EventAccumulator(logger.log_dir).Reload()
    assert "_hparams_/session_start_info" in events.summary_metadata
    assert [(e.step, e.value) for e in events.Scalars("test/nll")] == [(3, 1.5)]  # no copy


def test_the_default_profiler_hands_out_one_empty_context():
    from src.callbacks.lean import NoProfiler

    profiler = NoProfiler()
    assert profiler.profile("a") is profiler.profile("b")
    with profiler.profile("training_step"):
        pass


PUBLIC_UNDERSCORED = {"_target_", "_replace", "_fields", "_asdict", "_make"}  # Hydra, NamedTuple


def own_private_names() -> set[str]:
    """Underscored names the project itself defines (functions, methods, attributes it sets)."""
    import ast

    from tests.conftest import ROOT

    names = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return {n for n in names if n.startswith("_")}


def test_no_module_reads_sets_or_overrides_a_librarys_private_attribute():
    """Every `x._name` in src is the project's own name or a public underscored one; no method
    of a library's is overridden under a private name; nothing is imported from a private
    module of a library."""
    import ast

    from tests.conftest import ROOT

    own, found = own_private_names(), []
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                dunder = node.attr.startswith("__") and node.attr.endswith("__")
                if not dunder and node.attr not in own | PUBLIC_UNDERSCORED:
                    found.append(f"{where} .{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                private = [p for p in node.module.split(".") if p.startswith("_")]
                if private and node.module != "__future__" and not node.module.startswith("src"):
                    found.append(f"{where} from {node.module}")
            if isinstance(node, ast.ClassDef) and node.bases:
                for item in node.body:
                    name = getattr(item, "name", "")
                    if isinstance(item, ast.FunctionDef) and _overrides_private(node, name):
                        found.append(f"{where} def {name}")
    assert found == []


def _overrides_private(cls, name: str) -> bool:
    """A single-underscore method of a class derived from a library class (nn.Module,
    LightningModule, Callback) that the library also defines."""
    import pytorch_lightning as pl
    import torch

    if not name.startswith("_") or name.startswith("__"):
        return False
    libraries = (torch.nn.Module, pl.LightningModule, pl.Callback, pl.LightningDataModule)
    return any(hasattr(base, name) for base in libraries)
