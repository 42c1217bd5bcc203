"""Compare runs over seeds: `python -m src.compare DIR [DIR ...] [--out OUT] [--no-figure]
[--curves]`.

Finds every run under the directories (single runs, sweeps, Optuna studies) and writes into the
first directory (or OUT): `comparison.csv` and `comparison.md`, one row per configuration with
the mean ± standard error over seeds of every final metric and its completed and failed seeds
counted, a models × data sets table of test/kl_gap and paired differences between models
(src/sweeps/aggregate.py); and `comparison.png`, each model's density next to the truth. Runs
that differ in `model.n_components` add `choose_k.csv`/`.md`/`.png`, the K chosen by train/bic
and by val/nll (src/sweeps/choose_k.py), and print those choices. `--curves` adds
`learning_curves.png`, each run's validation KL gap against its training seconds
(src/sweeps/curves.py), and refuses a completed run that has no such curve.
Torch and matplotlib are imported only to draw, so `--help` and mistakes answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.errors import UserError, first_line
from src.sweeps.aggregate import CSV, MARKDOWN, Comparison, Config, write_comparison
from src.sweeps.choose_k import k_curves, write_choose_k
from src.sweeps.curves import METRIC, learning_curves
from src.sweeps.runs import find_runs
from src.utils.cli import EXIT_USER_ERROR

FIGURE, CURVES = "comparison.png", "learning_curves.png"
N_REFERENCE = 20000  # truth samples that set a row's plotting range


def compare_dirs(
    dirs: Sequence[str | Path], out: str | Path | None, figure: bool, curves: bool = False
) -> list[Path]:
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
    panels = learning_curves(comparison) if curves else {}  # refused before any figure is drawn
    written = [out_dir / CSV, out_dir / MARKDOWN]
    rows = figure_rows(comparison) if figure else []
    if rows:
        from src.plots.comparison import draw

        draw(rows, out_dir / FIGURE)
        written.append(out_dir / FIGURE)
    if panels:
        from src.plots.learning_curves import draw as draw_curves

        draw_curves(panels, out_dir / CURVES, METRIC)
        written.append(out_dir / CURVES)
    k_choices = k_curves(comparison)
    if k_choices:
        written += write_choose_k(k_choices, out_dir, figure)
    for curve in k_choices:
        print(curve.verdict())
    return written


def figure_rows(comparison: Comparison) -> list:  # of src.plots.comparison.Row
    """One row per data set with a test metric, one column per model run on any of them, each
    cell the model of its lowest completed seed rebuilt by the run assembly (src/build.py),
    its score over seeds in the title; the row's truth and range from the first rebuilt run."""
    from src.plots.comparison import Row

    scored = [(d, m) for d in comparison.datasets if (m := comparison.score(d))]
    models = [m for m in comparison.models if any(comparison.cell(m, d) for d, _ in scored)]
    rows = []
    for data, metric in scored:
        cells, datamodules = [], []
        for model in models:
            cell, datamodule = _cell(model, comparison.cell(model, data), metric)
            cells.append(cell)
            datamodules += [datamodule] if datamodule is not None else []
        truth, points, n_bins = _range(datamodules[0]) if datamodules else (None, None, None)
        rows.append(Row(data, truth, points, n_bins, cells))
    return rows


def _cell(model: str, config: Config | None, metric: str) -> tuple[Any, Any]:
    """(the cell, the rebuilt run's data module or None)"""
    from src.build import rebuild
    from src.plots.comparison import Cell

    if config is None:
        return Cell(""), None  # an empty cell
    run = config.first
    if run is None:
        return Cell(model, note=f"no completed run ({config.n_failed} failed)"), None
    stat = config.stat(metric)
    seeds = f"{stat.n} seed{'s' if stat.n > 1 else ''}" if stat else "no value"
    title = f"{model} (seed {run.seed} drawn)\n{metric.split('/')[-1]} {stat or '—'} ({seeds})"
    try:
        rebuilt = rebuild(run.run_dir, "run")
    except Exception as error:  # any failure to rebuild is this cell's, not the figure's
        return Cell(title, note=f"cannot rebuild the model: {first_line(error)}"), None
    if rebuilt.model is None:
        return Cell(title, note="a study: no density to draw"), None
    return Cell(title, rebuilt.model), rebuilt.datamodule


def _range(datamodule: Any) -> tuple[Any, Any, int | None]:
    """The truth, the points that set the plotting range (truth samples, seeded, or the
    training split where there is no truth) and the number of values of discrete data."""
    import torch

    truth = datamodule.truth
    if truth is None:
        return None, datamodule.train_x, datamodule.n_bins
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        points = truth.sample((N_REFERENCE,))
    return truth, points, datamodule.n_bins


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
        "--curves",
        action="store_true",
        help=f"also {CURVES}: each run's {METRIC} against its training seconds (every "
        "completed run must have its curve.csv, and data with a truth)",
    )
    parser.add_argument(
        "--readme",
        help="also replace the block between <!-- comparison:start --> and "
        "<!-- comparison:end --> in this Markdown file by comparison.md's model × data table",
    )
    args = parser.parse_args(argv)
    try:
        written = compare_dirs(args.dirs, args.out, not args.no_figure, args.curves)
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
