"""Mutation testing (cosmic-ray) of the modules that carry the derivations and exactness promises.

Why this driver rather than a bare `cosmic-ray exec`:
- cosmic-ray mutates the file on disk, so each module runs in its own copy of the tree under
  `outputs/mutation/<module>/tree`; the working copy (and anyone running tests in it) never sees
  a mutant;
- each module runs only against the fast tests that cover it (`MODULES`), so a mutant costs one
  pytest start-up plus a few seconds, and `-x` stops at the first failing test;
- a run resumes: the session (sqlite) is re-initialised only when the module's source changed;
  when the covering tests changed, the survivors alone are run again (a new test can only kill);
- the report reads `mutation/equivalent.txt` and prints only the survivors not listed there,
  with a ready-to-paste line for each, and exits 1 if there is any.

    .venv/bin/python mutation/run.py                    # every module in MODULES
    .venv/bin/python mutation/run.py histogram samplers # some of them
    .venv/bin/python mutation/run.py --report           # only the report, nothing runs
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "outputs" / "mutation"
EQUIVALENT = ROOT / "mutation" / "equivalent.txt"
COPIED = ("src", "tests", "conf", "data", "docs", "pyproject.toml", "README.md")
# no cache, no hypothesis plugin (1 s of start-up; only tests/test_numerical_safety.py uses it)
PYTEST = ("-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest")


@dataclass(frozen=True)
class Module:
    """A module under mutation and the fast tests (pytest arguments) that cover it."""

    path: str
    tests: tuple[str, ...]
    timeout: float = 120.0  # seconds per mutant: a mutant that loops forever counts as killed


MODULES: dict[str, Module] = {
    "histogram": Module(
        "src/models/histogram.py", ("tests/test_histogram.py", "tests/test_mutation_histogram.py")
    ),
    "dmol": Module("src/models/dmol.py", ("tests/test_dmol.py",)),
    "gmm": Module(
        "src/models/gmm.py",
        ("tests/test_mutation_gmm.py", "tests/test_gmm.py", "tests/test_em.py"),
    ),
    "gmm_ops": Module("src/models/gmm_ops.py", ("tests/test_gmm.py", "tests/test_em.py")),
    "gmm_grad": Module(
        "src/models/gmm_grad.py", ("tests/test_mutation_gmm_grad.py", "tests/test_gmm.py")
    ),
    "flow1d": Module("src/models/flow1d.py", ("tests/test_flow1d.py",)),
    "realnvp": Module("src/models/realnvp.py", ("tests/test_realnvp.py",)),
    "em": Module("src/fits/em.py", ("tests/test_mutation_em.py", "tests/test_em.py")),
    "cavi_updates": Module("src/fits/cavi_updates.py", ("tests/test_earthquake_cavi_math.py",)),
    "sufficient_stats": Module(
        "src/fits/sufficient_stats.py",
        ("tests/test_mutation_sufficient_stats.py", "tests/test_sufficient_stats.py"),
    ),
    "gradients": Module(
        "src/estimators/gradients.py",
        ("tests/test_estimators.py", "tests/test_gumbel_study.py", "-k", "not cli"),
    ),
    # the end-to-end studies add seconds per mutant and no exactness check the unit tests lack
    "categorical": Module(
        "src/estimators/categorical.py",
        ("tests/test_gumbel_study.py", "-k", "not exponential and not end_to_end"),
    ),
    "samplers": Module("src/estimators/samplers.py", ("tests/test_samplers.py",)),
    "exponential": Module(
        "src/estimators/exponential.py",
        ("tests/test_gumbel_study.py", "-k", "exponential and not end_to_end"),
    ),
    "importance": Module("src/estimators/importance.py", ("tests/test_importance.py",)),
    "targets": Module(
        "src/estimators/targets.py",
        ("tests/test_elbo_gradients.py", "tests/test_mutation_targets.py"),
    ),
}


@dataclass(frozen=True)
class Mutant:
    """One mutant's stable identity: module, enclosing definition, operator and the line before and
    after; it survives edits elsewhere in the file (the line number is shown, not compared)."""

    module: str
    where: str
    operator: str
    old: str
    new: str
    line: int = 0

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.module, self.where, self.operator, self.old, self.new)

    def fields(self, reason: str) -> str:
        where = (self.module, self.where, self.operator, f"L{self.line}", self.old, self.new)
        return "\t".join((*where, reason))


def digest(paths: list[Path]) -> str:
    """Hash of the files (recursively) under `paths`: a changed source or test is noticed."""
    h = hashlib.sha256()
    for path in paths:
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(file.read_bytes())
    return h.hexdigest()


def sync_tree(tree: Path) -> None:
    """Copy the working tree's files into `tree` (also undoing a mutant a killed run left)."""
    tree.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source, target = ROOT / name, tree / name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, target)


