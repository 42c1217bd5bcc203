"""Timing a program the way a user runs it: as its own process, start to exit (shared by the
benchmarks that compare the command line with a plain loop)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[tuple[float, float], str]:
    """(wall seconds, CPU seconds) of one process, start to exit, and its output."""
    start, cpu = time.perf_counter(), cpu_of_children()
    done = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    seconds = (time.perf_counter() - start, cpu_of_children() - cpu)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout
