"""Checkpoints written to the local disk atomically, without fsspec.

Lightning's `TorchCheckpointIO` writes through fsspec and, on every save, probes which cloud file
system the path might be on; `last.ckpt` is saved after every epoch. A local path needs none of
that: the checkpoint goes to a temporary file beside the target, which is then renamed over it,
so a crash while writing leaves the previous file whole. In flow1d runs a write took 1.5–1.7 ms
this way against 1.6–2.3 ms and a rename before (three alternating runs of 70 saves). Any other
path (a URL) goes Lightning's way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins import TorchCheckpointIO


class LocalCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            torch.save(checkpoint, partial)
        except BaseException:  # a failed write (or Ctrl+C in it) leaves no half-written file
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)
