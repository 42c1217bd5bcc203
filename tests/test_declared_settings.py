"""Hostile values for every declared setting of every config option, checked where `build`
checks them (no class is built, nothing trains).

For each `_target_` of the model, data, fit, study, callbacks, optimizer and scheduler groups
(nested ones too: `data.truth`, `study.target`), every setting its class declares (or the library
table declares for it) gets values its constraint refuses, derived from the constraint itself
(`Integer(low=1)`: 0, "x", True, 1.5, ...; `Real`: nan, inf, "x"; `OneOf`: "nope"; `ListOf`: []
and "x"), beside the option's own settings; the boundary must refuse each with one line that
starts `<path>.<key>=` and says what it expected. Also: no module under src/ uses the old
argument checks (src/utils/checks.py) instead of declaring its settings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from src.errors import ConfigError
from src.utils.constraints import (
    AnyOf,
    Constraint,
    Flag,
    Integer,
    ListOf,
    OneOf,
    Probabilities,
    Real,
    Text,
    declared,
)
from src.utils.instantiate import check_node
from src.utils.library_constraints import entry_for
from tests.conftest import CONF_DIR, ROOT, compose_config

GROUPS = ("model", "data", "fit", "study", "callbacks", "optimizer", "scheduler")
NAN, INF = math.nan, math.inf


# Hostile values, from the constraint -------------------------------------------------------------
def hostile(constraint: Constraint) -> list[Any]:
    """Values `constraint` must refuse, chosen from what it is (not by asking it)."""
    if isinstance(constraint, AnyOf):  # Nullable too: what none of the alternatives takes
        values = [v for c in constraint.constraints for v in hostile(c)]
        return _unique(v for v in values if not constraint.accepts(v))
    if isinstance(constraint, Integer):
        values: list[Any] = ["x", True, 1.5, None, NAN, [1]]
        if constraint.low is not None:
            values += [constraint.low - 1, constraint.low - 2]
        if constraint.high is not None:
            values += [constraint.high + 1]
        return values
    if isinstance(constraint, Real):
        values = ["x", True, NAN, None, [1.0]]
        if constraint.finite:
            values += [INF, -INF]
        if constraint.low is not None:
            values += [constraint.low - 1] + ([constraint.low] if constraint.low_open else [])
        if constraint.high is not None:
            values += [constraint.high + 1] + ([constraint.high] if constraint.high_open else [])
        return values
    if isinstance(constraint, Flag):
        return [1, 0, "true", "x", None]
    if isinstance(constraint, OneOf):
        choices = constraint.choices
        values = [v for v in ("nope", 12345, None, [*choices]) if v not in choices]
        values += [float(c) for c in choices if type(c) is int]  # 32.0 is not 32
        values += [c.upper() for c in choices if isinstance(c, str) and c.upper() != c]
        return values
    if isinstance(constraint, Text):
        return [1, None, ["a"]] + (["", "  "] if constraint.nonempty else [])
    if isinstance(constraint, ListOf):
        values = ["x", 3, None]
        if constraint.min_length >= 1:
            values.append([])
        bad_item = next(v for v in hostile(constraint.item) if v is not None)
        values.append([bad_item] * max(constraint.length or 1, constraint.min_length, 1))
        return values
    if isinstance(constraint, Probabilities):
        return ["x", [], [0.5, 0.6], [1.5, -0.5], [NAN], None]
    raise AssertionError(f"no hostile values known for {constraint!r}: teach `hostile` its kind")


def _unique(values: Iterator[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(f"{type(value).__name__}:{value!r}", value)
    return list(seen.values())


# The nodes a run builds, from the config files ---------------------------------------------------
def _nodes(node: Any, path: str) -> Iterator[str]:
    """The paths of every `_target_` node under `node` (itself included), as `build` names them."""
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield path
        for key, value in node.items():
            if str(key).startswith("_") or key == "defaults":
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    yield from _nodes(item, f"{path}.{key}[{i}]")
            else:
                yield from _nodes(value, f"{path}.{key}")


def _cases() -> Iterator[tuple[str, str, str]]:
    for group in GROUPS:
        for file in sorted((Path(CONF_DIR) / group).glob("*.yaml")):
            raw = OmegaConf.to_container(OmegaConf.load(file), resolve=False) or {}
            # a study file is global (`study:` inside it); every other option is its group's node
            node = raw.get(group, {}) if group == "study" else raw
            yield from ((group, file.stem, path) for path in _nodes(node, group))


CASES = list(_cases())


def _select(cfg: DictConfig, path: str) -> Any:
    node: Any = cfg
    for part in re.findall(r"[^.\[\]]+", path):
        node = node[int(part)] if part.isdigit() else node[part]
    return node


def _settings(node: DictConfig) -> dict[str, Any]:
    """The node's own settings, resolved (a value that resolves only in a running app, such as
    `${hydra:...}`, is left out), without its nested `_target_` nodes."""
    settings = {}
    for key in node:
        if str(key).startswith("_"):
            continue
        try:
            value = node[key]
            value = (
                OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            )
        except Exception:
            continue
        items = value if isinstance(value, list) else [value]
        if not any(isinstance(item, Mapping) and "_target_" in item for item in items):
            settings[str(key)] = value
    return settings


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> Any:
    cache: dict[tuple[str, str], DictConfig] = {}
    out = tmp_path_factory.mktemp("declared")

    def get(group: str, option: str) -> DictConfig:
        if (group, option) not in cache:
            cache[(group, option)] = compose_config(f"{group}={option}", output_dir=out)
        return cache[(group, option)]

    return get


def _declared_at(target: str) -> dict[str, Constraint]:
    """What `build` checks a node of `target` against: the class's declarations, the library
    table's entry."""
    klass = get_object(target)
    entry = entry_for(target, klass if isinstance(klass, type) else None)
    return {**(entry.constraints if entry else {}), **declared(klass)}


