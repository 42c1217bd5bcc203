"""Every command in the README runs as the README gives it and does what it says.

The shell commands of its ```bash blocks run in one scratch directory, in the README's order (so
`outputs/` lands there and `<time>` is the run or sweep an earlier command made), each training
run cut to one epoch so that it takes seconds. A comment `# error: <text>` says the command
fails: exit code 2 and one stderr line starting with that text. The ```python block runs too,
and the `make` targets the prose names are the Makefile's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
FAST = ("trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1")  # a short budget


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.DOTALL | re.MULTILINE)


def shell_commands() -> list[str]:
    """Each command of the bash blocks, continuation lines joined."""
    text = "\n".join(blocks("bash")).replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip()]


COMMANDS = shell_commands()


def test_the_readme_starts_with_its_two_commands_and_stays_short():
    assert README.splitlines()[:2] == ["make train", "make test"]
    assert len(README.splitlines()) <= 250
    assert len(COMMANDS) >= 10  # the blocks were found


def latest(cwd: Path, pattern: str, model: str | None = None) -> str:
    """The newest directory matching `pattern` (`<time>` is any timestamp) under `cwd`; of runs,
    the newest with a `last.ckpt` (a refused command leaves only its log), of `model` if given."""
    found = sorted(cwd.glob(pattern.replace("<time>", "*")))
    if "/runs/" in pattern:
        found = [d for d in found if (d / "checkpoints" / "last.ckpt").is_file()]
    if model is not None:
        found = [d for d in found if recorded(d).get("model") == model]
    assert found, f"no earlier README command made {pattern}"
    return str(found[-1].relative_to(cwd))


def recorded(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def prepared(command: str, cwd: Path) -> list[str]:
    argv = shlex.split(command, comments=True)
    assert argv[0] == ".venv/bin/python", command
    argv[0] = sys.executable
    for i, arg in enumerate(argv):
        if "<time>" in arg:
            key, _, path = arg.rpartition("=")
            run = latest(cwd, path.split("/checkpoints/")[0])
            tail = path.split("<time>", 1)[1].split("/", 1)[1:] if "/checkpoints/" in path else []
            argv[i] = (f"{key}=" if key else "") + "/".join([run, *tail])
    trains = argv[1:3] == ["-m", "src.train"] and "--cfg" not in argv
    if trains and not any(a.startswith("resume=") for a in argv):
        argv += FAST
    return argv


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("readme")


@pytest.mark.parametrize("command", COMMANDS, ids=range(len(COMMANDS)))
def test_each_command_does_what_the_readme_says(command, scratch):
    if command.startswith("make "):
        return  # the first lines: test_make_train_trains and test_make_test_runs_the_suite
    comment = command.partition("#")[2].strip()
    ran = subprocess.run(
        prepared(command, scratch),
        cwd=scratch,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    if comment.startswith("error:"):
        lines = ran.stderr.strip().splitlines()
        assert ran.returncode == 2 and lines and lines[-1].startswith(comment), ran.stderr
        return
    assert ran.returncode == 0, ran.stderr[-3000:]
    if "resume=" in command:  # the run it resumes finished its budget: nothing to do
        assert "is complete; nothing changed" in ran.stdout


def test_the_python_example_loads_a_run(scratch):
    (example,) = blocks("python")
    run = latest(scratch, "outputs/train/runs/<time>", model="flow1d")
    code = re.sub(r'load_run\("[^"]*"\)', f'load_run("{run}")', example)
    ran = subprocess.run(
        [sys.executable, "-c", code],
        cwd=scratch,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    mean = float(re.search(r"tensor\((-?[\d.]+)", ran.stdout).group(1))
    assert -5 < mean < 0  # −entropy of the fitted 1-D flow, near the mixture's −1.05 nats
    assert "src.models.flow1d.MixtureCDFFlow1d" in ran.stdout  # cfg.model: the run's own model


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_make_train_trains(tmp_path):
    ran = make("train", f"ARGS=paths.log_dir={tmp_path} trainer.max_epochs=1")
    assert ran.returncode == 0, ran.stderr[-3000:]
    (metrics,) = tmp_path.glob("train/runs/*/metrics.json")
    record = json.loads(metrics.read_text())
    assert (record["model"], record["data"], record["status"]) == ("flow1d", "mog1d", "completed")


def test_make_test_runs_the_suite():
    """Dry run (running the suite from inside it would recurse)."""
    ran = make("-n", "test")
    assert ran.returncode == 0 and ".venv/bin/python -m pytest -q" in ran.stdout


def test_the_make_targets_the_readme_names_exist():
    listed = make("help").stdout
    for target in set(re.findall(r"`make ([a-z-]+)", README)):
        assert f"make {target} " in listed, target
