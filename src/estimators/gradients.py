"""Surrogate losses for ∇θ E_{x~q_θ}[f(x)]: score function, score with baseline, reparameterization.

Each surrogate's *value* is the plain Monte Carlo estimate (1/n)Σ f(x_i); its *gradient* is the
chosen estimator, so one backward pass gives the estimate and the loss stays readable:
- score:          (1/n)Σ f(x_i) ∇θ log q_θ(x_i), unbiased since E_q[∇θ log q_θ] = 0;
- score_baseline: (1/n)Σ (f(x_i) − b_i) ∇θ log q_θ(x_i), still unbiased when b_i is independent
  of x_i: the leave-one-out mean of the other samples, or a running mean from earlier steps;
- reparam:        (1/n)Σ ∇θ f(T(ε_i, θ)), needs q.rsample and a differentiable f.
Batched distributions (batch shape R) give R independent estimates at once (`gradient_samples`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.distributions import Distribution

ESTIMATORS = ("score", "score_baseline", "reparam")
BASELINES = ("leave_one_out", "running_mean")


def surrogate(
    q: Distribution,
    f: Callable[[Tensor], Tensor],
    n_samples: int,
    estimator: str,
    baseline: Tensor | None = None,
) -> Tensor:
    """Per batch member of q: value = MC estimate of E_q[f], gradient = the estimator's.

    For score_baseline, `baseline=None` means leave-one-out (needs n_samples >= 2).
    """
    if estimator == "reparam":
        return f(q.rsample((n_samples,))).mean(0)
    x = q.sample((n_samples,))
    fx = f(x)
    log_q = q.log_prob(x)
    weight = fx
    if estimator == "score_baseline":
        weight = fx - (leave_one_out_mean(fx) if baseline is None else baseline)
    return (fx + weight * (log_q - log_q.detach())).mean(0)


def leave_one_out_mean(values: Tensor) -> Tensor:
    """b_i = mean of the other n − 1 values along dim 0 (independent of sample i)."""
    return (values.sum(0, keepdim=True) - values) / (len(values) - 1)


def gradient_samples(
    loss: Callable[[dict[str, Tensor]], Tensor], params: dict[str, Tensor], repeats: int
) -> dict[str, Tensor]:
    """`repeats` independent gradient estimates at `params`, one autograd pass.

    `loss` maps parameters with a leading repeat dimension to R independent losses; each copy
    of the parameters only touches its own loss, so ∇ of the sum is the per-repeat gradient.
    """
    copies = {
        k: v.detach().expand(repeats, *v.shape).clone().requires_grad_() for k, v in params.items()
    }
    grads = torch.autograd.grad(loss(copies).sum(), list(copies.values()))
    return dict(zip(copies, grads))


def gradient_variance(grads: dict[str, Tensor]) -> dict[str, Tensor]:
    """Unbiased variance over repeats of each gradient component, summed over its elements."""
    return {k: g.var(dim=0).sum() for k, g in grads.items()}
