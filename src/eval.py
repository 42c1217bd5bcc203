"""Re-test a trained run: `python -m src.eval ckpt_path=<run dir or one of its checkpoints>`.

The run is rebuilt from its own saved config by the one assembly (src/build.py), so the test
metrics are those of the run's own test split; only where it runs may change (accelerator,
devices, precision, threads); any other override is refused in one line.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from src.utils.cli import hydra_entry, run_cli
from src.utils.resolvers import register_resolvers

register_resolvers()


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test the checkpoint's weights on the run's test split; writes and returns the metrics,
    labelled with the run and the checkpoint they come from."""
    import torch

    from src.build import assemble, quiet_known_noise
    from src.utils.metrics import as_floats, print_metrics, write_metrics
    from src.utils.runs import (
        RANDOM_STATE,
        WHERE_IT_RUNS,
        changed_settings,
        git_commit,
        read_checkpoint,
        run_dir_of,
        saved_config,
        saved_identity,
    )

    quiet_known_noise()
    run_dir, ckpt = run_dir_of(cfg.ckpt_path)
    why = "src.eval scores the run's own model on the run's own test split"
    changes = changed_settings(cfg, WHERE_IT_RUNS, "src.eval", why)
    run_cfg = saved_config(run_dir, changes | {"ckpt_path": str(ckpt), "resume": None})
    run_cfg.paths.output_dir = cfg.paths.output_dir
    checkpoint = read_checkpoint(ckpt)
    run = assemble(run_cfg, saved_identity(checkpoint, run_dir), stage="test")
    if RANDOM_STATE in checkpoint:  # a study's test draws what the run's own test drew
        torch.set_rng_state(checkpoint[RANDOM_STATE])
    run.trainer.test(run.module, datamodule=run.datamodule, verbose=False)
    metrics = as_floats(run.trainer.callback_metrics)
    labels = run.identity.labels() | {
        "run_dir": str(run_dir),
        "checkpoint": str(ckpt),
        "epochs": checkpoint["epoch"] + 1,
        "global_step": checkpoint["global_step"],
        "git_commit": git_commit(),
    }
    print_metrics(metrics, cfg.paths.output_dir)
    write_metrics(cfg.paths.output_dir, labels | metrics)
    return labels | metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> Any:
    run_cli(evaluate, cfg)


if __name__ == "__main__":
    hydra_entry(main)
