"""A Hydra callback: an Optuna search space is checked before the study starts, so one that
cannot be sampled (`interval(0.2, 0.005)`, `interval(-1, 1)` on a log scale, a choice of lists)
stops in one line naming the parameter, exit code 2, instead of a traceback from inside the
sweeper.

Each parameter is parsed by Hydra's public override parser and turned into the Optuna
distribution the sweeper builds from it (hydra-optuna-sweeper's reading of Hydra's sweep syntax:
a choice or shuffled range is categorical, a range is a stepped int or float distribution, an
interval a uniform one, log-uniform when tagged `log`); Optuna's own distributions then refuse
what cannot be sampled.
"""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

SCALARS = (str, int, float, bool, type(None))


class SearchSpaceCheck(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        if "optuna" not in str(sweeper.get("_target_", "")).lower():
            return
        for key, value in (sweeper.get("params") or {}).items():
            try:
                optuna_distribution(f"{key}={value}")
            except Exception as error:  # Hydra's parser or Optuna's distributions
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                print(
                    f"error: hydra.sweeper.params.{key}={value} cannot be sampled: {reason}",
                    file=sys.stderr,
                    flush=True,
                )
                sys.exit(2)


def optuna_distribution(override: str) -> Any:
    """The Optuna distribution of one `key=sweep` parameter (its value when it is no sweep)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep, RangeSweep, Transformer
    from optuna import distributions

    (parsed,) = OverridesParser.create().parse_overrides([override])
    if not parsed.is_sweep_override():
        return parsed.get_value_element_as_str()
    sweep = parsed.value()
    shuffled_range = isinstance(sweep, RangeSweep) and sweep.shuffle
    if parsed.is_choice_sweep() or shuffled_range:
        choices = list(parsed.sweep_iterator(transformer=Transformer.encode))
        for choice in choices:
            if not isinstance(choice, SCALARS):
                raise ValueError(
                    f"a choice must be of scalars (str, int, float, bool, null): {choice}"
                )
        return distributions.CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        if any(isinstance(v, float) for v in (sweep.start, sweep.stop, sweep.step)):
            return distributions.DiscreteUniformDistribution(sweep.start, sweep.stop, sweep.step)
        return distributions.IntUniformDistribution(
            int(sweep.start), int(sweep.stop), step=int(sweep.step)
        )
    if isinstance(sweep, IntervalSweep):
        ints = isinstance(sweep.start, int) and isinstance(sweep.end, int)
        if "log" in sweep.tags:
            if ints:
                return distributions.IntLogUniformDistribution(sweep.start, sweep.end)
            return distributions.LogUniformDistribution(sweep.start, sweep.end)
        if ints:
            return distributions.IntUniformDistribution(sweep.start, sweep.end)
        return distributions.UniformDistribution(sweep.start, sweep.end)
    raise ValueError(f"{type(sweep).__name__} is not supported by the Optuna sweeper")