def test_command(module: Module) -> list[str]:
    return [sys.executable, *PYTEST, *module.tests]


def write_config(name: str, module: Module, config: Path) -> None:
    command = shlex.join(test_command(module))  # cosmic-ray shlex-splits it back
    config.write_text(  # json.dumps: a TOML basic string, quotes escaped
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module.path)}\n"
        f"timeout = {module.timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        '[cosmic-ray.distributor]\nname = "local"\n'
    )


def run_module(name: str, module: Module) -> None:
    """Init (if new or the source changed), re-open survivors (if the tests changed), exec."""
    work = OUT / name
    tree, config, session = work / "tree", work / "config.toml", work / "session.sqlite"
    sync_tree(tree)
    write_config(name, module, config)
    source_hash = digest([tree / module.path])  # the copy the session's mutants are made from
    tests_hash = digest(
        [ROOT / t for t in module.tests if (ROOT / t).exists()] + [ROOT / "tests/conftest.py"]
    )
    stamp_source, stamp_tests = work / "source.sha256", work / "tests.sha256"
    baseline = subprocess.run(test_command(module), cwd=tree, capture_output=True, text=True)
    if baseline.returncode != 0:
        sys.exit(f"{name}: the tests fail on the unmutated code:\n{baseline.stdout[-3000:]}")
    cosmic = [str(Path(sys.executable).with_name("cosmic-ray"))]
    if not session.exists() or not stamp_source.exists() or stamp_source.read_text() != source_hash:
        print(f"{name}: new session for {module.path}", flush=True)
        init = [*cosmic, "init", str(config), str(session), "--force"]
        subprocess.run(init, cwd=tree, check=True)
        skip_annotations(session, tree / module.path)
        shutil.copy2(tree / module.path, work / "source.py")  # the tree's copy holds mutants
        stamp_source.write_text(source_hash)
    elif not stamp_tests.exists() or stamp_tests.read_text() != tests_hash:
        reopen_survivors(session)
    stamp_tests.write_text(tests_hash)
    subprocess.run([*cosmic, "exec", str(config), str(session)], cwd=tree, check=True)


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) of every annotation: with `from __future__ import annotations` they are never
    evaluated, so a mutant inside one (`Tensor | None` → `Tensor % None`) is equivalent."""
    tree = ast.parse(source)
    if not any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(a.name == "annotations" for a in node.names)
        for node in tree.body
    ):
        return []
    spans = []
    for node in ast.walk(tree):
        for ann in (getattr(node, "annotation", None), getattr(node, "returns", None)):
            if isinstance(ann, ast.expr) and ann.end_lineno is not None:
                spans.append(((ann.lineno, ann.col_offset), (ann.end_lineno, ann.end_col_offset)))
    return spans


def skip_annotations(session: Path, source: Path) -> None:
    """Mark the mutants inside annotations skipped: equivalent by construction, not worth a run."""
    from cosmic_ray.work_db import WorkDB, use_db  # the dev extra: here, not at import, for tests
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    spans = annotation_spans(source.read_text())
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.work_items:
            start = item.mutations[0].start_pos
            if any(lo <= start < hi for lo, hi in spans):
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def reopen_survivors(session: Path) -> None:
    """Forget the survivors' results so that `exec` runs them again against the new tests."""
    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'")


