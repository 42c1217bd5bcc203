"""Histogram tests written to kill the survivors of `make mutation MODULE=histogram`: each checks
against a reference that does not share the code under test (hand-computed add-α masses, a
finite-difference gradient, the config file's defaults)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from src.errors import ConfigError
from src.models.histogram import Histogram, closed_form_probs
from src.utils.constraints import make
from tests.conftest import ROOT

D64 = torch.float64


def test_add_alpha_closed_form_by_hand():
    """x = (0, 0, 1), d = 3, α = 1: counts + α = (3, 2, 1) over N + dα = 6 (a softmax test can't
    see the denominator: log-probabilities off by a constant give the same softmax)."""
    x = torch.tensor([0, 0, 1])
    expected = torch.tensor([3.0, 2.0, 1.0], dtype=D64) / 6
    torch.testing.assert_close(closed_form_probs(x, 3, 1.0), expected)
    torch.testing.assert_close(closed_form_probs(x, 3), torch.tensor([2, 1, 0], dtype=D64) / 3)
    torch.testing.assert_close(
        closed_form_probs(x, 4, 0.5), torch.tensor([2.5, 1.5, 0.5, 0.5], dtype=D64) / 5
    )


def _penalised_objective(logits: torch.Tensor, x: torch.Tensor, alpha: float, n: float):
    """−mean log p(x) − (α/N) Σ_k log p_k, written from the docstring's formula."""
    log_p = logits - logits.logsumexp(-1)
    return -log_p[x].mean() - alpha / n * log_p.sum()


@pytest.mark.parametrize("analytic", [True, False])
@pytest.mark.parametrize(("n_rows", "weights"), [(12, None), (1, None), (3, [0.5, 2.0, 4.5])])
def test_prior_uses_the_train_set_size_on_a_mini_batch(analytic, n_rows, weights):
    """The prior's weight is α/N with N the recorded train size (Σ w with weights; N = 1 is
    still recorded), not the batch size: checked against finite differences of the penalised
    objective on a batch of another size."""
    alpha, d = 1.5, 4
    train_x = torch.arange(n_rows) % d
    w = None if weights is None else torch.tensor(weights, dtype=D64)
    n = float(n_rows if w is None else w.sum())
    model = Histogram(d, analytic_grad=analytic, smoothing=alpha).double()
    model.init_from_data(train_x, w)
    assert float(model.n_train) == n
    logits = torch.tensor([0.3, -0.2, 1.0, 0.1], dtype=D64)
    model.logits.data.copy_(logits)
    batch = torch.tensor([2, 0, 2, 3, 3])
    (-model.log_prob(batch).mean()).backward()
    eps, fd = 1e-6, torch.zeros(d, dtype=D64)
    for k in range(d):
        step = torch.zeros(d, dtype=D64)
        step[k] = eps
        up = _penalised_objective(logits + step, batch, alpha, n)
        down = _penalised_objective(logits - step, batch, alpha, n)
        fd[k] = (up - down) / (2 * eps)
    torch.testing.assert_close(model.logits.grad, fd, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("analytic", [True, False])
def test_an_empty_bin_at_minus_infinity_stays_finite_without_smoothing(analytic):
    """The MLE puts −inf on an empty bin; with α = 0 the observed points' log-mass and gradient
    stay finite (no 0·(−inf) from the absent prior)."""
    x = torch.tensor([0, 0, 2])
    model = Histogram(3, analytic_grad=analytic).double()
    model.init_from_data(x)
    model.logits.data.copy_(closed_form_probs(x, 3).log())  # (log 2/3, −inf, log 1/3)
    log_prob = model.log_prob(x)
    torch.testing.assert_close(log_prob, torch.tensor([2 / 3, 2 / 3, 1 / 3], dtype=D64).log())
    (-log_prob.mean()).backward()
    assert torch.isfinite(model.logits.grad).all()


def test_defaults_are_the_configs():
    """`Histogram()` without Hydra is the config's model: autograd backward, no smoothing, and the
    20 bins of hw1_d20 (the config takes d from the data set)."""
    conf = OmegaConf.load(ROOT / "conf/model/histogram.yaml")
    data = OmegaConf.load(ROOT / "conf/data/hw1_d20.yaml")
    model = Histogram()
    assert model.analytic_grad is conf.analytic_grad and model.smoothing == conf.smoothing
    assert model.d == data.n_bins == 20 and model.logits.shape == (20,)


@pytest.mark.parametrize("alpha", [0.0, 1e-9, 0.5, 3])
def test_every_smoothing_from_zero_up_is_accepted(alpha):
    assert make(Histogram, smoothing=alpha).smoothing == alpha


@pytest.mark.parametrize("alpha", [-1e-9, -0.5, float("inf"), float("nan")])
def test_negative_or_non_finite_smoothing_is_refused(alpha):
    with pytest.raises(ConfigError, match="smoothing="):
        make(Histogram, smoothing=alpha)


def _backward_nodes(tensor: torch.Tensor) -> set[str]:
    """Names of every autograd node behind `tensor`."""
    names, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None:
            names.add(type(node).__name__)
            stack.extend(next_node for next_node, _ in node.next_functions)
    return names


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_analytic_grad_chooses_the_hand_derived_backward(smoothing):
    """Both backwards give the same gradient (tested above), so only the graph tells which one
    runs: `analytic_grad=True` goes through HistogramLogProb, False never does."""
    x = torch.tensor([0, 2, 2])
    for analytic in (True, False):
        out = Histogram(3, analytic_grad=analytic, smoothing=smoothing).log_prob(x)
        assert ("HistogramLogProbBackward" in _backward_nodes(out)) is analytic
