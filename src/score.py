"""Score data with a trained run: the log-density of every row, in the data's own units.

    python -m src.score ckpt_path=<run dir or checkpoint> out=scores.csv [data.path=new.csv]

The model is rebuilt from the run's saved config by the one assembly (src/build.py), with the
training file's standardization, so every value is log p(x) of the row as the file writes it
(nats; log-mass for discrete data). Without `data.path` the run's own test split is scored and
the mean equals the run's `test/nll`. `out` (.csv, .tsv or .npy) gets one value per row, in the
file's order; `<out>.json` beside it the summary: mean NLL, its standard error, rows, the
checkpoint, the file and its SHA-256, the model.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from src.errors import UserError
from src.utils.cli import hydra_entry, run_cli
from src.utils.resolvers import register_resolvers

register_resolvers()

COLUMN = "log_density"


def score(cfg: DictConfig) -> dict[str, Any]:
    """Write the log-density of every row of the file (or the run's test split) and the summary;
    returns the summary."""
    import numpy as np
    import torch

    from src.build import quiet_known_noise, rebuild
    from src.data.new_rows import row_blocks
    from src.data.table import resolve
    from src.utils.metrics import write_json
    from src.utils.row_files import checked_out, row_file

    quiet_known_noise()
    out = checked_out(cfg.get("out"))
    run = rebuild(cfg.ckpt_path)
    data, model = run.datamodule, run.model
    if model is None:
        raise UserError(f"ckpt_path={cfg.ckpt_path} is a study run: it has no density model")
    path = cfg.data.get("path")
    if path:
        file = resolve(path)
        blocks, source = row_blocks(file, data), {"data_file": str(file), "sha256": sha256(file)}
    else:
        blocks, source = [data.splits["test"]], {"split": "test", **_test_file(run.cfg)}
    n, chunk = 0, data.eval_batch_size
    sums = torch.zeros(2, dtype=torch.float64)  # Σ log p, Σ (log p)²
    with torch.no_grad(), row_file(out, [COLUMN], [np.dtype(np.float64)]) as write:
        for x in blocks:  # a file streams: memory stays one block of rows
            for start in range(0, len(x), chunk):
                log_p = model.log_prob(x[start : start + chunk]).double()
                sums += torch.stack([log_p.sum(), log_p.square().sum()])
                write(log_p.numpy())
            n += len(x)
        mean, mean_sq = (sums / max(n, 1)).tolist()
        variance = max(mean_sq - mean * mean, 0.0) * n / max(n - 1, 1)
        summary = {
            "nll": -mean,
            "nll_se": math.sqrt(variance / max(n, 1)),
            "rows": n,
            "units": "nats (log-mass)" if data.support == "discrete" else "nats",
            "scores": str(out),
            **source,
            "checkpoint": str(run.cfg.ckpt_path),
            **run.identity.labels(),  # model, data, fit, seed, overrides
        }
        write_json(out.with_suffix(".json"), summary)  # before the scores are renamed in
    print(f"{out}: log-density of {n} rows; mean NLL {-mean:.6g} ± {summary['nll_se']:.2g} nats")
    return summary


def sha256(file: Path) -> str:
    with file.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _test_file(run_cfg: DictConfig) -> dict[str, str]:
    """The file the test split came from: its own (`data.test_path`) or the training file's."""
    path = run_cfg.data.get("test_path") or run_cfg.data.get("path")
    return {"data_file": str(path)} if path else {}


@hydra.main(version_base="1.3", config_path="../conf", config_name="score")
def main(cfg: DictConfig) -> Any:
    run_cli(score, cfg)


if __name__ == "__main__":
    hydra_entry(main)
