"""Results over seeds, the way a study is reported: one row per configuration (a run's settings
without its seed) with the mean ± standard error over seeds of every final metric, a models ×
data sets table of the KL gap, and paired differences between models.

Only completed runs are averaged; a seed that never completed is counted as failed (or running).
The pairing is real: a seed fixes a data set's splits, so two models fitted with the same seed
are scored on the same test points and their per-seed difference cancels the split-to-split
noise that each mean carries. Written as `comparison.csv` and `comparison.md`.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from src.sweeps.records import atomic_write, finite
from src.sweeps.runs import CHOICES, Run

# Metrics that compare across seeds and models: the KL gap where the data have a truth, else
# the test NLL. Never val/nll: each seed draws its own validation split.
SCORES = ("test/kl_gap", "test/nll")
COST = ("fit_seconds", "n_parameters")
CSV, MARKDOWN = "comparison.csv", "comparison.md"


@dataclass(frozen=True)
class Stat:
    """Mean ± standard error (sd / √n) of n values; se is NaN for a single value."""

    mean: float
    se: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        if not values:
            return None
        se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
        return cls(statistics.fmean(values), se, len(values))

    def __str__(self) -> str:
        if not math.isfinite(self.se):
            return f"{self.mean:.6g}"
        if self.se == 0:
            return f"{self.mean:.6g} ± 0"
        digits = min(12, max(0, 1 - math.floor(math.log10(self.se))))  # se to 2 significant
        return f"{self.mean:.{digits}f} ± {self.se:.{digits}f}"


@dataclass
class Config:
    """The runs of one configuration, one or more per seed."""

    identity: dict[str, str]
    runs: list[Run]  # in start order
    model: str = ""  # its labels in the tables: what sets it apart from the others
    data: str = ""

    @cached_property
    def by_seed(self) -> dict[int | None, Run]:
        """The latest completed run of each seed."""
        return {run.seed: run for run in self.runs if run.status == "ok"}

    @cached_property
    def unfinished(self) -> dict[int | None, str]:
        """Each seed without a completed run: the status of its latest run (failed, running)."""
        return {run.seed: run.status for run in self.runs if run.seed not in self.by_seed}

    @property
    def n_failed(self) -> int:
        return sum(status == "failed" for status in self.unfinished.values())

    @property
    def n_running(self) -> int:
        return sum(status == "running" for status in self.unfinished.values())

    @property
    def superseded(self) -> int:
        """Completed runs of a seed that a later run of the same seed replaces."""
        return sum(run.status == "ok" for run in self.runs) - len(self.by_seed)

    def values(self, metric: str) -> dict[int | None, float]:
        return {
            s: r.metrics[metric] for s, r in self.by_seed.items() if finite(r.metrics.get(metric))
        }

    def stat(self, metric: str) -> Stat | None:
        return Stat.of(list(self.values(metric).values()))

    @property
    def first(self) -> Run | None:
        """The completed run of the lowest seed: the one a figure draws."""
        seeds = sorted(self.by_seed, key=lambda s: (s is None, s))
        return self.by_seed[seeds[0]] if seeds else None


@dataclass
class Comparison:
    configs: list[Config]
    shared: dict[str, str] = field(default_factory=dict)  # settings equal in every config
    varying: list[str] = field(default_factory=list)  # settings that tell configs apart

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.configs))

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(c.data for c in self.configs))

    @property
    def metrics(self) -> list[str]:
        names = {m for c in self.configs for r in c.by_seed.values() for m in r.metrics}
        return [m for m in SCORES if m in names] + sorted(names - set(SCORES))

    def cell(self, model: str, data: str) -> Config | None:
        return next((c for c in self.configs if (c.model, c.data) == (model, data)), None)

    def score(self, data: str) -> str | None:
        """The KL gap if every completed run on this data set has one, else the test NLL."""
        runs = [r for c in self.configs if c.data == data for r in c.by_seed.values()]
        return next(
            (m for m in SCORES if runs and all(finite(r.metrics.get(m)) for r in runs)), None
        )

    def best(self, data: str) -> list[str]:
        """The models with the lowest mean score on this data set."""
        metric = self.score(data)
        stats = {m: self._stat(m, data, metric) for m in self.models} if metric else {}
        means = {m: s.mean for m, s in stats.items() if s is not None}
        return [m for m, mean in means.items() if mean == min(means.values())]

    def _stat(self, model: str, data: str, metric: str) -> Stat | None:
        config = self.cell(model, data)
        return config.stat(metric) if config else None

    def pairs(self, data: str) -> list[tuple[str, str, Stat]]:
        """For each pair of models on this data set: the score's per-seed difference A − B over
        the seeds both completed."""
        metric = self.score(data)
        if metric is None:
            return []
        configs = [c for c in self.configs if c.data == data]
        out = []
        for i, a in enumerate(configs):
            for b in configs[i + 1 :]:
                va, vb = a.values(metric), b.values(metric)
                diff = Stat.of([va[s] - vb[s] for s in va if s in vb])
                if diff is not None:
                    out.append((a.model, b.model, diff))
        return out


def compare(runs: Iterable[Run]) -> Comparison:
    """Group the runs by configuration, in the order each first started, and label them."""
    groups: dict[tuple, Config] = {}
    for run in runs:
        key = tuple(sorted(run.identity.items()))
        groups.setdefault(key, Config(run.identity, [])).runs.append(run)
    configs = list(groups.values())
    keys = list(dict.fromkeys(k for c in configs for k in c.identity))
    varying = [k for k in keys if len({c.identity.get(k) for c in configs}) > 1]
    _label(configs, varying)
    shared = {k: v for k, v in configs[0].identity.items() if k not in varying} if configs else {}
    return Comparison(configs, shared, varying)


def _label(configs: list[Config], varying: list[str]) -> None:
    """A data set is its data choice and the `data.` settings that vary; a model is its model
    choice and each other varying setting that the model and data set alone do not fix (an
    experiment that only names a model on a data set adds nothing)."""
    for config in configs:
        tags = [
            f"{k}={config.identity[k]}"
            for k in varying
            if k.startswith("data.") and k in config.identity
        ]
        config.data = " ".join([config.identity.get("data", "?"), *tags])
    same: dict[tuple, list[Config]] = {}
    for config in configs:
        same.setdefault((config.identity.get("model"), config.data), []).append(config)
    model_keys = [
        k
        for k in varying
        if k not in ("model", "data") and not k.startswith("data.")
        if any(len({c.identity.get(k) for c in group}) > 1 for group in same.values())
    ]
    for config in configs:
        tags = [f"{k}={config.identity[k]}" for k in model_keys if k in config.identity]
        config.model = " ".join([config.identity.get("model", "?"), *tags])


def csv_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """comparison.csv: each configuration's settings and seeds, then mean and se per metric."""
    keys = list(dict.fromkeys(k for c in comparison.configs for k in c.identity))
    keys = [k for k in CHOICES if k in keys] + [k for k in keys if k not in CHOICES]
    out = []
    for config in comparison.configs:
        row: dict[str, Any] = {k: config.identity.get(k, "") for k in keys}
        row |= _counts(config)
        for metric in comparison.metrics:
            stat = config.stat(metric)
            row[f"{metric}:mean"] = stat.mean if stat else ""
            row[f"{metric}:se"] = stat.se if stat and math.isfinite(stat.se) else ""
        out.append(row)
    return out


