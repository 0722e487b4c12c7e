"""CTC loss against its definition: minus the log of the summed probability of every
frame-level path that collapses (merge repeats, drop blanks) to the target, enumerated
by brute force on small cases (float64); gradients against finite differences; the GPU
against the CPU."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.nn import functional as F

RNG = np.random.default_rng(11)


def _log_softmax(x):
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _ctc_by_enumeration(lp, target, blank=0):
    """lp (T, C): -log sum over all paths of length T collapsing to `target`."""
    total = -np.inf
    for path in itertools.product(range(lp.shape[1]), repeat=lp.shape[0]):
        labels, prev = [], None
        for p in path:
            if p != prev and p != blank:
                labels.append(p)
            prev = p
        if labels == list(target):
            total = np.logaddexp(total, sum(lp[t, p] for t, p in enumerate(path)))
    return -total


LP = _log_softmax(RNG.standard_normal((5, 3, 4)))
TARGETS = [[1, 2], [3, 3], [2]]
INPUT_LENGTHS = [5, 4, 3]
TARGET_LENGTHS = [2, 2, 1]
PADDED = np.array([[1, 2], [3, 3], [2, 0]])
REF = np.array([_ctc_by_enumeration(LP[: INPUT_LENGTHS[i], i], TARGETS[i]) for i in range(3)])


def test_matches_enumeration_of_alignments():
    got = F.ctc_loss(fg.tensor(LP), fg.tensor(PADDED), INPUT_LENGTHS, TARGET_LENGTHS, reduction="none")
    np.testing.assert_allclose(got.numpy(), REF, rtol=1e-12)
    # concatenated targets, lengths as tensors, and the reductions
    flat = fg.tensor([1, 2, 3, 3, 2])
    mean = F.ctc_loss(fg.tensor(LP), flat, fg.tensor(INPUT_LENGTHS), fg.tensor(TARGET_LENGTHS))
    np.testing.assert_allclose(mean.item(), np.mean(REF / np.array(TARGET_LENGTHS)), rtol=1e-12)
    total = F.ctc_loss(fg.tensor(LP), flat, INPUT_LENGTHS, TARGET_LENGTHS, reduction="sum")
    np.testing.assert_allclose(total.item(), REF.sum(), rtol=1e-12)


def test_blank_elsewhere_unbatched_and_the_module():
    lp = _log_softmax(RNG.standard_normal((4, 3)))
    got = F.ctc_loss(fg.tensor(lp), fg.tensor([0, 1]), 4, 2, blank=2, reduction="none")
    np.testing.assert_allclose(got.item(), _ctc_by_enumeration(lp, [0, 1], blank=2), rtol=1e-12)
    loss = fg.nn.CTCLoss(reduction="sum")
    np.testing.assert_allclose(
        loss(fg.tensor(LP), fg.tensor(PADDED), INPUT_LENGTHS, TARGET_LENGTHS).item(), REF.sum(), rtol=1e-12
    )


def test_gradient_matches_finite_differences():
    x = fg.tensor(RNG.standard_normal((5, 3, 4)), requires_grad=True)
    assert fg.autograd.gradcheck(
        lambda a: F.ctc_loss(a.log_softmax(-1), fg.tensor(PADDED), INPUT_LENGTHS, TARGET_LENGTHS), (x,)
    )


def test_impossible_alignments_are_inf_or_zero_with_zero_infinity():
    lp = fg.tensor(LP[:2], requires_grad=True)  # two frames
    targets = fg.tensor([[1, 2, 3], [1, 1, 0], [2, 0, 0]])
    # three labels in two frames, and a repeat that needs a blank between: impossible
    got = F.ctc_loss(lp, targets, [2, 2, 2], [3, 2, 1], reduction="none")
    assert np.isinf(got[0].item()) and np.isinf(got[1].item()) and np.isfinite(got[2].item())
    z = F.ctc_loss(lp, targets, [2, 2, 2], [3, 2, 1], reduction="none", zero_infinity=True)
    assert z[0].item() == 0.0 and z[1].item() == 0.0
    z.sum().backward()
    g = lp.grad.numpy()
    assert np.isfinite(g).all() and np.abs(g[:, :2]).max() == 0.0 and np.abs(g[:, 2]).max() > 0
    # an empty target: the all-blank path
    e = F.ctc_loss(fg.tensor(LP), fg.tensor([[1], [1], [1]]), [5, 5, 5], [0, 0, 0], reduction="none")
    np.testing.assert_allclose(e.numpy(), -LP[:, :, 0].sum(0), rtol=1e-12)


def test_bad_arguments_are_clear():
    with pytest.raises(fg.OutOfRangeError, match="blank"):
        F.ctc_loss(fg.tensor(LP), fg.tensor([[0, 1]] * 3), INPUT_LENGTHS, [2, 2, 2])
    with pytest.raises(fg.ArgumentError, match="input length exceeds"):
        F.ctc_loss(fg.tensor(LP), fg.tensor(PADDED), [6, 4, 3], TARGET_LENGTHS)
    with pytest.raises(fg.ArgumentError, match="target_lengths sum"):
        F.ctc_loss(fg.tensor(LP), fg.tensor([1, 2, 3]), INPUT_LENGTHS, TARGET_LENGTHS)
    with pytest.raises(fg.ShapeError, match="log_probs"):
        F.ctc_loss(fg.tensor(LP[0, 0]), fg.tensor(PADDED), INPUT_LENGTHS, TARGET_LENGTHS)


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
def test_gpu_matches_cpu():
    x = RNG.standard_normal((6, 3, 5)).astype(np.float32)
    res = []
    for device in ("cpu", "gpu"):
        a = fg.tensor(x, device=device, requires_grad=True)
        loss = F.ctc_loss(a.log_softmax(-1), fg.tensor(PADDED), [6, 5, 3], TARGET_LENGTHS)
        loss.backward()
        res.append((loss.item(), a.grad.cpu().numpy()))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-5)
    np.testing.assert_allclose(res[1][1], res[0][1], rtol=1e-4, atol=1e-6)
