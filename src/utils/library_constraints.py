"""What the library classes a run instantiates accept: the one table for classes that cannot
declare their own `constraints` (Lightning's Trainer, callbacks and loggers, torch's optimizers
and schedulers, Hydra's launchers and sweepers).

Keyed by the `_target_` a config names; a project class that subclasses one of these (our CSV
logger, our progress bar) inherits the entry. A library setting not in the table is still
compared with its annotation (src/utils/settings.py). A rule across settings is a function of
the node's settings (the class's defaults overlaid with them, and the objects `build` passes,
such as the Trainer's callbacks) that raises a `ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from src.errors import ConfigError
from src.utils.constraints import (
    AnyOf,
    Constraint,
    Flag,
    Integer,
    ListOf,
    Nullable,
    OneOf,
    Real,
    Text,
)

POSITIVE = Real(low=0, low_open=True)
NON_NEGATIVE = Real(low=0)
FRACTION_OPEN = Real(0, 1, low_open=True, high_open=True)
COUNT = Integer(low=1)
NON_NEGATIVE_INT = Integer(low=0)
MIN_MAX = OneOf("min", "max")
# a number of batches (an integer) or a fraction of them (a float in [0, 1])
BATCHES = AnyOf(Integer(low=0), Real(0, 1))


@dataclass(frozen=True)
class Entry:
    constraints: dict[str, Constraint]
    together: Callable[[Mapping[str, Any]], None] | None = field(default=None)


def _sgd_nesterov(settings: Mapping[str, Any]) -> None:
    if settings.get("nesterov") and (
        not settings.get("momentum", 0) > 0 or settings.get("dampening", 0) != 0
    ):
        raise ConfigError(
            "nesterov", True, "false unless momentum > 0 and dampening = 0 (Nesterov momentum)"
        )


def _optimizer_accepts(
    target: str, rule: Callable[[Mapping[str, Any]], None] | None = None
) -> Callable[[Mapping[str, Any]], None]:
    """The rule across a torch optimizer's settings: `rule`, then torch's own argument checks on
    a stand-in parameter. An optimizer node is built `_partial_`, so torch would see its settings
    only at the first step: a setting it does not take (`+optimizer.weight_dcay=...`) or a
    combination it refuses (`fused` with `foreach`) is named here instead."""

    def together(settings: Mapping[str, Any]) -> None:
        if rule is not None:
            rule(settings)
        import torch
        from hydra.utils import get_object

        klass = get_object(target)
        try:
            klass([torch.nn.Parameter(torch.zeros(1))], **settings)
        except (TypeError, ValueError, RuntimeError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            named = [k for k in settings if re.search(rf"(?<![\w.]){re.escape(k)}(?!\w)", reason)]
            if named:
                key = max(named, key=len)
                valid = f"what {klass.__name__} accepts ({reason})"
                raise ConfigError(key, settings[key], valid) from None
            raise ConfigError(
                "_target_", target, f"an optimizer that takes these settings ({reason})"
            ) from None

    return together


ADAM = {
    "lr": POSITIVE,
    "betas": ListOf(Real(0, 1, high_open=True), length=2),
    "eps": POSITIVE,
    "weight_decay": NON_NEGATIVE,
    "amsgrad": Flag(),
    "foreach": Nullable(Flag()),
    "maximize": Flag(),
    "capturable": Flag(),
    "differentiable": Flag(),
    "fused": Nullable(Flag()),
}

SUBMITIT = {  # what submitit's local and SLURM launchers share
    "timeout_min": COUNT,
    "cpus_per_task": Nullable(COUNT),
    "gpus_per_node": Nullable(NON_NEGATIVE_INT),
    "tasks_per_node": COUNT,
    "mem_gb": Nullable(COUNT),
    "nodes": COUNT,
}
PRECISIONS = (64, 32, 16, "64", "32", "16", "bf16", "16-true", "16-mixed", "bf16-true")
PRECISIONS += (
    "bf16-mixed",
    "32-true",
    "64-true",
    "transformer-engine",
    "transformer-engine-float16",
)

TRAINER = {
    "accelerator": OneOf("cpu", "gpu", "cuda", "mps", "auto"),
    "strategy": Text(nonempty=True),
    "devices": AnyOf(Integer(low=-1), Text(nonempty=True), ListOf(NON_NEGATIVE_INT)),
    "num_nodes": COUNT,
    "precision": Nullable(OneOf(*PRECISIONS)),
    "fast_dev_run": AnyOf(Flag(), NON_NEGATIVE_INT),
    "max_epochs": Nullable(Integer(low=-1)),
    "min_epochs": Nullable(NON_NEGATIVE_INT),
    "max_steps": Integer(low=-1),
    "min_steps": Nullable(NON_NEGATIVE_INT),
    "max_time": Nullable(Text(nonempty=True)),
    "limit_train_batches": Nullable(BATCHES),
    "limit_val_batches": Nullable(BATCHES),
    "limit_test_batches": Nullable(BATCHES),
    "limit_predict_batches": Nullable(BATCHES),
    "overfit_batches": BATCHES,
    "val_check_interval": Nullable(AnyOf(COUNT, Real(0, 1, low_open=True))),
    "check_val_every_n_epoch": Nullable(COUNT),
    "num_sanity_val_steps": Nullable(Integer(low=-1)),
    "log_every_n_steps": Nullable(COUNT),
    "enable_checkpointing": Nullable(Flag()),
    "enable_progress_bar": Nullable(Flag()),
    "enable_model_summary": Nullable(Flag()),
    "accumulate_grad_batches": COUNT,
    "gradient_clip_val": Nullable(NON_NEGATIVE),
    "gradient_clip_algorithm": Nullable(OneOf("norm", "value")),
    "deterministic": Nullable(AnyOf(Flag(), OneOf("warn"))),
    "benchmark": Nullable(Flag()),
    "inference_mode": Flag(),
    "use_distributed_sampler": Flag(),
    "detect_anomaly": Flag(),
    "barebones": Flag(),
    "sync_batchnorm": Flag(),
    "reload_dataloaders_every_n_epochs": NON_NEGATIVE_INT,
    "default_root_dir": Nullable(Text(nonempty=True)),
    "enable_autolog_hparams": Flag(),
}

LOGGER = {
    "save_dir": Text(nonempty=True),
    "name": Nullable(Text()),
    "version": Nullable(AnyOf(NON_NEGATIVE_INT, Text())),
    "prefix": Text(),
}

TABLE: dict[str, Entry] = {
    # torch optimizers
    "torch.optim.Adam": Entry(ADAM, _optimizer_accepts("torch.optim.Adam")),
    "torch.optim.AdamW": Entry(ADAM, _optimizer_accepts("torch.optim.AdamW")),
    "torch.optim.SGD": Entry(
        {
            "lr": POSITIVE,
            "momentum": NON_NEGATIVE,
            "dampening": NON_NEGATIVE,
            "weight_decay": NON_NEGATIVE,
            "nesterov": Flag(),
            "maximize": Flag(),
            "foreach": Nullable(Flag()),
            "differentiable": Flag(),
            "fused": Nullable(Flag()),
        },
        _optimizer_accepts("torch.optim.SGD", _sgd_nesterov),
    ),
    # torch schedulers
    "torch.optim.lr_scheduler.CosineAnnealingLR": Entry(
        {"T_max": COUNT, "eta_min": NON_NEGATIVE, "last_epoch": Integer(low=-1)}
    ),
    "torch.optim.lr_scheduler.ReduceLROnPlateau": Entry(
        {
            "mode": MIN_MAX,
            "factor": FRACTION_OPEN,
            "patience": NON_NEGATIVE_INT,
            "threshold": NON_NEGATIVE,
            "threshold_mode": OneOf("rel", "abs"),
            "cooldown": NON_NEGATIVE_INT,
            "min_lr": AnyOf(NON_NEGATIVE, ListOf(NON_NEGATIVE)),
            "eps": NON_NEGATIVE,
        }
    ),
    "torch.optim.lr_scheduler.StepLR": Entry(
        {"step_size": COUNT, "gamma": POSITIVE, "last_epoch": Integer(low=-1)}
    ),
    "torch.optim.lr_scheduler.ExponentialLR": Entry(
        {"gamma": POSITIVE, "last_epoch": Integer(low=-1)}
    ),
    # Lightning
    "pytorch_lightning.Trainer": Entry(TRAINER),
    "pytorch_lightning.loggers.TensorBoardLogger": Entry(
        {**LOGGER, "log_graph": Flag(), "default_hp_metric": Flag()}
    ),
    "pytorch_lightning.loggers.CSVLogger": Entry({**LOGGER, "flush_logs_every_n_steps": COUNT}),
    "pytorch_lightning.callbacks.ModelCheckpoint": Entry(
        {
            "dirpath": Nullable(Text(nonempty=True)),
            "filename": Nullable(Text(nonempty=True)),
            "monitor": Nullable(Text(nonempty=True)),
            "verbose": Flag(),
            "save_last": Nullable(AnyOf(Flag(), OneOf("link"))),
            "save_top_k": Integer(low=-1),
            "save_on_exception": Flag(),
            "save_weights_only": Flag(),
            "mode": MIN_MAX,
            "auto_insert_metric_name": Flag(),
            "every_n_train_steps": Nullable(NON_NEGATIVE_INT),
            "every_n_epochs": Nullable(NON_NEGATIVE_INT),
            "save_on_train_epoch_end": Nullable(Flag()),
            "enable_version_counter": Flag(),
        }
    ),
    "pytorch_lightning.callbacks.Timer": Entry(
        {
            # "DD:HH:MM:SS", or a mapping such as {hours: 1}
            "duration": Nullable(Text(nonempty=True)),
            "interval": OneOf("step", "epoch"),
            "verbose": Flag(),
        }
    ),
    "pytorch_lightning.callbacks.EarlyStopping": Entry(
        {
            "monitor": Text(nonempty=True),
            "min_delta": Real(),
            "patience": NON_NEGATIVE_INT,
            "verbose": Flag(),
            "mode": MIN_MAX,
            "strict": Flag(),
            "check_finite": Flag(),
            "stopping_threshold": Nullable(Real()),
            "divergence_threshold": Nullable(Real()),
            "check_on_train_epoch_end": Nullable(Flag()),
            "log_rank_zero_only": Flag(),
        }
    ),
    # refresh_rate=0 hides the bar
    "pytorch_lightning.callbacks.RichProgressBar": Entry(
        {"refresh_rate": NON_NEGATIVE_INT, "leave": Flag()}
    ),
    "pytorch_lightning.callbacks.TQDMProgressBar": Entry(
        {"refresh_rate": NON_NEGATIVE_INT, "process_position": NON_NEGATIVE_INT, "leave": Flag()}
    ),
    # Hydra's launchers and sweepers (checked by src/callbacks/sweep_settings_check.py)
    "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher": Entry(
        {
            # joblib: a number of processes, or -1 for all cores (-2 all but one, ...)
            "n_jobs": AnyOf(COUNT, Integer(high=-1)),
            "backend": Nullable(OneOf("loky", "multiprocessing", "threading")),
            "prefer": Nullable(OneOf("processes", "threads")),
            "require": Nullable(OneOf("sharedmem")),
            "verbose": NON_NEGATIVE_INT,
            "timeout": Nullable(POSITIVE),
            "pre_dispatch": AnyOf(COUNT, Text(nonempty=True)),
            "batch_size": AnyOf(COUNT, OneOf("auto")),
            "temp_folder": Nullable(Text(nonempty=True)),
            "max_nbytes": Nullable(AnyOf(NON_NEGATIVE_INT, Text(nonempty=True))),
            "mmap_mode": Nullable(OneOf("r+", "r", "w+", "c")),
        }
    ),
    "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper": Entry(
        {
            "n_trials": COUNT,
            "n_jobs": COUNT,
            "direction": AnyOf(
                OneOf("minimize", "maximize"), ListOf(OneOf("minimize", "maximize"))
            ),
            "study_name": Nullable(Text(nonempty=True)),
            "storage": Nullable(Text(nonempty=True)),
        }
    ),
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher": Entry(
        SUBMITIT
        | {
            "partition": Nullable(Text(nonempty=True)),
            "qos": Nullable(Text(nonempty=True)),
            "account": Nullable(Text(nonempty=True)),
            "cpus_per_gpu": Nullable(COUNT),
            "gpus_per_task": Nullable(COUNT),
            "signal_delay_s": NON_NEGATIVE_INT,
            "max_num_timeout": NON_NEGATIVE_INT,
            "array_parallelism": COUNT,
            "setup": Nullable(ListOf(Text(), min_length=0)),
        }
    ),
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher": Entry(SUBMITIT),
}


def entry_for(target: str, klass: type | None = None) -> Entry | None:
    """The table's entry for a `_target_`, or for the nearest library class `klass` derives
    from (a project subclass inherits its base's constraints). A base matches a key by its
    name and top package, so nothing is imported to find it."""
    if target in TABLE:
        return TABLE[target]
    for base in getattr(klass, "__mro__", ())[1:]:
        key = (base.__module__.split(".")[0], base.__name__)
        if key in _BY_NAME:
            return TABLE[_BY_NAME[key]]
    return None


_BY_NAME = {(k.split(".")[0], k.rsplit(".", 1)[-1]): k for k in TABLE}