def _counts(config: Config) -> dict[str, Any]:
    seeds = sorted(config.by_seed, key=lambda s: (s is None, s))
    return {
        "seeds": " ".join(str(s) for s in seeds),
        "n_seeds": len(seeds),
        "n_failed": config.n_failed,
        "n_running": config.n_running,
    }


def to_markdown(comparison: Comparison, sources: Sequence[str | Path]) -> str:
    configs = comparison.configs
    n_runs = sum(len(c.runs) for c in configs)
    lines = [
        "# Comparison",
        "",
        f"{n_runs} runs in {len(configs)} configurations, from {', '.join(map(str, sources))}. "
        "Mean ± standard error over seeds (se = sd/√n); only completed runs are averaged, and "
        "a seed that never completed is counted as failed (or running), never averaged in.",
    ]
    if comparison.shared:
        lines += ["", "Same in every configuration: " + _settings(comparison.shared) + "."]
    superseded = sum(c.superseded for c in configs)
    if superseded:
        lines += [
            "",
            f"Left out: {superseded} earlier completed run(s) of a seed that ran again "
            "(the latest completed run of each seed counts).",
        ]
    lines += _models_by_data(comparison) + _cost_by_data(comparison) + _paired(comparison)
    header = [*comparison.varying, "seeds", "n_seeds", "n_failed", "n_running"]
    body = [
        [config.identity.get(k, "") for k in comparison.varying]
        + list(_counts(config).values())
        + [config.stat(m) or "" for m in comparison.metrics]
        for config in configs
    ]
    lines += ["", "## Every configuration", ""]
    lines += markdown_table(header + comparison.metrics, body)
    return "\n".join(lines) + "\n"


