"""NumPy's advanced indexing on any dim (issue 16): index arrays (lists, int64 and bool
tensors, NumPy arrays) after slices, several that broadcast together, None and ... among
them, in reads (differentiable) and in assignment; against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import gradcheck

A = np.arange(60.0).reshape(3, 4, 5)

KEYS = [
    (slice(None), [0, 2]),
    (Ellipsis, [1, 3]),
    ([0, 2], [1, 3]),
    (slice(None), [0, 2], [1, 4]),
    ([0, 1], slice(None), [2, 3]),  # separated index arrays: their dims go first
    (None, 0, [1]),
    ([[0], [2]], [0, 3]),  # index arrays broadcast
    (slice(None), np.array([[0, 1], [3, 0]])),
    (0, [True, False, True, False]),
    (slice(1, None), [-1]),
    (slice(None, None, 2), [1, 1, 0], slice(1, 4)),
]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_reads_match_numpy_and_differentiate(key, device):
    t = fg.tensor(A.astype(np.float32)).to(device)
    tkey = tuple(fg.tensor(k) if isinstance(k, list) and k and isinstance(k[0], bool) else k for k in key)
    got = t[tkey]
    np.testing.assert_array_equal(got.numpy(), A[key])
    if device == "cpu":
        x = fg.tensor(A[:, :4, :5] * 0.1, requires_grad=True)
        assert gradcheck(lambda v: v[key] * 2.0, [x])


def test_the_usual_log_probability_pick_and_its_gradient():
    logp = fg.tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    y = fg.tensor([1, 3, 0, 2])
    picked = logp[fg.arange(4), y]
    np.testing.assert_array_equal(picked.numpy(), logp.numpy()[np.arange(4), [1, 3, 0, 2]])
    (-picked.mean()).backward()
    want = np.zeros((4, 5))
    want[np.arange(4), [1, 3, 0, 2]] = -0.25
    np.testing.assert_array_equal(logp.grad.numpy(), want)


def test_assignment_matches_numpy(device):
    z = np.zeros((3, 4, 5))
    t = fg.zeros(3, 4, 5).to(device)
    t[:, [0, 2]] = 1.0
    z[:, [0, 2]] = 1.0
    t[[0, 1], [1, 3]] = fg.tensor(np.array([[5.0], [6.0]]).astype(np.float32))
    z[[0, 1], [1, 3]] = np.array([[5.0], [6.0]])
    t[..., [4]] = fg.tensor(np.arange(12.0).reshape(3, 4, 1).astype(np.float32))
    z[..., [4]] = np.arange(12.0).reshape(3, 4, 1)
    np.testing.assert_array_equal(t.numpy(), z)


def test_refusals():
    t = fg.tensor(A)
    with pytest.raises(IndexError, match="must be of integer"):
        t[:, [0.5]]
    with pytest.raises(IndexError, match="out of bounds"):
        t[:, [7]]
    v = t.transpose(0, 1)
    with pytest.raises(IndexError, match="needs a contiguous tensor"):
        v[:, [0]] = 1.0
    w = fg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError):
        w[None, [0]] = 1.0  # in place on a leaf that requires grad, as PyTorch refuses
