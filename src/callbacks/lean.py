"""Lightning calls each per-step hook of every callback on every step, whether the callback
overrides it or not, each call inside a profiler context named by the callback's state key
(ModelCheckpoint builds that string from its settings every time): with five to seven callbacks
and six hooks a step, that was 0.1–0.2 ms a step, as much as a fifth of a flow1d step.
Lightning skips a hook that is not callable, so a hook a callback leaves as the base class's
no-op is set to None on the instance; so are the per-step checks that return at once in this
run: Timer's without a duration, ModelCheckpoint's without `every_n_train_steps` or
`train_time_interval`."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, Timer
from pytorch_lightning.profilers import PassThroughProfiler

PER_STEP_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def skip_no_op_hooks(callbacks: Iterable[pl.Callback]) -> None:
    for callback in callbacks:
        for hook in PER_STEP_HOOKS:
            if getattr(type(callback), hook, None) is getattr(pl.Callback, hook):
                setattr(callback, hook, None)
        if isinstance(callback, Timer) and getattr(callback, "_duration", 0) is None:
            callback.on_train_batch_end = None
        if (
            isinstance(callback, ModelCheckpoint)
            and callback._every_n_train_steps < 1
            and callback._train_time_interval is None
        ):
            callback.on_train_batch_end = None


class NoProfiler(PassThroughProfiler):
    """Lightning's default profiler when none is configured, minus its cost: it wraps each of
    the ~23 hook calls a step in a generator-based context manager that does nothing; this one
    hands out one shared empty context instead."""

    _nothing = nullcontext()

    def profile(self, action_name: str) -> AbstractContextManager:
        return self._nothing
