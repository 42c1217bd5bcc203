"""Stepwise (online) EM for a Gaussian mixture (`fit=online_em`, `model=gmm`; Cappé & Moulines
2009): an M-step after every mini-batch, from running sufficient statistics.

Why it works. The complete-data log-likelihood of a mixture is linear in the statistics
S(x, z) = (1[z=k], 1[z=k] y, 1[z=k] y yᵀ)_k of y = x − shift, and the M-step θ̄(s)
(`from_statistics`) maximises it given their values s. Batch EM is the fixed-point iteration

    s_{k+1} = S̄(θ̄(s_k)),    S̄(θ) = Σ_{n ≤ N} E_θ[S(x_n, z) | x_n]      (the E-step, summed),

and its fixed points are the stationary points of the log-likelihood. Stepwise EM looks for a
root of h(s) = S̄(θ̄(s)) − s by Robbins–Monro: a mini-batch b of B points gives
ŝ = (N/B) Σ_{n∈b} E_θ̄(s)[S(x_n, z) | x_n], an unbiased estimate of S̄(θ̄(s)) when b is drawn
uniformly, so

    s_t = s_{t−1} + ρ_t (ŝ_t − s_{t−1}) = (1 − ρ_t) s_{t−1} + ρ_t ŝ_t

is a stochastic-approximation step along h with noise ŝ_t − S̄(θ̄(s_{t−1})) of mean zero.
Robbins–Monro converges (to a stable root, i.e. a local maximum of the likelihood) when
Σ_t ρ_t = ∞ (the steps can travel any distance) and Σ_t ρ_t² < ∞ (the noise they add has
finite total variance); for ρ_t = (t + t₀)^(−κ) that is κ ≤ 1 and 2κ > 1: κ ∈ (0.5, 1]. Scaling
by N/B keeps s on the scale of a full E-step, so θ̄(s) is an ordinary M-step (π_k = N_k / N)
and s_0 can be the statistics of the initial parameters (`initial_running`: the inverse of the
M-step). Within a pass the batches are drawn without replacement (a shuffled epoch): ŝ is then
unbiased for each batch given the pass's order, which is what the implementations and
Cappé–Moulines' experiments use.

What holds exactly (tests/test_online_fits.py), with full batches (B = N, ŝ_t = S̄(θ_{t−1})):
- any κ with t₀ = 0: ρ_1 = 1, so the first update is batch EM's first step, bit for bit;
- ρ ≡ 1 (outside the settings: a test overrides `step_size`): every update is batch EM's;
- κ = 1, t₀ = 0: ρ_t = 1/t and, by induction, s_t = (1/t) Σ_{i≤t} S̄(θ_{i−1}): the running
  statistics are the mean of the full E-steps of all past iterates. That is not batch EM after
  the first step (it is slower: old statistics are forgotten only as 1/t), but it has the same
  fixed points: started at one, every iterate stays there.

The objective of an update is the batch's log-likelihood per point *before* it (as EM logs);
`train/nll` per pass is their mean over the pass (see `src/fits/online.py`), an estimate from
moving parameters; `train/bic` and `train/aic` are those of the final parameters, measured at
test by a pass over the training split as for batch EM (`EMFit.extra_test_metrics`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.fits.em import EMFit
from src.fits.online import OnlineFit

STATISTICS = ("counts", "first", "second")


class OnlineEMFit(OnlineFit, EMFit):
    def initial_running(self) -> dict[str, Tensor]:
        """N × the statistics per point that the current (π, μ, Σ) imply, so that
        `from_statistics` returns them: N_k = N π_k, Σ_n r y = N_k m_k and
        Σ_n r y yᵀ = N_k (Σ_k − reg_covar I + m_k m_kᵀ), with m_k = μ_k − shift."""
        model = self.model
        weights = model.logits.detach().softmax(-1).double()
        m = (model.loc.detach() - self.shift.to(model.loc)).double()
        cov = model.covariance().detach().double()
        eye = torch.eye(m.shape[1], dtype=m.dtype, device=m.device)
        counts = self.n_train * weights
        second = counts.view(-1, 1, 1) * (cov - model.reg_covar * eye + m[:, :, None] * m[:, None])
        return {"counts": counts, "first": counts[:, None] * m, "second": second}

    def online_update(self, scaled: dict[str, Tensor], rho: float) -> Tensor:
        target = {k: scaled[k] for k in STATISTICS}
        self.state["running"] = running = self.blend(self.state["running"], target, rho)
        stats = running | {"log_likelihood": scaled["log_likelihood"], "n": scaled["n"]}
        return self.update({k: v.to(self.compute_dtype) for k, v in stats.items()})
