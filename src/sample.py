"""Draw samples from a trained run into a file, in the data's own units and column names.

    python -m src.sample ckpt_path=<run dir or checkpoint> n=10000 out=samples.csv [seed=0]

The model is rebuilt from the run's saved config by the one assembly (src/build.py). Columns
are named as the training file names them (data=table), `x` for 1-D data, `x1 … xD` for
vectors and `x, y, count` for earthquakes; discrete data and counts are written as integers.
Samples are drawn in chunks, so memory stays flat in `n`; the same seed gives the same file.
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from src.errors import ConfigError, UserError
from src.utils.cli import hydra_entry, run_cli
from src.utils.constraints import Integer
from src.utils.resolvers import register_resolvers

register_resolvers()

CHUNK = 1 << 16  # samples per draw
COUNT = Integer(low=1)  # what `n` accepts


def sample(cfg: DictConfig) -> dict[str, Any]:
    """Write `n` samples of the run's model to `out`; returns what was written."""
    import numpy as np
    import torch

    from src.build import rebuild
    from src.utils.row_files import checked_out, row_file
    from src.utils.runs import checked_seed

    out = checked_out(cfg.get("out"))
    n = cfg.get("n")
    if not COUNT.accepts(n):
        raise ConfigError("n", n, f"{COUNT.describe()} (the number of samples)")
    seed = checked_seed(cfg.get("seed"))
    run = rebuild(cfg.ckpt_path)
    if run.model is None:
        raise UserError(f"ckpt_path={cfg.ckpt_path} is a study run: it has no density model")
    names, dtypes = columns(run.datamodule, float_dtype(run.model))
    torch.manual_seed(seed)
    with torch.no_grad(), row_file(out, names, dtypes) as write:
        for start in range(0, n, CHUNK):
            drawn = run.model.sample(min(CHUNK, n - start)).cpu().numpy()
            write(drawn.astype(np.result_type(*dtypes)))
    print(f"{out}: {n} samples of {', '.join(names)}")
    return {"out": str(out), "n": n, "columns": names}


def float_dtype(model: Any) -> Any:
    """The model's floating-point precision (float32 unless it was fitted in float64), so a
    sample is written with the digits it has."""
    import numpy as np

    tensors = [*model.parameters(), *model.buffers()]
    wide = any(t.dtype.is_floating_point and t.element_size() == 8 for t in tensors)
    return np.dtype(np.float64 if wide else np.float32)


def columns(data: Any, real: Any) -> tuple[list[str], list[Any]]:
    """The sampled columns' names and dtypes (`real` for real numbers), as the data hold them."""
    import numpy as np

    if data.support == "earthquake":
        return ["x", "y", "count"], [real, real, np.dtype(np.int64)]
    width = data.event_shape[0] if len(data.event_shape) else 1
    names = data.column_names or (["x"] if width == 1 else [f"x{j + 1}" for j in range(width)])
    return list(names), [np.dtype(np.int64) if data.support == "discrete" else real] * width


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
def main(cfg: DictConfig) -> Any:
    run_cli(sample, cfg)


if __name__ == "__main__":
    hydra_entry(main)
