"""nan-reductions, quantiles, cov/corrcoef, histc, searchsorted/bucketize and the matrix
constructions of ferrograd/_statistics.py against NumPy (whose definitions PyTorch's
documentation follows for these), with gradient checks and GPU = CPU where they compute."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import gradcheck

R = np.random.default_rng(0)
X = R.standard_normal((4, 7))
XN = X.copy()
XN[0, 2] = np.nan
XN[1, :] = np.nan


@pytest.mark.parametrize("method", ["linear", "lower", "higher", "midpoint", "nearest"])
@pytest.mark.parametrize("dim", [None, 0, 1])
def test_quantiles_against_numpy(method, dim):
    for q in (0.3, [0.1, 0.5, 0.9]):
        qq = fg.tensor(q, dtype=fg.float64) if isinstance(q, list) else q
        got = fg.quantile(fg.tensor(X), qq, dim, interpolation=method).numpy()
        np.testing.assert_allclose(got, np.quantile(X, q, axis=dim, method=method), rtol=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = np.nanquantile(XN, q, axis=dim, method=method)
        got = fg.nanquantile(fg.tensor(XN), q, dim, interpolation=method).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(
        fg.quantile(fg.tensor(XN), 0.5, 1).numpy(), np.quantile(XN, 0.5, axis=1), equal_nan=True
    )
    assert fg.quantile(fg.tensor(X), 0.5, 1, keepdim=True).shape == (4, 1)


def test_reductions_against_numpy():
    t = fg.tensor(XN)
    np.testing.assert_allclose(fg.nansum(t, 1).numpy(), np.nansum(XN, 1), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(fg.nanmean(t, 1).numpy(), np.nanmean(XN, 1), rtol=1e-12, equal_nan=True)
    values, indices = fg.nanmedian(t, 1)
    for r in (0, 2, 3):
        row = XN[r][~np.isnan(XN[r])]
        want = np.sort(row)[(len(row) - 1) // 2]
        assert values[r].item() == want and XN[r, indices[r].item()] == want
    assert np.isnan(values[1].item())
    assert fg.nanmedian(fg.tensor([1.0, np.nan, 3.0, 2.0])).item() == 2.0
    np.testing.assert_allclose(fg.cov(fg.tensor(X)).numpy(), np.cov(X), rtol=1e-12)
    np.testing.assert_allclose(fg.cov(fg.tensor(X), correction=0).numpy(), np.cov(X, bias=True), rtol=1e-12)
    np.testing.assert_allclose(fg.corrcoef(fg.tensor(X)).numpy(), np.corrcoef(X), rtol=1e-12)
    v = R.standard_normal(50)
    np.testing.assert_array_equal(
        fg.histc(fg.tensor(v), 7).numpy(), np.histogram(v, 7, (v.min(), v.max()))[0]
    )
    np.testing.assert_array_equal(fg.histc(fg.tensor([1.0, 2.0, 1.0, 9.0]), 4, 0, 3).numpy(), [0, 2, 1, 0])


def test_gradients_and_gpu(device):
    x = fg.tensor(X[:2, :5], requires_grad=True)
    assert gradcheck(lambda a: fg.quantile(a, 0.3, 1), [x])
    assert gradcheck(lambda a: fg.nansum(a * 2, 0), [x])
    assert gradcheck(lambda a: fg.cov(a), [x])
    assert gradcheck(lambda a, b: fg.kron(a, b), [x, fg.tensor(X[2:4, :2], requires_grad=True)])
    t = fg.tensor(XN.astype(np.float32))
    for f in (
        lambda a: fg.nanmean(a, 1),
        lambda a: fg.quantile(a, 0.7, 1),
        lambda a: fg.corrcoef(a.nan_to_num()),
    ):
        want = f(t).numpy()
        got = f(t.to(device))
        assert got.device == device
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_search_and_constructions():
    seq = fg.tensor([1, 3, 5, 7, 9])
    np.testing.assert_array_equal(fg.searchsorted(seq, fg.tensor([3, 6, 9])).numpy(), [1, 3, 4])
    np.testing.assert_array_equal(fg.searchsorted(seq, fg.tensor([3, 6, 9]), right=True).numpy(), [2, 3, 5])
    rows = fg.tensor([[1, 3, 5], [2, 4, 6]])
    np.testing.assert_array_equal(fg.searchsorted(rows, fg.tensor([[4], [4]])).numpy(), [[2], [1]])
    np.testing.assert_array_equal(fg.bucketize(fg.tensor([[3, 6], [9, 1]]), seq).numpy(), [[1, 3], [4, 0]])
    assert fg.bucketize(fg.tensor([3]), seq, out_int32=True).dtype == fg.int32
    a, b = R.standard_normal((2, 3)), R.standard_normal((3, 2))
    np.testing.assert_allclose(fg.kron(fg.tensor(a), fg.tensor(b)).numpy(), np.kron(a, b), rtol=1e-12)
    np.testing.assert_allclose(fg.kron(fg.tensor(a[0]), fg.tensor(b)).numpy(), np.kron(a[0], b), rtol=1e-12)
    bd = fg.block_diag(fg.ones(2, 2), fg.tensor([[5.0]]), fg.tensor([1.0, 2.0])).numpy()
    want = np.zeros((4, 5))
    want[:2, :2], want[2, 2], want[3, 3:] = 1, 5, [1, 2]
    np.testing.assert_array_equal(bd, want)
    cp = fg.cartesian_prod(fg.tensor([1, 2]), fg.tensor([3, 4, 5])).numpy()
    np.testing.assert_array_equal(cp, [[i, j] for i in (1, 2) for j in (3, 4, 5)])
    d = fg.diag_embed(fg.tensor([[1.0, 2.0], [3.0, 4.0]])).numpy()
    np.testing.assert_array_equal(d, [np.diag([1.0, 2.0]), np.diag([3.0, 4.0])])
    np.testing.assert_array_equal(fg.diagflat(fg.tensor([1.0, 2.0]), 1).numpy(), np.diagflat([1.0, 2.0], 1))
    np.testing.assert_allclose(fg.logspace(0, 2, 3).numpy(), [1.0, 10.0, 100.0])
    np.testing.assert_allclose(fg.logspace(0, 3, 4, base=2).numpy(), [1.0, 2.0, 4.0, 8.0])
    h = fg.heaviside(fg.tensor([-1.0, 0.0, 2.0]), fg.tensor([0.5])).numpy()
    np.testing.assert_array_equal(h, np.heaviside([-1.0, 0.0, 2.0], 0.5))
    np.testing.assert_array_equal(fg.gcd(fg.tensor([12, 18, 0]), fg.tensor([8, 27, 5])).numpy(), [4, 9, 5])
    np.testing.assert_array_equal(fg.lcm(fg.tensor([4, 6]), fg.tensor([6, 4])).numpy(), [12, 12])
    with pytest.raises(fg.DTypeError, match="gcd"):
        fg.gcd(fg.tensor([1.5]), fg.tensor([2.0]))
