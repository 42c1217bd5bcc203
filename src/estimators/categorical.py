"""Gradient estimators for L(θ) = E_{z~Cat(softmax θ)}[f(z)], a categorical objective whose
exact gradient is known by enumerating the K categories.

Notation: p = softmax θ, f_k = f(e_k) the objective at the k-th one-hot vertex.
- exact:            L = Σ_k p_k f_k and ∂p_j/∂θ_i = p_j(δ_ij − p_i), so
                    ∂L/∂θ_i = Σ_j f_j p_j(δ_ij − p_i) = p_i (f_i − Σ_j p_j f_j).
- score:            ∇θ log p_z = e_z − p, so f(z)(e_z − p) is unbiased (E[e_z − p] = 0);
- score_baseline:   (f(z_i) − b_i)(e_{z_i} − p) with b_i the leave-one-out mean, independent of
                    z_i, hence still unbiased;
- gumbel (τ):       y = softmax((θ + g)/τ), g ~ Gumbel(0, 1); ∇θ f(y) is the gradient of the
                    relaxed objective E[f(y)], not of L: biased, by an amount that vanishes as
                    τ → 0 (y → e_{argmax(θ+g)}, an exact sample), while ∂y/∂θ ∝ 1/τ makes the
                    variance grow;
- straight_through: the forward value is the exact one-hot e_{argmax(θ+g)} (so the loss is the
                    plain MC estimate of L) and the gradient is that of the relaxed sample,
                    ∇f(e_z)·∂y/∂θ: biased at every τ, since ∇f at a vertex is not a difference
                    of f between vertices.
Each surrogate's gradient is the estimator; batched logits (..., K) give one independent
estimate per batch member (`src.estimators.gradients.gradient_samples`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from src.errors import ConfigError
from src.estimators.gradients import leave_one_out_mean
from src.estimators.samplers import gumbel_softmax

KINDS = ("exact", "score", "score_baseline", "gumbel", "straight_through")


class QuadraticReadout:
    """f(y) = (y·c − t)²: on a one-hot e_k it is (c_k − t)², on a relaxed y it reads the
    convex combination y·c, so the relaxation can reach f = 0 where no category does."""

    def __init__(self, c: Sequence[float], t: float) -> None:
        self.c = torch.tensor([float(v) for v in c], dtype=torch.float64)
        self.t = float(t)

    def __call__(self, y: Tensor) -> Tensor:
        return (y @ self.c.to(y) - self.t) ** 2

    def vertex_values(self) -> Tensor:
        """f_k = f(e_k) = (c_k − t)², shape (K,)."""
        return (self.c - self.t) ** 2


def enumerated_loss(logits: Tensor, f_values: Tensor) -> Tensor:
    """L(θ) = Σ_k softmax(θ)_k f_k over the last dimension."""
    return (torch.softmax(logits, -1) * f_values.to(logits)).sum(-1)


def exact_gradient(logits: Tensor, f_values: Tensor) -> Tensor:
    """∂L/∂θ_i = p_i (f_i − Σ_j p_j f_j) (module docstring)."""
    p = torch.softmax(logits, -1)
    f_values = f_values.to(logits)
    return p * (f_values - (p * f_values).sum(-1, keepdim=True))


def surrogate(
    logits: Tensor,
    f: QuadraticReadout,
    n_samples: int,
    kind: str,
    temperature: float = 1.0,
) -> Tensor:
    """Per batch member of `logits` (..., K): a loss whose gradient is the `kind` estimator's
    average over `n_samples` draws (value: the MC objective, relaxed for `gumbel`)."""
    if kind == "exact":
        return enumerated_loss(logits, f.vertex_values())
    if kind in ("gumbel", "straight_through"):
        y = gumbel_softmax(logits, n_samples, temperature, hard=kind == "straight_through")
        return f(y).mean(0)
    if kind not in ("score", "score_baseline"):
        raise ConfigError("estimator", kind, "one of " + ", ".join(KINDS))
    z = torch.distributions.Categorical(logits=logits).sample((n_samples,))
    one_hot = F.one_hot(z, logits.shape[-1]).to(logits)
    fz = f(one_hot)
    log_p = (one_hot * torch.log_softmax(logits, -1)).sum(-1)
    weight = fz - leave_one_out_mean(fz) if kind == "score_baseline" else fz
    return (fz + weight * (log_p - log_p.detach())).mean(0)


def bias_and_variance(grads: Tensor, exact: Tensor) -> dict[str, Tensor]:
    """From R independent estimates (R, K) of a gradient whose true value is `exact` (K,):

    - bias:     ‖ḡ − ∇L‖, the norm of the mean estimate's error;
    - bias_se:  √(Σ_k Var_k / R), the root mean square of ‖ḡ − E ḡ‖: the error norm noise alone
                gives, so a bias is resolved only when it exceeds a few of these;
    - variance: (1/K) Σ_k Var_k, the mean per-component variance of one estimate.
    """
    var = grads.var(0)
    return {
        "bias": torch.linalg.vector_norm(grads.mean(0) - exact),
        "bias_se": (var.sum() / len(grads)).sqrt(),
        "variance": var.mean(),
    }


def estimator_names(
    temperatures: Sequence[float], straight_through_temperature: float
) -> dict[str, tuple[str, float]]:
    """Display name → (kind, τ): exact, score, score_baseline, gumbel_t<τ>, straight_through
    (τ is NaN where the estimator has none)."""
    names = {kind: (kind, math.nan) for kind in ("exact", "score", "score_baseline")}
    names |= {f"gumbel_t{tau:g}": ("gumbel", float(tau)) for tau in temperatures}
    names["straight_through"] = ("straight_through", float(straight_through_temperature))
    return names
