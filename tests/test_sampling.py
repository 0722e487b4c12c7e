"""fg.bernoulli, multinomial, normal, poisson and the in-place fills: reproducible under
fg.manual_seed, the documented distributions (checked by their moments and frequencies
on many draws, with bounds far wider than the sampling error), and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg


def test_reproducible_under_manual_seed():
    draws = []
    for _ in range(2):
        fg.manual_seed(7)
        draws.append(
            (
                fg.bernoulli(fg.full([20], 0.5)).numpy(),
                fg.multinomial(fg.ones(6), 4).numpy(),
                fg.multinomial(fg.tensor([0.2, 0.8]), 5, replacement=True).numpy(),
                fg.normal(fg.zeros(3), fg.ones(3)).numpy(),
                fg.poisson(fg.full([5], 3.0)).numpy(),
            )
        )
    for a, b in zip(*draws):
        np.testing.assert_array_equal(a, b)


def test_distributions(device):
    fg.manual_seed(0)
    p = fg.tensor([0.0, 0.25, 1.0]).to(device).expand(20000, 3).contiguous()
    b = fg.bernoulli(p)
    assert b.device == device and b.dtype == fg.float32
    freq = b.cpu().numpy().mean(0)
    assert freq[0] == 0.0 and freq[2] == 1.0 and abs(freq[1] - 0.25) < 0.02
    m = fg.multinomial(fg.tensor([0.1, 0.2, 0.7]), 20000, replacement=True)
    assert m.dtype == fg.int64
    np.testing.assert_allclose(np.bincount(m.numpy(), minlength=3) / 20000, [0.1, 0.2, 0.7], atol=0.02)
    rows = fg.multinomial(fg.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 5.0, 1.0, 1.0]]), 3)
    for r, allowed in zip(rows.numpy(), ({0, 1, 2}, {1, 2, 3})):
        assert len(set(r)) == 3 and set(r) <= allowed  # without replacement: distinct, weight > 0
    firsts = [fg.multinomial(fg.tensor([1.0, 9.0]), 1).item() for _ in range(400)]
    assert 0.83 < np.mean(firsts) < 0.97  # index 1 first with probability 0.9
    z = fg.normal(fg.full([20000], 2.0), fg.full([20000], 3.0)).numpy()
    assert abs(z.mean() - 2.0) < 0.1 and abs(z.std() - 3.0) < 0.1
    assert fg.normal(1.0, 2.0, (2, 3)).shape == (2, 3)
    k = fg.poisson(fg.full([20000], 4.0)).numpy()
    assert abs(k.mean() - 4.0) < 0.1 and abs(k.var() - 4.0) < 0.3 and (k == np.round(k)).all()
    e = fg.zeros(20000).exponential_(2.0).numpy()
    assert e.min() >= 0 and abs(e.mean() - 0.5) < 0.03
    r = fg.zeros(20000).random_(3, 7).numpy()
    assert set(np.unique(r)) == {3.0, 4.0, 5.0, 6.0}
    h = fg.zeros(1000).bernoulli_(0.5).numpy()
    assert set(np.unique(h)) == {0.0, 1.0}


def test_errors():
    with pytest.raises(fg.ArgumentError, match=r"bernoulli: probabilities must be in \[0, 1\]"):
        fg.bernoulli(fg.tensor([1.5]))
    with pytest.raises(fg.ArgumentError, match="without replacement"):
        fg.multinomial(fg.tensor([1.0, 0.0]), 2)
    with pytest.raises(fg.ArgumentError, match="sum to more than zero"):
        fg.multinomial(fg.zeros(3), 1)
    with pytest.raises(fg.ArgumentError, match="rates must be non-negative"):
        fg.poisson(fg.tensor([-1.0]))
    w = fg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="exponential_: a tensor that requires grad"):
        w.exponential_()
