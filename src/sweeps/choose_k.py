"""Choosing the number of components from a sweep over `model.n_components`.

Runs that differ only in K (and seed) form one curve; each curve gives the K each criterion
chooses, lowest mean over seeds wins:

- `train/bic` (EM fits, src/fits/em.py): −2ℓ(θ̂) + p ln N on the training split. Schwarz's
  large-N approximation of −2 log p(data | K): the log-likelihood always rises with K, the
  penalty p ln N charges every free parameter, so it picks a K whose gain is worth its cost;
- `val/nll` (every fit, CAVI's earthquake mixture too, which has no point estimate to count):
  the held-out NLL per point, which an extra component lowers only if it generalises.

The means are over the seeds every K of the curve completed: a seed fixes the splits, so every
K is scored on the same training and validation points and the curve's differences cancel the
split-to-split noise (a K with no completed seed is listed, counted as failed, never chosen).
A tie goes to the smaller K, the simpler model. Written as `choose_k.csv`, `choose_k.md` and
`choose_k.png` beside the comparison (`python -m src.compare`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from src.sweeps.aggregate import Comparison, Config, Stat, markdown_table, to_csv
from src.sweeps.records import atomic_write
from src.sweeps.runs import CHOICES

KEY = "model.n_components"
CRITERIA = ("train/bic", "val/nll")
CSV, MARKDOWN, FIGURE = "choose_k.csv", "choose_k.md", "choose_k.png"


@dataclass
class KCurve:
    label: str  # what its runs share: model, data, fit and any other setting that varies
    ks: list[int]  # ascending
    configs: list[Config]  # one per K

    @cached_property
    def seeds(self) -> list[int | None]:
        """The seeds that every K completed (a K with no completed run left aside)."""
        done = [set(c.by_seed) for c in self.configs if c.by_seed]
        common = set.intersection(*done) if done else set()
        return sorted(common, key=lambda s: (s is None, s))

    def stat(self, criterion: str, config: Config) -> Stat | None:
        """Mean ± se of the criterion at one K, over the curve's seeds."""
        values = config.values(criterion)
        return Stat.of([values[s] for s in self.seeds if s in values])

    @property
    def criteria(self) -> list[str]:
        """The criteria some K of the curve has a value of."""
        return [m for m in CRITERIA if any(self.stat(m, c) for c in self.configs)]

    def series(self, criterion: str) -> tuple[list[int], list[float], list[float]]:
        """(K, mean, se) at each K with a value of the criterion."""
        stats = [(k, s) for k, c in zip(self.ks, self.configs) if (s := self.stat(criterion, c))]
        return [k for k, _ in stats], [s.mean for _, s in stats], [s.se for _, s in stats]

    def chosen(self, criterion: str) -> int | None:
        """The K of the lowest mean (the smaller K on a tie)."""
        ks, means, _ = self.series(criterion)
        return min(zip(means, ks))[1] if ks else None

    @property
    def choices(self) -> str:
        return ", ".join(f"{self.chosen(m)} by {m}" for m in self.criteria)

    def verdict(self) -> str:
        return f"chosen K for {self.label}: {self.choices}"


def k_curves(comparison: Comparison) -> list[KCurve]:
    """One curve per group of configurations equal but for `model.n_components`, where at
    least two values of K ran and some K has a criterion's value."""
    groups: dict[tuple, list[tuple[int, Config]]] = {}
    for config in comparison.configs:
        k = _integer(config.identity.get(KEY))
        if k is not None:
            rest = sorted((key, v) for key, v in config.identity.items() if key != KEY)
            groups.setdefault(tuple(rest), []).append((k, config))
    curves = []
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda member: member[0])
        identity = members[0][1].identity  # in its settings' order: model, data, fit, ...
        label = " ".join(
            f"{k}={v}"
            for k, v in identity.items()
            if k != KEY and (k in CHOICES or k in comparison.varying)
        )
        curve = KCurve(label, [k for k, _ in members], [c for _, c in members])
        if curve.criteria:
            curves.append(curve)
    return curves


def _integer(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def write_choose_k(curves: list[KCurve], out_dir: Path, figure: bool) -> list[Path]:
    """Write choose_k.csv, choose_k.md and (with `figure`) choose_k.png; returns the paths."""
    atomic_write(out_dir / CSV, to_csv(csv_rows(curves)))
    atomic_write(out_dir / MARKDOWN, to_markdown(curves))
    written = [out_dir / CSV, out_dir / MARKDOWN]
    if figure:
        from src.plots.choose_k import Series, draw

        rows = [
            (curve.label, [Series(m, *curve.series(m), curve.chosen(m)) for m in curve.criteria])
            for curve in curves
        ]
        draw(rows, out_dir / FIGURE)
        written.append(out_dir / FIGURE)
    return written


def csv_rows(curves: list[KCurve]) -> list[dict[str, Any]]:
    """One row per K of each curve: its seeds, then mean, se and the chosen mark per criterion."""
    criteria = [m for m in CRITERIA if any(m in curve.criteria for curve in curves)]
    rows = []
    for curve in curves:
        seeds = " ".join(str(s) for s in curve.seeds)
        for k, config in zip(curve.ks, curve.configs):
            row: dict[str, Any] = {"runs": curve.label, "K": k, "seeds": seeds}
            row |= {"n_failed": config.n_failed, "n_running": config.n_running}
            for m in criteria:
                stat = curve.stat(m, config)
                row[f"{m}:mean"] = stat.mean if stat else ""
                row[f"{m}:se"] = stat.se if stat and math.isfinite(stat.se) else ""
                row[f"chosen:{m}"] = "*" if k == curve.chosen(m) else ""
            rows.append(row)
    return rows


def to_markdown(curves: list[KCurve]) -> str:
    lines = [
        "# Choosing K",
        "",
        f"Runs that differ only in `{KEY}`: per K, the mean ± se over the seeds every K "
        "completed (a seed fixes the splits, so every K is scored on the same points) of "
        "`train/bic` (EM: −2·log-likelihood + p·ln N on the training split) and `val/nll` "
        "(held-out NLL per point). **Bold**: the K each criterion chooses, its lowest mean; a "
        "tie goes to the smaller K.",
    ]
    for curve in curves:
        seeds = " ".join(str(s) for s in curve.seeds) or "none"
        lines += ["", f"## {curve.label}", "", f"Chosen K: {curve.choices} (seeds {seeds}).", ""]
        body = []
        for k, config in zip(curve.ks, curve.configs):
            cells = []
            for m in curve.criteria:
                stat = curve.stat(m, config)
                text = str(stat) if stat else "—"
                cells.append(f"**{text}**" if k == curve.chosen(m) else text)
            body.append([k, *cells, config.n_failed, config.n_running])
        lines += markdown_table(["K", *curve.criteria, "n_failed", "n_running"], body)
    return "\n".join(lines) + "\n"
