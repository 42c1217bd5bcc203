"""The softmax's vector-Jacobian product, written by hand and shared by every hand-written backward.

For y = softmax(z), i.e. y_i = e^{z_i} / r with r = Σ_j e^{z_j}, a cotangent ȳ flows back as
    r̄ = Σ_i ȳ_i ∂y_i/∂r = −Σ_i ȳ_i e^{z_i} / r²,
    z̄_j = ȳ_j ∂y_j/∂z_j|_r + r̄ ∂r/∂z_j = ȳ_j y_j + r̄ e^{z_j}.
Since r̄ e^{z_j} = −(Σ_i ȳ_i y_i) · y_j, the result needs only y and the products y ⊙ ȳ:
    z̄ = y ⊙ ȳ − y · Σ_i (y ⊙ ȳ)_i,
so neither e^z nor r is ever formed and logits of ±1e4 neither overflow nor give 0 · ∞.
Callers whose ȳ would be huge where y is tiny (ȳ = ∂L/∂π of a mixture divides by π) pass the
products y ⊙ ȳ directly (`softmax_vjp_from_products`), which stay finite.
"""

from __future__ import annotations

import torch
from torch import Tensor


def softmax_vjp_from_products(y: Tensor, y_times_y_bar: Tensor, dim: int = -1) -> Tensor:
    """z̄ given y = softmax(z) and the products y ⊙ ȳ."""
    return y_times_y_bar - y * y_times_y_bar.sum(dim, keepdim=True)


def softmax_vjp(y: Tensor, y_bar: Tensor, dim: int = -1) -> Tensor:
    """z̄ given y = softmax(z) and the cotangent ȳ."""
    return softmax_vjp_from_products(y, y * y_bar, dim)


class Softmax(torch.autograd.Function):
    """softmax(z) along `dim` with the hand-written backward above."""

    @staticmethod
    def forward(ctx, z: Tensor, dim: int = -1) -> Tensor:
        y = torch.softmax(z, dim)  # max-shifted, so ±1e4 logits do not overflow
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, y_bar: Tensor) -> tuple[Tensor, None]:
        (y,) = ctx.saved_tensors
        return softmax_vjp(y, y_bar, ctx.dim), None


def softmax(z: Tensor, dim: int = -1) -> Tensor:
    return Softmax.apply(z, dim)
