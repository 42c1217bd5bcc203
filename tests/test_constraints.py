"""The declared constraints (src/utils/constraints.py): what each accepts, how it says so, and
`check` with its path and a class's `check_together`."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from src.errors import ConfigError
from src.utils.constraints import (
    AnyOf,
    Constraint,
    Flag,
    Integer,
    ListOf,
    Nullable,
    OneOf,
    Probabilities,
    Real,
    Text,
    check,
    declared,
)

NAN, INF = math.nan, math.inf

CASES = [
    # constraint, accepted, refused, description
    (
        Integer(low=1),
        [1, 2, 10**30],
        [0, -1, 2.0, 2.5, True, "1", None, [1], NAN],
        "an integer >= 1",
    ),
    (Integer(low=-1), [-1, 0, 5], [-2, False], "an integer >= -1"),
    (Integer(low=0, high=3), [0, 3], [-1, 4], "an integer in [0, 3]"),
    (Integer(high=3), [-5, 3], [4], "an integer <= 3"),
    (Integer(), [0, -7], [0.5, True], "an integer"),
    (
        Real(low=0, low_open=True),
        [1e-30, 1, 2.5, 1e30],
        [0, -1, NAN, INF, -INF, True, "1", None, []],
        "a finite number > 0",
    ),
    (Real(low=0), [0, 0.0, 3], [-1e-9, INF, NAN], "a finite number >= 0"),
    (Real(0, 1, low_open=True, high_open=True), [0.5, 1e-9], [0, 1, NAN], "a number in (0, 1)"),
    (Real(0, 1, high_open=True), [0, 0.999], [1, -0.1], "a number in [0, 1)"),
    (Real(), [-1e30, 0, 7], [INF, NAN, False], "a finite number"),
    (Real(low=0, finite=False), [0, INF], [NAN, -INF, -1], "a number >= 0 (inf allowed)"),
    (Flag(), [True, False], [1, 0, "true", "abc", None], "true or false"),
    (OneOf("full", "diag"), ["full", "diag"], ["Full", "", 0, None], "one of full, diag"),
    (OneOf(32, 64), [32, 64], [32.0, True, "32"], "one of 32, 64"),
    (OneOf(1), [1], [True, 1.0], "1"),
    (Text(), ["", "abc"], [1, None, ["a"]], "a string"),
    (Text(nonempty=True), ["a"], ["", "  "], "a non-empty string"),
    (Nullable(Integer(low=1)), [None, 1], [0, "null"], "an integer >= 1 or null"),
    (AnyOf(OneOf("auto"), Integer(low=1)), ["auto", 3], ["abc", 0], "auto or an integer >= 1"),
    (
        ListOf(Real(low=0, low_open=True), length=3),
        [[1, 2, 3], (0.5, 1, 2)],
        [[1, 2], [1, 2, 0], [1, 2, NAN], "abc", 3, None, [[1], 2, 3]],
        "a list of 3 finite numbers > 0",
    ),
    (ListOf(Real()), [[0], [1, -2]], [[], [INF], "12"], "a non-empty list of finite numbers"),
    (ListOf(Integer(low=1), min_length=0), [[], [1]], [[0]], "a list of integers >= 1"),
    (ListOf(Text(), min_length=2), [["a", "b"]], [["a"]], "a list of at least 2 strings"),
    (
        Probabilities(),
        [[1], [0.2, 0.8], [0, 1], [1 / 3, 1 / 3, 1 / 3]],
        [[0.3, 0.3, 0.3], [0.5, 0.6, -0.1], [], [NAN, 1], [1.5, -0.5], "1", 1],
        "a list of non-negative weights that sum to 1",
    ),
    (
        Probabilities(length=2),
        [[0.5, 0.5]],
        [[1]],
        "a list of 2 non-negative weights that sum to 1",
    ),
]


@pytest.mark.parametrize(("constraint", "good", "bad", "words"), CASES, ids=lambda c: repr(c))
def test_each_constraint_accepts_refuses_and_says_what_it_takes(constraint, good, bad, words):
    assert isinstance(constraint, Constraint)
    assert [v for v in good if not constraint.accepts(v)] == []
    assert [v for v in bad if constraint.accepts(v)] == []
    assert constraint.describe() == words


def test_a_list_config_is_a_list():
    from omegaconf import OmegaConf

    assert ListOf(Real(), length=2).accepts(OmegaConf.create([1.0, 2.0]))


class Base:
    constraints: ClassVar[dict[str, Constraint]] = {"n": Integer(low=1), "kind": OneOf("a", "b")}

    def __init__(self, n: int = 1, kind: str = "a", val: float = 0.1, test: float = 0.1) -> None:
        pass


class Child(Base):
    constraints: ClassVar[dict[str, Constraint]] = {
        "kind": OneOf("a", "b", "c"),
        "val": Real(0, 1, low_open=True, high_open=True),
        "test": Real(0, 1, low_open=True, high_open=True),
    }

    @classmethod
    def check_together(cls, settings):
        if settings["val"] + settings["test"] >= 1:
            raise ConfigError(
                "test", settings["test"], f"a number < 1 - val = {1 - settings['val']}"
            )


def test_a_subclass_inherits_its_bases_constraints_and_overrides_them():
    assert set(declared(Child)) == {"n", "kind", "val", "test"}
    assert declared(Child)["kind"].accepts("c") and not declared(Base)["kind"].accepts("c")


def test_check_names_the_first_bad_setting_by_its_full_path():
    check(Child, {"n": 3, "kind": "c", "undeclared": object()}, "model")
    with pytest.raises(ConfigError) as error:
        check(Child, {"n": 0, "kind": "z"}, "model")
    assert str(error.value) == "model.n=0 is invalid: expected an integer >= 1"
    assert error.value.key == "model.n" and error.value.top_level
    # the full path is kept when an outer boundary re-raises it under another prefix
    assert error.value.under("data").key == "model.n"
    with pytest.raises(ConfigError, match=r"^data\.truth\.kind='z' is invalid: expected one of"):
        check(Child, {"kind": "z"}, "data.truth")


def test_check_together_sees_the_defaults_overlaid_with_the_settings():
    check(Child, {"val": 0.5}, "data")  # test defaults to 0.1
    with pytest.raises(ConfigError) as error:
        check(Child, {"val": 0.95}, "data")
    assert str(error.value).startswith("data.test=0.1 is invalid: expected a number < 1 - val")
    assert "\n" not in str(error.value)


def test_a_class_without_declarations_passes():
    class Plain:
        def __init__(self, x=1):
            pass

    check(Plain, {"x": "anything"}, "model")
