"""Lightning's CSV logger, keeping the rows a resumed run wrote before it was stopped.

Lightning's `CSVLogger` deletes an existing `metrics.csv` when it opens its directory ("previous
log files in this directory will be deleted"), so `resume=<run dir>` lost every earlier row. Here
the earlier rows stay and the new ones are appended under the same header (the resumed steps
continue the earlier ones, as `trainer.global_step` does).
"""

from __future__ import annotations

import csv
from typing import Any

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter


class KeepingExperimentWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        """Keep an existing metrics.csv and continue its columns."""
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = list(csv.DictReader(file).fieldnames or [])


class ResumableCSVLogger(CSVLogger):
    @property
    def experiment(self) -> Any:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = KeepingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
