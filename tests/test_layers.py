"""The structure the README's Layout promises: no import runs back up the layers, no circle.

Every `src` import (function-local ones too) is read from the source with `ast`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

# higher imports lower, never the reverse; one package per rank unless they never meet
LAYERS = [
    ("train", "eval", "score", "sample", "compare", "__init__"),  # entry points
    ("build",),  # the one assembly
    ("pairing",),  # which model takes which data
    ("callbacks",),
    ("studies",),
    ("fits", "sweeps", "loggers"),
    ("data", "plots"),
    ("models", "estimators"),
    ("utils",),
    ("errors",),
]
RANK = {package: -i for i, packages in enumerate(LAYERS) for package in packages}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Each src module and the src modules it imports (a `from src.x import name` counts as
    importing src.x.name where that is a module, else src.x)."""
    modules = {module_name(p): p for p in (ROOT / "src").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("src"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("src.")}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_layer():
    assert {package(m) for m in imports()} <= set(RANK)


def test_no_import_runs_back_up_the_layers():
    upward = [
        f"{a} -> {b}"
        for a, targets in imports().items()
        for b in targets
        if package(a) != package(b) and RANK[package(a)] <= RANK[package(b)]
    ]
    assert upward == []


def test_no_import_circle():
    graph, state, cycles = imports(), {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []
