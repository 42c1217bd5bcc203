"""The mutation driver's bookkeeping (mutation/run.py, without cosmic-ray): the equivalents list
it reads is well formed and names real code, and a mutant is located by its definition."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("mutation_run", ROOT / "mutation" / "run.py")
run = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = run  # dataclasses look their module up
spec.loader.exec_module(run)


def equivalent_lines() -> list[list[str]]:
    lines = (ROOT / "mutation" / "equivalent.txt").read_text().splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("fields", equivalent_lines(), ids=lambda f: f"{f[0]}:{f[3]}")
def test_each_equivalent_names_a_module_its_definition_and_a_reason(fields):
    assert len(fields) == 7, fields
    module, where, _operator, _line, old, _new, reason = fields
    assert module in run.MODULES
    source = (ROOT / run.MODULES[module].path).read_text()
    names = {name for _, _, name in run.definitions(source)} | {"<module>"}
    assert where in names, f"{module}: no definition {where!r}"
    assert len(reason) > 10
    if old:  # the original line is still in the file (a removed decorator keeps its text too)
        assert old in " ".join(line.strip() for line in source.splitlines()), old


def test_the_equivalents_file_parses_to_one_reason_per_mutant():
    assert len(run.read_equivalents()) == len(equivalent_lines())


def test_a_line_belongs_to_its_innermost_definition():
    source = "x = 1\n\nclass A:\n    @staticmethod\n    def f():\n        return 2\n"
    defs = run.definitions(source)
    assert defs == [(3, 6, "A"), (4, 6, "A.f")]
    assert [run.enclosing(defs, line) for line in (1, 3, 4, 6)] == ["<module>", "A", "A.f", "A.f"]


def test_a_diff_gives_its_removed_and_added_lines():
    diff = "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-    y = a + b\n+    y = a - b\n"
    assert run.changed_lines(diff) == ("y = a + b", "y = a - b")


def test_only_annotations_under_future_annotations_are_skipped():
    body = "def f(x: int | None) -> float:\n    return x | 1\n"
    spans = run.annotation_spans("from __future__ import annotations\n" + body)
    assert sorted(spans) == [((2, 9), (2, 19)), ((2, 24), (2, 29))]  # `int | None`, `float`
    assert run.annotation_spans(body) == []  # evaluated at definition: a mutant there is real
