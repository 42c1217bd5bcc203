"""RealNVP: a base N(0, I) + a chain of affine coupling layers, in any dimension D ≥ 2.

Every transform maps data-side → base-side in `forward` and back in `inverse`, each returning
`(outputs, logabsdet)` with logabsdet = log |det ∂outputs/∂inputs| per example, so
log p(x) = log N(f(x); 0, I) + Σ_layers logabsdet.

A coupling layer keeps the masked coordinates x_A and maps the others by
y_B = x_B ⊙ exp(s(x_A)) + t(x_A). Its Jacobian is triangular (after permuting A first) with
diagonal (1, …, 1, exp(s)), so log |det J| = Σ_B s(x_A): the sum of the log-scales themselves,
not the source notes' 1ᵀ exp(s). s is bounded, s = b·tanh(raw/b), so one layer cannot blow up.

Which coordinates a coupling keeps (`permutation`): `alternate` flips between the even and the
odd coordinates; `reverse` and `random` keep the first ⌊D/2⌋ in every coupling and permute the
coordinates between couplings, reversing them or by a seeded random permutation per layer.
A permutation has log |det| = 0 (`Permutation`). With `reverse` and an odd D the middle
coordinate is transformed in every layer and never conditions another one.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

from src.utils import weighted
from src.utils.constraints import Constraint, Integer, OneOf, Real

PERMUTATIONS = ("alternate", "reverse", "random")


class Standardize(nn.Module):
    """x ↦ (x − m)/σ with the training data's mean and std, set once by `init_from_data`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("log_scale", torch.zeros(dim))

    @torch.no_grad()
    def fit(self, x: Tensor, weights: Tensor | None = None) -> None:
        """m and σ of the data (with `weights`, of their weighted distribution), per coordinate
        (σ at least 1e-6)."""
        mean, std = (x.mean(0), x.std(0)) if weights is None else weighted.moments(x, weights)
        self.shift.copy_(mean)
        self.log_scale.copy_(std.clamp_min(1e-6).log())

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = (x - self.shift) * (-self.log_scale).exp()
        return y, (-self.log_scale.sum()).expand(len(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        x = y * self.log_scale.exp() + self.shift
        return x, self.log_scale.sum().expand(len(y))


class Permutation(nn.Module):
    """y = P_σ x, i.e. y_i = x_{σ(i)}, with P_σ = [e_σ(1) … e_σ(D)]ᵀ (the source notes' Problems
    3 to 5). P_σᵀP_σ = Σ_i e_σ(i) e_σ(i)ᵀ = I, so |det P_σ|² = det(P_σᵀP_σ) = 1 and
    logabsdet = 0; the inverse is P_σᵀ = P_{σ⁻¹}, σ⁻¹ = argsort σ."""

    def __init__(self, perm: Tensor) -> None:
        super().__init__()
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], x.new_zeros(len(x))

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y[:, self.inverse_perm], y.new_zeros(len(y))


class AffineCoupling(nn.Module):
    """Keeps x where `mask` is 1, scales and shifts the rest by an MLP of the kept part."""

    def __init__(self, mask: Tensor, hidden: int, n_hidden: int, scale_bound: float) -> None:
        super().__init__()
        self.register_buffer("mask", mask)
        self.scale_bound = scale_bound
        dim, layers = len(mask), []
        for width_in in [dim] + [hidden] * (n_hidden - 1):
            layers += [nn.Linear(width_in, hidden), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(hidden, 2 * dim))
        nn.init.zeros_(self.net[-1].weight)  # every layer starts as the identity
        nn.init.zeros_(self.net[-1].bias)

    def _scale_shift(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.net(kept).chunk(2, dim=-1)
        free = 1 - self.mask
        s = self.scale_bound * torch.tanh(raw_s / self.scale_bound)
        return s * free, t * free

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        kept = x * self.mask
        s, t = self._scale_shift(kept)
        return kept + (1 - self.mask) * (x * s.exp() + t), s.sum(-1)

    def inverse(self, y: Tensor) -> tuple[Tensor, Tensor]:
        kept = y * self.mask
        s, t = self._scale_shift(kept)
        return kept + (1 - self.mask) * ((y - t) * (-s).exp()), -s.sum(-1)


class RealNVP(nn.Module):
    support = "continuous"
    constraints: ClassVar[dict[str, Constraint]] = {
        "dim": Integer(low=2),  # a coupling needs two parts
        "n_layers": Integer(low=1),
        "hidden": Integer(low=1),
        "n_hidden": Integer(low=1),
        "scale_bound": Real(low=0, low_open=True),
        "permutation": OneOf(*PERMUTATIONS),
        "permutation_seed": Integer(low=0, high=2**63 - 1),
    }

    def __init__(
        self,
        dim: int = 2,
        n_layers: int = 8,
        hidden: int = 64,
        n_hidden: int = 2,
        scale_bound: float = 3.0,
        permutation: str = "alternate",
        permutation_seed: int = 0,
    ) -> None:
        super().__init__()
        bound, seed = float(scale_bound), permutation_seed
        self.event_shape = torch.Size([dim])
        parity, order = torch.arange(dim) % 2, torch.arange(dim)
        first_half = (order < dim // 2).float()
        generator = torch.Generator().manual_seed(seed)  # leaves the run's random stream alone
        self.transforms = nn.ModuleList([Standardize(dim)])
        for layer in range(n_layers):
            if permutation == "alternate":  # each coordinate moves every 2 layers
                mask = (parity == layer % 2).float()
            else:
                mask = first_half
                if layer > 0:
                    reverse = permutation == "reverse"
                    perm = order.flip(0) if reverse else torch.randperm(dim, generator=generator)
                    self.transforms.append(Permutation(perm))
            self.transforms.append(AffineCoupling(mask, hidden, n_hidden, bound))

    def init_from_data(self, x: Tensor, weights: Tensor | None = None) -> None:
        """Standardise the data first, so any location and scale trains alike."""
        self.transforms[0].fit(x, weights)

    def base(self) -> Independent:
        zero = self.transforms[0].shift
        return Independent(Normal(zero, torch.ones_like(zero), validate_args=False), 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x ↦ z = f(x) and log |det ∂f/∂x|."""
        logabsdet = x.new_zeros(len(x))
        for transform in self.transforms:
            x, step = transform(x)
            logabsdet = logabsdet + step
        return x, logabsdet

    def inverse(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """z ↦ x = f⁻¹(z) and log |det ∂f⁻¹/∂z|."""
        logabsdet = z.new_zeros(len(z))
        for transform in reversed(self.transforms):
            z, step = transform.inverse(z)
            logabsdet = logabsdet + step
        return z, logabsdet

    def log_prob(self, x: Tensor) -> Tensor:
        z, logabsdet = self(x)
        return self.base().log_prob(z) + logabsdet

    @torch.no_grad()
    def sample(self, n: int) -> Tensor:
        return self.inverse(self.base().sample((n,)))[0]
