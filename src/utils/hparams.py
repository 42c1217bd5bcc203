"""Hyper-parameters with their final metrics, for TensorBoard's HPARAMS tab."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger, TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams
from torch.utils.tensorboard.writer import FileWriter

HPARAM_GROUPS = ("model", "fit", "study", "data", "optimizer", "scheduler", "seed")


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's choices as flat `group.key` entries (scalars only, lists as strings)."""
    container = {  # resolved: groups may refer to each other
        key: OmegaConf.to_container(cfg[key], resolve=True)
        if OmegaConf.is_config(cfg[key])
        else cfg[key]
        for key in HPARAM_GROUPS
        if cfg.get(key) is not None
    }
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node if isinstance(node, (int, float, str, bool)) else str(node)

    walk("", container)
    return flat


def log_hparams(
    loggers: Iterable[Logger], params: dict[str, Any], metrics: dict[str, float]
) -> None:
    """TensorBoard gets the hparams session pointing at the scalars already logged (no second
    copy of each metric at step 0, which Lightning's `log_hyperparams(params, metrics)` writes)."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            write_session(logger.log_dir, params, metrics)
        else:
            logger.log_hyperparams(params)


@rank_zero_only
def write_session(log_dir: str, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """The session goes into an event file of its own in the run's directory: TensorBoard reads
    every event file of a directory as one run, so the session's metrics are the run's scalars
    of those names (torch's public `FileWriter`; a `SummaryWriter` has no `add_summary`)."""
    writer = FileWriter(log_dir, filename_suffix=".hparams")
    try:
        for summary in hparams(params, metrics):
            writer.add_summary(summary)
    finally:
        writer.close()
