"""Lightning's CSV logger, keeping the rows a resumed run wrote before it was stopped.

Lightning's `CSVLogger` deletes an existing `metrics.csv` when it opens its directory ("previous
log files in this directory will be deleted"), so `resume=<run dir>` lost every earlier row. Here
the earlier rows are read before Lightning opens the directory and written back at once, and the
writer continues their columns (its public `metrics_keys`): the new rows are appended under the
same header (the resumed steps continue the earlier ones, as `trainer.global_step` does).
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from typing import Any

from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

DELETED = ".*Previous log files in this directory will be deleted"  # not here: they are kept


class ResumableCSVLogger(CSVLogger):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._earlier_rows_kept = False

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._earlier_rows_kept:
            return super().experiment
        path = os.path.join(self.log_dir, ExperimentWriter.NAME_METRICS_FILE)
        fs = get_filesystem(path)
        earlier = ""
        if fs.isfile(path):
            with fs.open(path, "r", newline="") as file:
                earlier = file.read()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=DELETED)
            writer = super().experiment  # opens the directory, deleting metrics.csv
        if earlier:
            with fs.open(path, "w", newline="") as file:
                file.write(earlier)
            writer.metrics_keys = list(csv.DictReader(io.StringIO(earlier)).fieldnames or [])
        self._earlier_rows_kept = True
        return writer