def _models_by_data(comparison: Comparison) -> list[str]:
    scored = [(d, comparison.score(d)) for d in comparison.datasets]
    scored = [(d, m) for d, m in scored if m is not None]
    if not scored:
        return []
    header = ["model"] + [d if m == SCORES[0] else f"{d} ({m}: no oracle)" for d, m in scored]
    body = []
    for model in comparison.models:
        cells = [_score_cell(comparison, model, d, m) for d, m in scored]
        if any(cells):
            body.append([model, *cells])
    return [
        "",
        f"## `{SCORES[0]}` by model and data set",
        "",
        f"`{SCORES[0]}` = test NLL − the truth's NLL on the same points, an estimate of "
        f"KL(truth ‖ model); where a data set has no truth its column shows `{SCORES[1]}` and "
        "says so. Mean ± se over seeds; **bold**: the lowest on each data set.",
        "",
        *markdown_table(header, body),
    ]


def _cost_by_data(comparison: Comparison) -> list[str]:
    """What each score cost: the model's parameter count and its mean fit seconds per data set,
    so a comparison at equal budget can be seen to be one."""
    body = []
    for model in comparison.models:
        cells = []
        for data in comparison.datasets:
            config = comparison.cell(model, data)
            seconds = config.stat(COST[0]) if config else None
            params = config.stat(COST[1]) if config else None
            cell = f"{seconds.mean:.1f} s" if seconds else ""
            cells.append(cell + (f" · {params.mean:,.0f}" if params else ""))
        if any(cells):
            body.append([model, *cells])
    if not body:
        return []
    return [
        "",
        "## Cost by model and data set",
        "",
        f"Mean `{COST[0]}` over seeds · `{COST[1]}` (the model's trained numbers; a Gaussian "
        "mixture fitted by EM counts its free parameters).",
        "",
        *markdown_table(["model", *comparison.datasets], body),
    ]


def _score_cell(comparison: Comparison, model: str, data: str, metric: str) -> str:
    config = comparison.cell(model, data)
    if config is None:
        return ""
    stat = config.stat(metric)
    text = "—" if stat is None else str(stat)
    if stat is not None and model in comparison.best(data):
        text = f"**{text}**"
    notes = [
        f"{n} {what}"
        for n, what in [(config.n_failed, "failed"), (config.n_running, "running")]
        if n
    ]
    return text + (f" ({', '.join(notes)})" if notes else "")


def _paired(comparison: Comparison) -> list[str]:
    body = [
        [data, comparison.score(data), a, b, diff.n, diff]
        for data in comparison.datasets
        for a, b, diff in comparison.pairs(data)
    ]
    if not body:
        return []
    return [
        "",
        "## Paired differences",
        "",
        "A − B: the per-seed difference of the two models' scores over the seeds both completed "
        "(a seed fixes the splits, so both are scored on the same test points), mean ± se.",
        "",
        *markdown_table(["data", "metric", "A", "B", "n_seeds", "A − B"], body),
    ]


def _settings(settings: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


def write_comparison(
    runs: Iterable[Run], out_dir: str | Path, sources: Sequence[str | Path]
) -> Comparison:
    """Write comparison.csv and comparison.md into `out_dir`; returns the comparison."""
    comparison = compare(runs)
    out_dir = Path(out_dir)
    atomic_write(out_dir / CSV, to_csv(csv_rows(comparison)))
    atomic_write(out_dir / MARKDOWN, to_markdown(comparison, sources))
    return comparison


def to_csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def markdown_table(header: Sequence[str], body: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(map(_md, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(_md, row)) + " |" for row in body]
    return lines


def _md(value: Any) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")
