"""Every setting, hostile values: each run either works or stops with one line naming it.

Walks every setting of every option of the model, data, fit, trainer, optimizer and scheduler
groups (numbers, strings, nulls, lists, booleans and interpolations alike) and tries 0, −1, 2.5,
1e12, nan, inf, "abc" and an empty list. A run must either finish (`debug=fast`: one batch per
stage) or raise a `UserError` whose single line names the setting — its full key, or its own name
as a word (as a library names its argument: `accelerator=0`), or the setting it is checked
against — what the command line prints as `error: ...` with exit code 2. Any other exception is a
traceback a user would see. The walk takes half an hour: it is marked slow; the two fast tests
check what it walks.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.errors import UserError
from src.train import train
from tests.conftest import CONF_DIR, compose_config

HOSTILE = ["0", "-1", "2.5", "1e12", "nan", "inf", "abc", "[]"]
GROUPS = ("model", "data", "fit", "trainer", "optimizer", "scheduler")
# a partner for each option that pairs with it, so the setting itself is what is tested
PARTNERS = {
    ("model", "histogram"): ("data=hw1_d20",),
    ("model", "dmol"): ("data=hw1_d20",),
    ("model", "gmm"): ("data=mog2d",),
    ("model", "realnvp"): ("data=banana",),
    ("model", "earthquake"): ("data=earthquake", "fit=cavi"),
    ("data", "hw1_d20"): ("model=histogram",),
    ("data", "hw1_d100"): ("model=histogram",),
    ("data", "digits"): ("model=histogram",),
    ("data", "binned_mog1d"): ("model=histogram",),
    ("data", "mog2d"): ("model=gmm",),
    ("data", "banana"): ("model=realnvp",),
    ("data", "moons"): ("model=realnvp",),
    ("data", "earthquake"): ("model=earthquake", "fit=cavi"),
    ("data", "earthquake_csv"): ("model=earthquake", "fit=cavi"),
    ("data", "none"): ("study=estimator",),
    ("data", "table"): ("model=gmm", "data.path=data/examples/table_2d.csv"),
    ("data", "fiji_quakes"): ("model=earthquake", "fit=cavi"),
    ("model", "nsf"): ("data=banana",),
    ("model", "maf"): ("data=banana",),
    ("fit", "em"): ("model=gmm", "data=mog2d"),
    ("fit", "online_em"): ("model=gmm", "data=mog2d", "data.batch_size=500"),
    ("fit", "cavi"): ("model=earthquake", "data=earthquake"),
    ("fit", "svi"): ("model=earthquake", "data=earthquake", "data.batch_size=500"),
}


def _partners(group: str, option: str) -> tuple[str, ...]:
    """The options paired with this one; every other 2-D data set goes with model=gmm. Without a
    GPU, a GPU trainer's settings are tried on the CPU (else each stops at 'no gpu')."""
    if (group, option) in PARTNERS:
        return PARTNERS[(group, option)]
    text = (Path(CONF_DIR) / group / f"{option}.yaml").read_text()
    if group == "data" and "dim: 2" in text:
        return ("model=gmm",)
    if group == "trainer" and "accelerator: gpu" in text and not torch.cuda.is_available():
        return ("trainer.accelerator=cpu",)
    return ()


# a setting whose hostile value is refused by the setting it is checked against
NAMED_INSTEAD = {
    "data.truth.radius": "model.reg_covar",  # 1e12: the components' points coincide in float32
    "data.columns": "model.dim",  # one column (columns=0) leaves the 2-D model no dimension
    "model.normalized": "model.base",  # the notes' flow (normalized false) takes base normal only
    "scheduler.T_max": "scheduler: CosineAnnealingLR rejects",  # T_max=0: torch divides by it
}


def _leaves(node: dict, prefix: str = ""):
    """Every setting of a config file by its dotted key, but `defaults`, `_target_`-like keys,
    a copy of the run's seed (`${seed}`: `seed` itself is checked by train) and where a run
    writes (`${paths.…}`: any string is a path)."""
    for key, value in node.items():
        if key == "defaults" or str(key).startswith("_"):
            continue
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from _leaves(value, dotted)
        elif value != "${seed}" and not (isinstance(value, str) and "${paths." in value):
            yield dotted


def _cases():
    for group in GROUPS:
        for path in sorted((Path(CONF_DIR) / group).glob("*.yaml")):
            node = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
            for leaf in _leaves(node):
                yield group, path.stem, f"{group}.{leaf}"


CASES = list(_cases())


def _names(message: str, key: str) -> bool:
    """The message names the setting: its full key, its last part as a word, or the setting it
    is checked against."""
    leaf = re.escape(key.split(".")[-1])
    return (
        key in message
        or re.search(rf"(?<!\w){leaf}(?!\w)", message, re.IGNORECASE) is not None
        or NAMED_INSTEAD.get(key, "\n") in message
    )


def test_every_kind_of_setting_is_walked():
    """A setting added to an option is walked whatever its value: number, string, null, list,
    boolean, nested or an interpolation."""
    node = {
        "defaults": ["base"],
        "_target_": "a.B",
        "n": 1,
        "s": "x",
        "z": None,
        "l": [1, 2],
        "b": True,
        "sub": {"x": 0.5, "i": "${oc.select:data.dim,2}", "seed": "${seed}"},
        "dir": "${paths.output_dir}/x",
    }
    assert list(_leaves(node)) == ["n", "s", "z", "l", "b", "sub.x", "sub.i"]


def test_every_option_of_every_group_is_walked():
    """An option added to a group is walked, with its lists and nulls."""
    options = {(g, p.stem) for g in GROUPS for p in (Path(CONF_DIR) / g).glob("*.yaml")}
    assert {(g, o) for g, o, _ in CASES} == options - {("fit", "mle")}  # mle: no setting
    assert ("data", "mog1d", "data.truth.stds") in CASES  # a list
    assert ("data", "hw1_d20", "data.batch_size") in CASES  # a null


@pytest.mark.slow
@pytest.mark.parametrize(("group", "option", "key"), CASES, ids=[c[2] + "@" + c[1] for c in CASES])
def test_hostile_values_run_or_stop_in_one_line_naming_the_setting(group, option, key, tmp_path):
    failures = []
    for value in HOSTILE:
        overrides = [f"{group}={option}", *_partners(group, option), f"{key}={value}", "debug=fast"]
        run_dir = tmp_path / value
        run_dir.mkdir()
        cfg = compose_config(*overrides, output_dir=run_dir)
        try:
            metrics = train(cfg)
        except UserError as error:
            message = str(error)
            if "\n" in message or not _names(message, key):
                failures.append(f"{key}={value}: {message!r}")
            continue
        except Exception as error:  # a traceback the user would see
            failures.append(f"{key}={value}: {type(error).__name__}: {error}"[:300])
            continue
        numbers = [v for k, v in metrics.items() if k.startswith("test/") and isinstance(v, float)]
        if metrics.get("status") == "completed" and not all(map(math.isfinite, numbers)):
            failures.append(f"{key}={value}: completed with a non-finite test metric")
    assert not failures, "\n".join(failures)
