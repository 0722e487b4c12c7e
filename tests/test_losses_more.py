"""The losses added at stop 24 (in ferrograd/nn/loss.py: hinge embedding through Gaussian
NLL) against NumPy transcriptions of PyTorch's documented formulas (float64), their
gradients against finite differences, the GPU against the CPU, and the classes' configs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck

F = nn.functional
R = np.random.default_rng(0)
X = R.standard_normal((4, 5))
Y = np.sign(R.standard_normal((4, 5)))
LAB = R.integers(0, 5, 4)
ML = (R.random((4, 5)) > 0.5).astype(np.float64)
W = R.random(5)
POS = R.random((4, 5)) + 0.1
CNT = R.integers(0, 5, (4, 5)).astype(np.float64)
VAR = R.random((4, 5)) + 0.01


def _softplus(v):
    return np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0)


def _logsig(v):
    return -_softplus(-v)


def _pdist(a, b, p, eps=1e-6):
    return (np.abs(a - b + eps) ** p).sum(-1) ** (1 / p)


def _multi_margin(x, y, p=1, margin=1.0, w=None):
    n, c = x.shape
    out = np.zeros(n)
    for i in range(n):
        for j in range(c):
            if j != y[i]:
                h = max(0.0, margin - x[i, y[i]] + x[i, j]) ** p
                out[i] += h * (w[y[i]] if w is not None else 1.0)
    return out / c


def _stirling(t):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 1, t * np.log(t) - t + 0.5 * np.log(2 * np.pi * t), 0.0)


CASES = [
    ("hinge", lambda: F.hinge_embedding_loss(fg.tensor(X), fg.tensor(Y), 0.5),
     np.where(Y == 1, X, np.maximum(0, 0.5 - X)).mean()),
    ("soft_margin", lambda: F.soft_margin_loss(fg.tensor(X), fg.tensor(Y)), _softplus(-Y * X).mean()),
    ("multilabel", lambda: F.multilabel_soft_margin_loss(fg.tensor(X), fg.tensor(ML), fg.tensor(W)),
     (-(ML * _logsig(X) + (1 - ML) * _logsig(-X)) * W).mean(1).mean()),
    ("multi_margin", lambda: F.multi_margin_loss(fg.tensor(X), fg.tensor(LAB)), _multi_margin(X, LAB).mean()),
    ("multi_margin_p2",
     lambda: F.multi_margin_loss(fg.tensor(X), fg.tensor(LAB), 2, 0.7, fg.tensor(W), "sum"),
     _multi_margin(X, LAB, 2, 0.7, W).sum()),
    ("triplet", lambda: F.triplet_margin_loss(fg.tensor(X), fg.tensor(POS), fg.tensor(VAR), 0.3),
     np.maximum(_pdist(X, POS, 2) - _pdist(X, VAR, 2) + 0.3, 0).mean()),
    ("triplet_swap",
     lambda: F.triplet_margin_loss(fg.tensor(X), fg.tensor(POS), fg.tensor(VAR), 1.0, 1, swap=True),
     np.maximum(_pdist(X, POS, 1) - np.minimum(_pdist(X, VAR, 1), _pdist(POS, VAR, 1)) + 1.0, 0).mean()),
    ("poisson", lambda: F.poisson_nll_loss(fg.tensor(X), fg.tensor(CNT)), (np.exp(X) - CNT * X).mean()),
    ("poisson_full", lambda: F.poisson_nll_loss(fg.tensor(POS), fg.tensor(CNT), False, True),
     (POS - CNT * np.log(POS + 1e-8) + _stirling(CNT)).mean()),
    ("gaussian", lambda: F.gaussian_nll_loss(fg.tensor(X), fg.tensor(POS), fg.tensor(VAR)),
     (0.5 * (np.log(VAR) + (X - POS) ** 2 / VAR)).mean()),
    ("gaussian_row_var",
     lambda: F.gaussian_nll_loss(fg.tensor(X), fg.tensor(POS), fg.tensor(VAR[:, 0]), True),
     (0.5 * (np.log(VAR[:, :1]) + (X - POS) ** 2 / VAR[:, :1]) + 0.5 * math.log(2 * math.pi)).mean()),
]  # fmt: skip


@pytest.mark.parametrize("name, call, want", CASES, ids=[c[0] for c in CASES])
def test_against_numpy(name, call, want):
    np.testing.assert_allclose(call().item(), want, rtol=1e-10)


def test_gradients():
    x = fg.tensor(X[:2, :3], requires_grad=True)
    p = fg.tensor(POS[:2, :3], requires_grad=True)
    v = fg.tensor(VAR[:2, :3], requires_grad=True)
    y = fg.tensor(Y[:2, :3])
    assert gradcheck(lambda a: F.soft_margin_loss(a, y), [x])
    assert gradcheck(lambda a: F.hinge_embedding_loss(a, y, 0.3), [x])
    assert gradcheck(lambda a: F.multilabel_soft_margin_loss(a, fg.tensor(ML[:2, :3])), [x])
    assert gradcheck(lambda a: F.multi_margin_loss(a, fg.tensor([0, 2]), 2), [x])
    assert gradcheck(lambda a, b, c: F.triplet_margin_loss(a, b, c, 2.0), [x, p, v])
    assert gradcheck(lambda a: F.poisson_nll_loss(a, fg.tensor(CNT[:2, :3])), [x])
    assert gradcheck(lambda a, b, c: F.gaussian_nll_loss(a, b, c), [x, p, v])


def test_gaussian_variance_clamp_passes_the_gradient():
    """PyTorch clamps var at eps for the value only (in place, under no_grad)."""
    v = fg.tensor([0.0, 2.0], dtype=fg.float64, requires_grad=True)
    loss = F.gaussian_nll_loss(
        fg.tensor([1.0, 1.0], dtype=fg.float64), fg.zeros(2, dtype=fg.float64), v, eps=1e-3
    )
    want = (0.5 * (np.log([1e-3, 2.0]) + 1 / np.array([1e-3, 2.0]))).mean()
    np.testing.assert_allclose(loss.item(), want, rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(
        v.grad.numpy(), 0.25 * (1 / np.array([1e-3, 2.0]) - 1 / np.array([1e-3, 2.0]) ** 2)
    )
    with pytest.raises(fg.ArgumentError, match="negative"):
        F.gaussian_nll_loss(fg.ones(2), fg.ones(2), fg.tensor([-1.0, 1.0]))


def test_gpu_matches_cpu(device):
    x, y, pos = (
        fg.tensor(X.astype(np.float32)),
        fg.tensor(Y.astype(np.float32)),
        fg.tensor(POS.astype(np.float32)),
    )
    var = fg.tensor(VAR.astype(np.float32))
    calls = [
        lambda a, b, c, d: F.soft_margin_loss(a, b),
        lambda a, b, c, d: F.hinge_embedding_loss(a, b),
        lambda a, b, c, d: F.triplet_margin_loss(a, c, d),
        lambda a, b, c, d: F.gaussian_nll_loss(a, c, d),
        lambda a, b, c, d: F.poisson_nll_loss(a, c),
        lambda a, b, c, d: F.multilabel_soft_margin_loss(a, (b > 0).float()),
    ]
    for k, call in enumerate(calls):
        want = call(x, y, pos, var).item()
        got = call(x.to(device), y.to(device), pos.to(device), var.to(device)).item()
        assert got == pytest.approx(want, rel=1e-5), k


@pytest.mark.parametrize(
    "layer",
    [
        nn.HingeEmbeddingLoss(0.5),
        nn.SoftMarginLoss("sum"),
        nn.MultiLabelSoftMarginLoss(),
        nn.MultiMarginLoss(2, 0.5),
        nn.TripletMarginLoss(0.2, 1.0, swap=True),
        nn.PoissonNLLLoss(False, True),
        nn.GaussianNLLLoss(full=True),
    ],
    ids=lambda m: type(m).__name__,
)
def test_classes_and_configs(layer):
    cfg = json.loads(json.dumps(nn.to_config(layer)))
    assert nn.to_config(nn.from_config(cfg)) == cfg
    with pytest.raises(NotImplementedError, match="weight"):
        nn.to_config(nn.MultiMarginLoss(weight=fg.ones(3)))
