"""Property tests: every model's log_prob and its gradients stay finite at extreme inputs and
parameters, and float32 agrees with a float64 reference where the values allow it."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from src.models.dmol import DiscretizedLogisticMixture
from src.models.flow1d import MixtureCDFFlow1d
from src.models.gmm import GaussianMixture
from src.models.histogram import Histogram
from src.models.realnvp import RealNVP

EXAMPLES = settings(max_examples=25, deadline=None)
LOG_SCALE = st.floats(math.log(1e-6), math.log(1e6))  # scales from 1e-6 to 1e6
X_CONT = st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8)


def finite_with_gradients(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.zero_grad()
    log_p = model.log_prob(x)
    log_p.sum().backward()
    assert torch.isfinite(log_p).all(), log_p
    for name, param in model.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), name
    return log_p.detach()


@EXAMPLES
@given(
    x=X_CONT,
    log_scales=st.lists(LOG_SCALE, min_size=3, max_size=3),
    logits=st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3),
    collapse=st.booleans(),
)
def test_flow1d(x, log_scales, logits, collapse):
    flow = MixtureCDFFlow1d(n_components=3)
    with torch.no_grad():
        flow.loc.copy_(torch.zeros(3) if collapse else torch.tensor([-5.0, 0.0, 5.0]))
        flow.log_scale.copy_(torch.tensor(log_scales))
        flow.weight_logits.copy_(torch.tensor(logits))
    log_p = finite_with_gradients(flow, torch.tensor(x))
    reference = flow.double().log_prob(torch.tensor(x, dtype=torch.float64)).detach()
    torch.testing.assert_close(log_p.double(), reference, rtol=1e-4, atol=1e-3)


@EXAMPLES
@given(logits=st.lists(st.floats(-1e4, 1e4), min_size=5, max_size=5), analytic=st.booleans())
def test_histogram_at_edge_bins(logits, analytic):
    model = Histogram(d=5, analytic_grad=analytic)
    with torch.no_grad():
        model.logits.copy_(torch.tensor(logits))
    x = torch.tensor([0, 4, 0, 2, 4])
    log_p = model.log_prob(x)
    log_p.sum().backward()
    assert torch.isfinite(model.logits.grad).all()
    reference = torch.log_softmax(torch.tensor(logits, dtype=torch.float64), 0)[x]
    finite = torch.isfinite(reference)  # a bin of mass exp(-2e4) is -inf even in float64
    torch.testing.assert_close(log_p.double()[finite], reference[finite], rtol=1e-5, atol=1e-3)


@EXAMPLES
@given(
    locs=st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=2),
    log_scales=st.lists(LOG_SCALE, min_size=2, max_size=2),
    logits=st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=2),
    analytic=st.booleans(),
)
def test_dmol_at_every_bin(locs, log_scales, logits, analytic):
    model = DiscretizedLogisticMixture(d=20, n_components=2, analytic_grad=analytic)
    with torch.no_grad():
        model.loc.copy_(torch.tensor(locs))
        model.log_scale.copy_(torch.tensor(log_scales))
        model.logits.copy_(torch.tensor(logits))
    finite_with_gradients(model, torch.arange(20))


@EXAMPLES
@given(
    x=st.lists(st.floats(-1e6, 1e6), min_size=4, max_size=4),
    raw=LOG_SCALE,
    collapse=st.booleans(),
    diag=st.booleans(),
)
def test_gmm(x, raw, collapse, diag):
    model = GaussianMixture(n_components=2, dim=2, covariance_type="diag" if diag else "full")
    with torch.no_grad():
        model.loc.copy_(torch.zeros(2, 2) if collapse else torch.tensor([[-3.0, 0.0], [3.0, 1.0]]))
        model.raw_diag.fill_(raw)
    points = torch.tensor(x).view(2, 2)
    log_p = finite_with_gradients(model, points)
    reference = model.double().log_prob(points.double()).detach()
    torch.testing.assert_close(log_p.double(), reference, rtol=1e-4, atol=1e-3)


@EXAMPLES
@given(
    x=st.lists(st.floats(-1e6, 1e6), min_size=6, max_size=6),
    weight_scale=st.floats(0.1, 3.0),
)
def test_realnvp(x, weight_scale):
    """Couplings with random weights: a fresh flow's couplings start as identities, which would
    test nothing but a Normal's log_prob."""
    torch.manual_seed(0)
    model = RealNVP(dim=2, n_layers=4, hidden=16, n_hidden=1)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, weight_scale)
    points = torch.tensor(x).view(3, 2)
    log_p = finite_with_gradients(model, points)
    z, _ = model(points)
    assert (z - points).abs().max() > 1e-3  # the couplings do move these points
    reference = model.double().log_prob(points.double()).detach()
    torch.testing.assert_close(log_p.double(), reference, rtol=1e-3, atol=1e-2)
