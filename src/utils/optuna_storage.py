"""An Optuna study's SQLite storage, read without Optuna: how many trials it already holds."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

SQLITE = "sqlite:///"


def trials_so_far(storage: object, study_name: object) -> int:
    """How many trials an Optuna study already holds in its SQLite storage (0 for a new study,
    or a storage elsewhere than SQLite)."""
    if not (isinstance(storage, str) and storage.startswith(SQLITE)):
        return 0
    uri = Path(storage[len(SQLITE) :]).resolve().as_uri() + "?mode=ro"
    query = "SELECT COUNT(*) FROM trials JOIN studies USING (study_id) WHERE study_name = ?"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as db:
            return db.execute(query, (str(study_name),)).fetchone()[0]
    except sqlite3.Error:  # no database or no study yet
        return 0
