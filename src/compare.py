"""Compare runs over seeds: `python -m src.compare DIR [DIR ...] [--out OUT] [--no-figure]`.

Finds every run under the directories (single runs, sweeps, Optuna studies) and writes into the
first directory (or OUT): `comparison.csv` and `comparison.md`, one row per configuration with
the mean ± standard error over seeds of every final metric and its completed and failed seeds
counted, a models × data sets table of test/kl_gap and paired differences between models
(src/sweeps/aggregate.py); and `comparison.png`, each model's density next to the truth.
Torch and matplotlib are imported only to draw, so `--help` and mistakes answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from src.errors import UserError
from src.sweeps.aggregate import CSV, MARKDOWN, Comparison, Config, write_comparison
from src.sweeps.runs import find_runs
from src.utils.cli import EXIT_USER_ERROR

FIGURE = "comparison.png"


def compare_dirs(dirs: Sequence[str | Path], out: str | Path | None, figure: bool) -> list[Path]:
    """Write the comparison of every run under `dirs`; returns the files written."""
    for path in dirs:
        if not Path(path).is_dir():
            raise UserError(f"{path} is not a directory")
    runs = find_runs(dirs)
    if not runs:
        where = ", ".join(map(str, dirs))
        raise UserError(f"no runs under {where} (a run directory holds .hydra/config.yaml)")
    out_dir = Path(out if out is not None else dirs[0])
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {out_dir}: cannot create it ({error.strerror})") from None
    comparison = write_comparison(runs, out_dir, dirs)
    written = [out_dir / CSV, out_dir / MARKDOWN]
    rows = figure_rows(comparison) if figure else []
    if rows:
        from src.plots.comparison import draw

        draw(rows, out_dir / FIGURE)
        written.append(out_dir / FIGURE)
    return written


def figure_rows(comparison: Comparison) -> list:  # of src.plots.comparison.Row
    """One row per data set with a test metric, one column per model run on any of them, each
    cell the run of the model's lowest completed seed, its score over seeds in the title."""
    from src.plots.comparison import Cell, Row

    scored = [(d, m) for d in comparison.datasets if (m := comparison.score(d))]
    models = [m for m in comparison.models if any(comparison.cell(m, d) for d, _ in scored)]
    rows = []
    for data, metric in scored:
        cells = [Cell(*_cell(m, comparison.cell(m, data), metric)) for m in models]
        first = next((c.run_dir for c in cells if c.run_dir), None)
        rows.append(Row(data, first, cells))
    return rows


def _cell(model: str, config: Config | None, metric: str) -> tuple[str, Path | None, str]:
    """(title, run to draw, what to say instead)"""
    if config is None:
        return "", None, ""  # an empty cell
    run = config.first
    if run is None:
        return model, None, f"no completed run ({config.n_failed} failed)"
    stat = config.stat(metric)
    seeds = f"{stat.n} seed{'s' if stat.n > 1 else ''}" if stat else "no value"
    title = f"{model} (seed {run.seed} drawn)\n{metric.split('/')[-1]} {stat or '—'} ({seeds})"
    return title, run.run_dir, ""


START, END = "<!-- comparison:start -->", "<!-- comparison:end -->"


def splice(readme: Path, comparison_md: Path) -> None:
    """Put the comparison's headline table into a document, between its two markers, so the
    document shows what the last study measured and nobody edits the numbers by hand."""
    try:
        text = readme.read_text()
    except OSError as error:
        raise UserError(f"--readme {readme}: {error.strerror}") from None
    if START not in text or END not in text:
        raise UserError(f"--readme {readme}: no {START} … {END} block to replace")
    sections = comparison_md.read_text().split("\n## ")
    table = next((s for s in sections if s.startswith("`test/kl_gap` by model")), sections[0])
    body = "\n".join(table.splitlines()[1:]).strip()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{body}\n{END}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.compare",
        description="Aggregate runs over seeds: comparison.csv, comparison.md (mean ± se of "
        "every final metric per configuration, a models × data sets table, paired "
        "differences) and comparison.png (each model's density next to the truth).",
    )
    parser.add_argument("dirs", nargs="+", help="run, sweep or study directories (searched)")
    parser.add_argument("--out", help="where to write (default: the first directory)")
    parser.add_argument("--no-figure", action="store_true", help="the tables only")
    parser.add_argument(
        "--readme",
        help="also replace the block between <!-- comparison:start --> and "
        "<!-- comparison:end --> in this Markdown file by comparison.md's model × data table",
    )
    args = parser.parse_args(argv)
    try:
        written = compare_dirs(args.dirs, args.out, figure=not args.no_figure)
        if args.readme:
            splice(Path(args.readme), written[1])
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
