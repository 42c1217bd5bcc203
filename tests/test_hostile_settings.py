"""Every setting, hostile values: each run either works or stops with one line naming it.

Walks every numeric and string leaf of every option of the model, data, fit, trainer, optimizer
and scheduler groups and tries 0, −1, 2.5, 1e12, nan, inf, "abc" and an empty list. A run must
either finish (`debug=fast`: one batch per stage) or raise a `UserError` whose single line names
the setting (its key, or for an allocation the group that asked for it) — what the command line
prints as `error: ...` with exit code 2. Any other exception is a traceback a user would see.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from src.errors import UserError
from src.train import train
from tests.conftest import CONF_DIR, compose_config

pytestmark = pytest.mark.slow

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
    """The options paired with this one; every other 2-D data set goes with model=gmm."""
    if (group, option) in PARTNERS:
        return PARTNERS[(group, option)]
    if group == "data" and "dim: 2" in (Path(CONF_DIR) / "data" / f"{option}.yaml").read_text():
        return ("model=gmm",)
    return ()


# a setting whose hostile value is refused by the setting that would make it work
NAMED_INSTEAD = {"data.truth.radius": "model.reg_covar"}


def _leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if key in ("defaults", "_target_", "_partial_") or str(key).startswith("_"):
            continue
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from _leaves(value, dotted)
        elif (
            isinstance(value, (int, float, str))
            and not isinstance(value, bool)
            and not (isinstance(value, str) and "${" in value)
        ):
            yield dotted


def _cases():
    for group in GROUPS:
        for path in sorted((Path(CONF_DIR) / group).glob("*.yaml")):
            text = path.read_text()
            if text.startswith("# @package _global_"):
                continue
            node = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
            for leaf in _leaves(node):
                yield group, path.stem, f"{group}.{leaf}"


CASES = list(_cases())


@pytest.mark.parametrize(("group", "option", "key"), CASES, ids=[c[2] + "@" + c[1] for c in CASES])
def test_hostile_values_run_or_stop_in_one_line_naming_the_setting(group, option, key, tmp_path):
    choice = [f"{group}={option}"] if group != "scheduler" else [f"scheduler={option}"]
    failures = []
    for value in HOSTILE:
        overrides = [*choice, *_partners(group, option), f"{key}={value}", "debug=fast"]
        run_dir = tmp_path / value
        run_dir.mkdir()
        cfg = compose_config(*overrides, output_dir=run_dir)
        try:
            metrics = train(cfg)
        except UserError as error:
            message = str(error)
            names = (key.split(".")[-1], f"{group}:", NAMED_INSTEAD.get(key, key))
            named = any(name in message for name in names)
            if "\n" in message or not named:
                failures.append(f"{key}={value}: {message!r}")
            continue
        except Exception as error:  # a traceback the user would see
            failures.append(f"{key}={value}: {type(error).__name__}: {error}"[:300])
            continue
        numbers = [v for k, v in metrics.items() if k.startswith("test/") and isinstance(v, float)]
        if metrics.get("status") == "completed" and not all(map(math.isfinite, numbers)):
            failures.append(f"{key}={value}: completed with a non-finite test metric")
    assert not failures, "\n".join(failures)
