"""Where a command's time goes, for benchmarks/end_to_end.py: off unless the environment
variable DENSITYLAB_TIMING names a file. Then `mark(stage)` appends `stage <unix time>` when a
stage ends, and `timed(part)` appends `part+ <seconds>` for work inside a stage (figures,
checkpoints). Nothing else in the project reads or writes timings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

_LOG = os.environ.get("DENSITYLAB_TIMING")


def mark(stage: str) -> None:
    if _LOG:
        with open(_LOG, "a") as log:
            log.write(f"{stage} {time.time():.6f}\n")


@contextmanager
def timed(part: str) -> Iterator[None]:
    if not _LOG:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        with open(_LOG, "a") as log:
            log.write(f"{part}+ {time.perf_counter() - start:.6f}\n")
