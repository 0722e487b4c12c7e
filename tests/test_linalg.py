"""fg.linalg against NumPy's LAPACK results (float64), every gradient against finite
differences, batches, the GPU (a round trip to the host), and PyTorch's older spellings."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import linalg as L
from ferrograd.autograd import gradcheck

R = np.random.default_rng(0)
A = R.standard_normal((2, 3, 3))
B = R.standard_normal((2, 3, 2))
SPD = A @ A.transpose(0, 2, 1) + 3 * np.eye(3)
RECT = R.standard_normal((4, 3))
SING = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])


def t(a, grad=False):
    return fg.tensor(a, requires_grad=grad)


def test_forward_against_numpy():
    np.testing.assert_allclose(L.inv(t(A)).numpy(), np.linalg.inv(A), rtol=1e-12)
    np.testing.assert_allclose(L.det(t(A)).numpy(), np.linalg.det(A), rtol=1e-12)
    assert L.det(t(A[0])).shape == ()
    sign, logabs = L.slogdet(t(A))
    want_sign, want_log = np.linalg.slogdet(A)
    np.testing.assert_array_equal(sign.numpy(), want_sign)
    np.testing.assert_allclose(logabs.numpy(), want_log, rtol=1e-12)
    np.testing.assert_allclose(fg.logdet(t(SPD)).numpy(), np.log(np.linalg.det(SPD)), rtol=1e-12)
    assert np.isnan(fg.logdet(t(np.diag([-1.0, 1.0, 1.0]))).item())  # a negative determinant
    assert fg.logdet(t(SING)).item() == -np.inf
    np.testing.assert_allclose(L.solve(t(A), t(B)).numpy(), np.linalg.solve(A, B), rtol=1e-10)
    np.testing.assert_allclose(
        L.solve(t(A[0]), t(B[0, :, 0])).numpy(), np.linalg.solve(A[0], B[0, :, 0]), rtol=1e-10
    )
    np.testing.assert_allclose(
        L.solve(t(A[0]), t(B[0].T), left=False).numpy(), B[0].T @ np.linalg.inv(A[0]), rtol=1e-10
    )
    np.testing.assert_allclose(L.cholesky(t(SPD)).numpy(), np.linalg.cholesky(SPD), rtol=1e-12)
    np.testing.assert_allclose(
        L.cholesky(t(SPD), upper=True).numpy(), np.linalg.cholesky(SPD).transpose(0, 2, 1)
    )
    w, v = L.eigh(t(SPD))
    ww, wv = np.linalg.eigh(SPD)
    np.testing.assert_allclose(w.numpy(), ww, rtol=1e-12)
    np.testing.assert_allclose(np.abs(v.numpy()), np.abs(wv), rtol=1e-10)
    np.testing.assert_allclose(L.eigvalsh(t(SPD)).numpy(), ww, rtol=1e-12)
    u, s, vh = L.svd(t(RECT), full_matrices=False)
    np.testing.assert_allclose((u.numpy() * s.numpy()) @ vh.numpy(), RECT, atol=1e-12)
    np.testing.assert_allclose(s.numpy(), np.linalg.svd(RECT, compute_uv=False), rtol=1e-12)
    full = L.svd(t(RECT))
    assert full.U.shape == (4, 4) and full.Vh.shape == (3, 3)
    np.testing.assert_allclose(L.svdvals(t(RECT)).numpy(), np.linalg.svd(RECT, compute_uv=False), rtol=1e-12)
    q, r = L.qr(t(RECT))
    np.testing.assert_allclose(q.numpy() @ r.numpy(), RECT, atol=1e-12)
    np.testing.assert_allclose(q.numpy().T @ q.numpy(), np.eye(3), atol=1e-12)
    assert L.qr(t(RECT), "complete").Q.shape == (4, 4) and L.qr(t(RECT.T)).Q.shape == (3, 3)
    np.testing.assert_allclose(L.pinv(t(RECT)).numpy(), np.linalg.pinv(RECT), rtol=1e-10)
    np.testing.assert_allclose(L.pinv(t(SING)).numpy(), np.linalg.pinv(SING), rtol=1e-8, atol=1e-10)
    for n in (0, 1, 5, -2):
        np.testing.assert_allclose(L.matrix_power(t(A), n).numpy(), np.linalg.matrix_power(A, n), rtol=1e-9)
    assert L.matrix_rank(t(SING)).item() == 2 and L.matrix_rank(t(A)).numpy().tolist() == [3, 3]
    chain = [R.standard_normal(s) for s in ((5,), (5, 2), (2, 6), (6,))]
    want = chain[0] @ chain[1] @ chain[2] @ chain[3]
    np.testing.assert_allclose(L.multi_dot([t(c) for c in chain]).numpy(), want, rtol=1e-12)


def test_norms_against_numpy():
    for o in ("fro", "nuc", 2, -2, 1, -1, np.inf, -np.inf):
        np.testing.assert_allclose(L.matrix_norm(t(RECT), o).item(), np.linalg.norm(RECT, o), rtol=1e-12)
    got = L.matrix_norm(t(A), 1, keepdim=True)
    assert got.shape == (2, 1, 1)
    v = RECT[:, 0]
    for o in (2, 1, np.inf, -np.inf, 0, 3.5):
        np.testing.assert_allclose(L.vector_norm(t(v), o).item(), np.linalg.norm(v, o), rtol=1e-12)
    np.testing.assert_allclose(L.norm(t(RECT)).item(), np.linalg.norm(RECT), rtol=1e-12)
    np.testing.assert_allclose(L.norm(t(RECT), 2).item(), np.linalg.norm(RECT, 2), rtol=1e-12)
    np.testing.assert_allclose(L.norm(t(RECT), dim=1).numpy(), np.linalg.norm(RECT, axis=1), rtol=1e-12)


@pytest.mark.parametrize(
    "name, fn, args",
    [
        ("inv", lambda a: L.inv(a), [A]),
        ("det", lambda a: L.det(a), [A]),
        ("det_singular", lambda a: L.det(a), [SING]),
        ("slogdet", lambda a: L.slogdet(a).logabsdet, [A]),
        ("solve", lambda a, b: L.solve(a, b), [A, B]),
        ("cholesky", lambda a: L.cholesky(a @ a.transpose(-2, -1) + 3 * fg.eye(3, dtype=fg.float64)), [A]),
        ("eigh_values", lambda a: L.eigh(a + a.transpose(-2, -1)).eigenvalues, [A]),
        ("eigh_vectors", lambda a: L.eigh(a + a.transpose(-2, -1)).eigenvectors.abs(), [A]),
        ("svdvals", lambda a: L.svdvals(a), [RECT]),
        ("svd_u_tall", lambda a: L.svd(a, full_matrices=False).U.abs(), [RECT]),
        ("svd_vh_wide", lambda a: L.svd(a, full_matrices=False).Vh.abs(), [RECT.T]),
        ("qr_q", lambda a: L.qr(a).Q, [RECT]),
        ("qr_r", lambda a: L.qr(a).R, [RECT]),
        ("pinv", lambda a: L.pinv(a), [RECT]),
        ("matrix_power", lambda a: L.matrix_power(a, -3), [A]),
        ("nuclear", lambda a: L.matrix_norm(a, "nuc"), [RECT]),
    ],
)
def test_gradients(name, fn, args):
    assert gradcheck(fn, [t(a, True) for a in args]), name


def test_gpu_round_trip(device):
    a = fg.tensor(A.astype(np.float32)).to(device)
    got = L.inv(a)
    assert got.device == device
    np.testing.assert_allclose(got.cpu().numpy(), np.linalg.inv(A), rtol=1e-4, atol=1e-5)
    x = fg.tensor(SPD.astype(np.float32)).to(device).requires_grad_()
    L.cholesky(x).sum().backward()
    assert x.grad.device == device
    want = fg.tensor(SPD, requires_grad=True)
    L.cholesky(want).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), want.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_torch_spellings_and_methods():
    a = t(SPD[0])
    assert fg.det(a).item() == pytest.approx(np.linalg.det(SPD[0]))
    np.testing.assert_allclose(a.inverse().numpy(), np.linalg.inv(SPD[0]), rtol=1e-12)
    np.testing.assert_allclose(a.det().item(), np.linalg.det(SPD[0]), rtol=1e-12)
    u, s, v = fg.svd(t(RECT))  # torch.svd: V, not Vh; reduced by default
    np.testing.assert_allclose((u.numpy() * s.numpy()) @ v.numpy().T, RECT, atol=1e-12)
    assert t(RECT).svd(some=False).U.shape == (4, 4)
    assert fg.qr(t(RECT)).R.shape == (3, 3) and a.cholesky().shape == (3, 3)
    np.testing.assert_allclose(a.matrix_power(2).numpy(), SPD[0] @ SPD[0], rtol=1e-12)
    np.testing.assert_allclose(t(RECT).pinverse().numpy(), np.linalg.pinv(RECT), rtol=1e-10)
    assert a.slogdet().sign.item() == 1.0 and a.logdet().item() == pytest.approx(
        np.log(np.linalg.det(SPD[0]))
    )


def test_errors():
    with pytest.raises(fg.ShapeError, match=r"inv: expected square matrices"):
        L.inv(fg.ones(2, 3))
    with pytest.raises(fg.DTypeError, match="det: expected a floating-point"):
        L.det(fg.ones(2, 2, dtype=fg.int64))
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        L.svd(t(RECT, True))
    with pytest.raises(fg.ArgumentError, match="mode"):
        L.qr(t(RECT), "bad")
    with pytest.raises(np.linalg.LinAlgError):
        L.inv(t(SING))