@pytest.mark.parametrize(("group", "option", "path"), CASES, ids=[f"{c[2]}@{c[1]}" for c in CASES])
def test_every_declared_setting_refuses_hostile_values_naming_itself(group, option, path, composed):
    node = _select(composed(group, option), path)
    target = node["_target_"]
    settings = _settings(node)
    check_node({"_target_": target, **settings}, path)  # the option as shipped passes
    constraints = _declared_at(target)
    failures = []
    for key, constraint in constraints.items():
        values = hostile(constraint)
        assert values, f"{path}.{key}: no hostile value for {constraint!r}"
        for value in values:
            try:
                check_node({"_target_": target, **settings, key: value}, path)
            except ConfigError as error:
                message = str(error)
                if not message.startswith(f"{path}.{key}=") or "expected" not in message:
                    failures.append(f"{path}.{key}={value!r}: {message!r}")
                elif "\n" in message:
                    failures.append(f"{path}.{key}={value!r}: more than one line: {message!r}")
            else:
                failures.append(f"{path}.{key}={value!r} passed ({constraint.describe()})")
    assert not failures, "\n".join(failures)


def test_every_group_is_walked_with_its_nested_nodes():
    paths = {(g, o, p) for g, o, p in CASES}
    assert {g for g, _, _ in CASES} == set(GROUPS)
    assert ("study", "elbo_gaussian", "study.target") in paths
    assert ("data", "mog1d", "data.truth") in paths
    assert ("callbacks", "default", "callbacks.figures") in paths
    assert ("fit", "online_em", "fit") in paths and ("optimizer", "sgd", "optimizer") in paths


@pytest.mark.parametrize(
    ("constraint", "refused"),
    [
        (Integer(low=1), [0, -1, "x", True, 1.5]),
        (Real(), [NAN, INF, "x"]),
        (OneOf("a", "b"), ["nope"]),
        (ListOf(Real()), [[], "x"]),
    ],
    ids=repr,
)
def test_hostile_values_are_derived_from_the_constraint(constraint, refused):
    values = hostile(constraint)
    assert all(any(v is r or v == r or (v != v and r != r) for v in values) for r in refused)
    assert not [v for v in values if constraint.accepts(v)]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"weight_dcay": 0.1},
            "optimizer.weight_dcay=0.1 is invalid: expected what Adam accepts (",
        ),
        ({"fused": True, "foreach": True}, "optimizer.foreach=True is invalid: expected what Adam"),
    ],
)
def test_what_torch_refuses_in_an_optimizer_is_named_before_training(settings, message):
    """An optimizer is built `_partial_`: torch's own argument checks run at the boundary on a
    stand-in parameter, not at the first step."""
    node = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.01, **settings}
    with pytest.raises(ConfigError) as error:
        check_node(node, "optimizer")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_no_module_under_src_uses_the_old_argument_checks():
    """Every setting is checked where its class declares it, never by hand-written checks."""
    pattern = re.compile(
        r"^\s*(from\s+src\.utils\.checks\s+import|from\s+src\.utils\s+import\s+"
        r"[^#\n]*\bchecks\b|import\s+src\.utils\.checks)",
        re.MULTILINE,
    )
    users = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "src").rglob("*.py"))
        if pattern.search(path.read_text())
    ]
    assert users == []
