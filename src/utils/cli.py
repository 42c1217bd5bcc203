"""What `python -m src.train` / `src.eval` do around the plain function: one-line user errors.

Two boundaries. Inside a run, a `UserError` ends the process with its message as the last stderr
line (`run_cli`). Before a run, Hydra answers an unknown option or key, an override it cannot
parse or a config it cannot compose with an exception; `hydra_entry` has Hydra raise it
(`HYDRA_FULL_ERROR=1`, Hydra's documented switch, instead of printing a trimmed traceback) and
prints it as one line, keeping the valid choices it lists (`MissingConfigException.options`),
with exit code 2. Hydra's command-line parser (argparse) prints its usage errors and exits; that
text, held back with the rest of stderr until the run starts (`release_stderr`, called by a
Hydra callback), becomes one line too.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from src.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
FULL_ERROR = "HYDRA_FULL_ERROR"  # "1": Hydra re-raises its errors (hydra.cc, "Debugging")
CONFIG_ERRORS = (HydraException, OmegaConfBaseException, UserError)
# Hydra's defaults list raises a plain ValueError for some overrides (`logger=null`): before the
# run starts it is the command line's fault, like the errors above
PRE_RUN_ERRORS = (*CONFIG_ERRORS, ValueError)
NULL_GROUP = "Got NoneType"  # its message for a config group set to null


def run_cli(task: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> dict[str, Any]:
    """Run `task(cfg)`; a `UserError` ends the process with its message as the last stderr line,
    Ctrl+C with one line too and exit code 130 (the shell's for SIGINT): what it was writing is
    left out (src/utils/row_files.py), never a traceback. (A training run turns Ctrl+C into its
    own `RunInterrupted`, with the command that resumes it.)"""
    try:
        return task(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl+C)", file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)


_held: tuple[Any, io.StringIO] | None = None  # (the real stderr, what Hydra wrote so far)


def hydra_entry(main: Callable[[], Any]) -> None:
    """Run a `@hydra.main` function with Hydra's pre-run errors as one line, exit code 2. With
    `HYDRA_FULL_ERROR=1` set by the user, Hydra's errors keep their traceback."""
    global _held
    asked = os.environ.get(FULL_ERROR)
    os.environ[FULL_ERROR] = "1"
    real, buffer = sys.stderr, io.StringIO()
    _held, sys.stderr = (real, buffer), buffer
    try:
        main()
    except SystemExit as stop:
        if _held is not None and stop.code not in (0, None):  # Hydra's argparse: usage errors
            sys.stderr, _held = real, None
            print(f"error: {one_line(buffer.getvalue())}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
        raise
    except PRE_RUN_ERRORS as error:
        if _held is None or asked == "1":  # raised by the run itself, or a traceback asked for
            raise
        sys.stderr, _held = real, None
        print(f"error: {config_error_line(error)}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    finally:
        release_stderr()
        if asked is None:
            os.environ.pop(FULL_ERROR, None)
        else:
            os.environ[FULL_ERROR] = asked


def release_stderr() -> None:
    """The run has started: stderr flows again, with whatever was held back."""
    global _held
    if _held is not None:
        real, buffer = _held
        sys.stderr, _held = real, None
        real.write(buffer.getvalue())


def config_error_line(error: BaseException) -> str:
    """An error Hydra raised before the run, in one line: its message and, as Hydra prints it, the
    OmegaConf error that caused it. A config that is not found is named with the options of its
    group, from the exception's own fields (its message's later paragraphs are the same list and
    the config search path)."""
    if isinstance(error, MissingConfigException):
        found = str(error).strip().split("\n\n")[0]
        options = list(error.options or [])
        group = os.path.dirname(error.missing_cfg_file or "")
        if options:
            found = one_line(found) + f"; Available options in '{group}': " + ", ".join(options)
        return one_line(found)
    text = str(error)
    if NULL_GROUP in text:
        text += " (a config group cannot be null: to leave one out, write ~<group>, e.g. ~logger)"
    if isinstance(error.__cause__, OmegaConfBaseException):
        text += "\n" + str(error.__cause__)
    return one_line(text) or type(error).__name__


def one_line(paragraph: str) -> str:
    """A message's lines joined by "; "; the lines after one that ends with ":" (a list) are its
    items, joined by ", ". Hydra's pointer to `HYDRA_FULL_ERROR` is left out."""
    lines = [
        line.strip() for line in paragraph.splitlines() if line.strip() and FULL_ERROR not in line
    ]
    text: list[str] = []
    items: list[str] | None = None
    for line in lines:
        if items is not None and not line.endswith(":"):
            items.append(line)
            continue
        if items:
            text[-1] += " " + ", ".join(items)
        text.append(line)
        items = [] if line.endswith(":") else None
    if items:
        text[-1] += " " + ", ".join(items)
    return re.sub(r"\s+", " ", "; ".join(text)) or "the command line could not be composed"