def definitions(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every class and function, decorators included,
    outer before inner."""
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                name = prefix + child.name
                found.append((first, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def enclosing(defs: list[tuple[int, int, str]], line: int) -> str:
    """The innermost definition holding `line`, `<module>` at the top level."""
    names = [name for first, last, name in defs if first <= line <= last]
    return names[-1] if names else "<module>"


def changed_lines(diff: str) -> tuple[str, str]:
    """The removed and added lines of a mutant's unified diff, stripped and joined."""
    lines = diff.splitlines()
    old = [s[1:].strip() for s in lines if s.startswith("-") and not s.startswith("---")]
    new = [s[1:].strip() for s in lines if s.startswith("+") and not s.startswith("+++")]
    return " ".join(filter(None, old)), " ".join(filter(None, new))


def read_equivalents() -> dict[tuple[str, str, str, str, str], str]:
    """Lines `module, definition, operator, line, old code, new code, reason` (tab-separated),
    `#` comments."""
    found = {}
    for line in EQUIVALENT.read_text().splitlines() if EQUIVALENT.exists() else []:
        if line.strip() and not line.startswith("#"):
            module, where, operator, _line, old, new, reason = line.split("\t")
            found[(module, where, operator, old, new)] = reason
    return found


def report(names: list[str], markdown: bool = False) -> int:
    """Per module: mutants, killed (a test failed, crashed or timed out), survived (not listed as
    equivalent), equivalent, pending, and annot (inside annotations: skipped, not counted as
    mutants); then the new survivors. Returns how many new survivors there are."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    equivalents = read_equivalents()
    columns = ("mutants", "killed", "survived", "equiv", "pending", "annot")

    def row(first: str, cells: tuple) -> str:
        if markdown:
            return "| " + " | ".join((first, *map(str, cells))) + " |"
        return f"{first:18}" + "".join(f"{c:>9}" for c in cells)

    print(row("module", columns))
    if markdown:
        print("|" + "---|" * (len(columns) + 1))
    new: list[Mutant] = []
    for name in names:
        session = OUT / name / "session.sqlite"
        if not session.exists():
            print(row(name, ("not run",)))
            continue
        pristine = OUT / name / "source.py"  # older sessions: the tree's, right between mutants
        source = pristine if pristine.exists() else OUT / name / "tree" / MODULES[name].path
        defs = definitions(source.read_text())
        with use_db(str(session), WorkDB.Mode.open) as db:
            total, done = db.num_work_items, db.completed_work_items
        killed = survived = equivalent = 0
        for item, result in done:
            if result.worker_outcome != WorkerOutcome.NORMAL:
                continue  # no mutation possible (or the worker broke): not a mutant
            if result.test_outcome != TestOutcome.SURVIVED:
                killed += 1
                continue
            spec, line = item.mutations[0], item.mutations[0].start_pos[0]
            old, new_code = changed_lines(result.diff or "")
            mutant = Mutant(name, enclosing(defs, line), spec.operator_name, old, new_code, line)
            if mutant.key() in equivalents:
                equivalent += 1
            else:
                survived += 1
                new.append(mutant)
        skipped = sum(r.worker_outcome == WorkerOutcome.SKIPPED for _, r in done)
        not_mutants = sum(r.worker_outcome != WorkerOutcome.NORMAL for _, r in done)
        counts = (total - not_mutants, killed, survived, equivalent, total - len(done), skipped)
        print(row(name, counts))
    if new and not markdown:
        print(f"\n{len(new)} new survivor(s): kill each with a test, or add its line, with the")
        print(f"reason it is equivalent in place of REASON, to {EQUIVALENT.relative_to(ROOT)}:")
        for mutant in sorted(new, key=lambda m: (m.module, m.line)):
            print(mutant.fields("REASON"))
    return len(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--report", action="store_true", help="report only, run nothing")
    parser.add_argument("--markdown", action="store_true", help="the report as a Markdown table")
    args = parser.parse_args()
    names = args.modules or list(MODULES)
    if unknown := set(names) - set(MODULES):
        parser.error(f"unknown module(s) {sorted(unknown)}: choose from {', '.join(MODULES)}")
    if not (args.report or args.markdown):
        os.nice(10)  # background work: the tests a person runs meanwhile come first
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny tensors: threads only contend
        for name in names:
            run_module(name, MODULES[name])
    sys.exit(1 if report(names, args.markdown) else 0)


if __name__ == "__main__":
    main()
