"""What `python -m src.train` / `src.eval` do around the plain function: one-line user errors.

Two boundaries. Inside a run, a `UserError` ends the process with its message as the last stderr
line (`run_cli`). Before a run, Hydra answers an unknown option or key, an override it cannot
parse or a search space it cannot sample with a paragraph and exit code 1; `hydra_entry` holds
stderr back until the run starts (`release_stderr`, called by a Hydra callback) and turns such
a paragraph into one line, keeping the valid choices it lists, with exit code 2.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from src.errors import UserError

EXIT_USER_ERROR = 2


def run_cli(task: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> dict[str, Any]:
    """Run `task(cfg)`; a `UserError` ends the process with its message as the last stderr line."""
    try:
        return task(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)


_held: tuple[Any, io.StringIO] | None = None  # (the real stderr, what Hydra wrote so far)


def hydra_entry(main: Callable[[], Any]) -> None:
    """Run a `@hydra.main` function with Hydra's pre-run errors as one line, exit code 2."""
    global _held
    real, buffer = sys.stderr, io.StringIO()
    _held, sys.stderr = (real, buffer), buffer
    code: Any = 0
    try:
        main()
    except SystemExit as stop:
        if _held is not None and stop.code not in (0, None):
            sys.stderr, _held = real, None
            print(f"error: {one_line(buffer.getvalue())}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
        code = stop.code
    finally:
        release_stderr()
    exit_now(code)


def exit_now(code: Any) -> None:
    """End the process as `sys.exit(code)` would, without the interpreter's teardown.

    Once torch and Lightning are loaded, freeing their modules at exit takes 0.7–1.5 s and
    does nothing a user needs. Everything that matters runs first: the atexit handlers run
    (loggers), the log files and stdio are flushed. A process that still has other threads (a
    joblib sweep's executor, which stops from the interpreter's own shutdown hooks) exits the
    ordinary way: joining them here, before those hooks, waited forever.
    """
    if isinstance(code, str):  # sys.exit("message"): printed, status 1
        print(code, file=sys.stderr)
        code = 1
    elif code is None:
        code = 0
    elif not isinstance(code, int):
        code = 1
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to flush to
            stream.flush()
    os._exit(code)


def release_stderr() -> None:
    """The run has started: stderr flows again, with whatever was held back."""
    global _held
    if _held is not None:
        real, buffer = _held
        sys.stderr, _held = real, None
        real.write(buffer.getvalue())


def one_line(paragraph: str) -> str:
    """Hydra's message in one line: its lines joined, a list of options kept as a list."""
    paragraph = paragraph.split("Config search path:")[0]  # where Hydra looked: noise here
    lines = [
        line.strip()
        for line in paragraph.splitlines()
        if line.strip() and "HYDRA_FULL_ERROR" not in line
    ]
    text, options = [], []
    for line in lines:
        if paragraph.count("\t" + line) and not line.endswith(":"):
            options.append(line)
        else:
            if options:
                text[-1] += " " + ", ".join(options)
                options = []
            text.append(line)
    if options:
        text[-1] += " " + ", ".join(options)
    return re.sub(r"\s+", " ", "; ".join(text)) or "the command line could not be composed"
