"""Re-test a trained run: `python -m src.eval ckpt_path=<run dir>/checkpoints/last.ckpt`.

The model and data are rebuilt from the run's own saved config, so the test metrics equal the
run's; a setting given on this command line (e.g. `data.n_test=50000`) replaces the run's.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from src.utils.cli import hydra_entry, run_cli
from src.utils.runs import command_overrides, run_dir_of, saved_config


def run_config(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """The trained run's config with this command's overrides, writing into this command's dir."""
    run_cfg = saved_config(run_dir_of(cfg.ckpt_path), cfg, overrides)
    run_cfg.paths = cfg.paths
    return run_cfg


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint's weights; writes and returns the same metrics as the run's test."""
    import pytorch_lightning as pl

    from src.build import build_datamodule, build_module, load_weights, quiet_known_noise
    from src.utils.metrics import as_floats, print_metrics, write_metrics

    quiet_known_noise()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    load_weights(module, cfg.ckpt_path, cfg)
    trainer = pl.Trainer(
        **{k: cfg.trainer[k] for k in ("accelerator", "devices") if k in cfg.trainer},
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = as_floats(trainer.callback_metrics)
    write_metrics(cfg.paths.output_dir, metrics)
    print_metrics(metrics, cfg.paths.output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> Any:
    run_cli(lambda c: evaluate(run_config(c, command_overrides(c))), cfg)


if __name__ == "__main__":
    hydra_entry(main)
