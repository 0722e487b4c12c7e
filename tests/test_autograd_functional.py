"""`fg.autograd.functional` (PyTorch's torch.autograd.functional): vjp, jvp, jacobian,
hessian, vhp, hvp, against closed forms and central differences in float64, with
PyTorch's result structure (a Tensor for a Tensor, tuples for tuples)."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp


def t64(a, **kw):
    return fg.tensor(np.asarray(a, dtype=np.float64), **kw)


X = np.array([0.3, -1.2, 2.0])
A = np.random.default_rng(0).standard_normal((2, 3))


def f_vec(x):  # R^3 -> R^2
    return t64(A) @ x.sin() + x[:2] * x[1:]


def f_vec_np(x):
    return A @ np.sin(x) + x[:2] * x[1:]


def numeric_jacobian(f, x, h=1e-6):
    cols = []
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)


def test_jacobian_of_a_vector_function():
    jac = jacobian(f_vec, t64(X))
    assert isinstance(jac, fg.Tensor) and jac.shape == (2, 3)
    np.testing.assert_allclose(jac.numpy(), numeric_jacobian(f_vec_np, X), rtol=1e-7, atol=1e-9)
    assert not jac.requires_grad


def test_jacobian_structure_for_tuples_and_shapes():
    a, b = t64(np.arange(6.0).reshape(2, 3)), t64([0.5, 2.0])
    out = jacobian(lambda a, b: (a.sum(1) * b, (a * a).sum()), (a, b))
    assert isinstance(out, tuple) and len(out) == 2 and all(len(r) == 2 for r in out)
    (j00, j01), (j10, j11) = out
    assert j00.shape == (2, 2, 3) and j01.shape == (2, 2) and j10.shape == (2, 3) and j11.shape == (2,)
    expect00 = np.zeros((2, 2, 3))
    expect00[0, 0, :], expect00[1, 1, :] = 0.5, 2.0
    np.testing.assert_allclose(j00.numpy(), expect00)
    np.testing.assert_allclose(j01.numpy(), np.diag(a.numpy().sum(1)))
    np.testing.assert_allclose(j10.numpy(), 2 * a.numpy())
    np.testing.assert_array_equal(j11.numpy(), [0.0, 0.0])  # unused input: zeros


def test_strict_refuses_an_unused_input():
    with pytest.raises(RuntimeError, match="independent of input 1"):
        jacobian(lambda a, b: a * 2, (t64([1.0]), t64([2.0])), strict=True)


def test_hessian_of_a_scalar_function_single_and_tuple():
    def f(x):
        return (x**3).sum() + x[0] * x[1]

    h = hessian(f, t64(X))
    expect = np.diag(6 * X)
    expect[0, 1] = expect[1, 0] = 1.0
    np.testing.assert_allclose(h.numpy(), expect, rtol=1e-12)

    def g(a, b):
        return (a * a).sum() * b.sum() + (a[:2] * b).sum()

    a, b = t64(X), t64([0.5, -1.0])
    (haa, hab), (hba, hbb) = hessian(g, (a, b))
    assert haa.shape == (3, 3) and hab.shape == (3, 2) and hba.shape == (2, 3) and hbb.shape == (2, 2)
    np.testing.assert_allclose(haa.numpy(), 2 * b.numpy().sum() * np.eye(3))
    expect_ab = np.outer(2 * X, [1.0, 1.0])
    expect_ab[0, 0] += 1
    expect_ab[1, 1] += 1
    np.testing.assert_allclose(hab.numpy(), expect_ab)
    np.testing.assert_allclose(hba.numpy(), expect_ab.T)
    np.testing.assert_array_equal(hbb.numpy(), np.zeros((2, 2)))


def test_vjp_jvp_and_their_defaults():
    x, v_out, v_in = t64(X), t64([1.0, -2.0]), t64([0.5, 1.0, -1.0])
    jac = numeric_jacobian(f_vec_np, X)
    out, g = vjp(f_vec, x, v_out)
    np.testing.assert_allclose(out.numpy(), f_vec_np(X))
    np.testing.assert_allclose(g.numpy(), v_out.numpy() @ jac, rtol=1e-7)
    out, jv = jvp(f_vec, x, v_in)
    np.testing.assert_allclose(jv.numpy(), jac @ v_in.numpy(), rtol=1e-7)
    # v may be left out only for one-element outputs (vjp) or inputs (jvp)
    _, g = vjp(lambda x: (x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), 2 * X)
    with pytest.raises(RuntimeError, match="v can be omitted only"):
        vjp(f_vec, x)
    with pytest.raises(RuntimeError, match="shape"):
        vjp(f_vec, x, t64([1.0, 2.0, 3.0]))


def test_hvp_and_vhp_equal_the_hessian_times_v():
    def f(x):
        return (x.sin() * x.sum()).sum()

    x, v = t64(X), t64([1.0, 0.5, -2.0])
    h = hessian(f, x).numpy()
    val, hv = hvp(f, x, v)
    np.testing.assert_allclose(val.item(), f(x).item())
    np.testing.assert_allclose(hv.numpy(), h @ v.numpy(), rtol=1e-12)
    _, vh = vhp(f, x, v)
    np.testing.assert_allclose(vh.numpy(), v.numpy() @ h, rtol=1e-12)


def test_create_graph_keeps_the_results_differentiable_and_the_inputs_untouched():
    x = t64(X, requires_grad=True)
    jac = jacobian(lambda x: x**3, x, create_graph=True)
    assert jac.requires_grad
    (g,) = fg.autograd.grad(jac.sum(), x)  # d/dx of sum(diag(3 x^2))
    np.testing.assert_allclose(g.numpy(), 6 * X)
    assert x.grad is None and x.is_leaf
    # without create_graph, results are plain tensors even for inputs that require grad
    assert not jacobian(lambda x: x**3, x).requires_grad


def test_a_network_s_input_hessian_matches_finite_differences():
    fg.manual_seed(0)
    net = fg.nn.Sequential(fg.nn.Linear(3, 8), fg.nn.Tanh(), fg.nn.Linear(8, 1)).double()

    def f(x):
        return net(x.reshape(1, 3)).sum()

    h = hessian(f, t64(X)).numpy()

    def grad_np(xn):
        x = t64(xn, requires_grad=True)
        (g,) = fg.autograd.grad(f(x), x)
        return g.numpy()

    np.testing.assert_allclose(h, numeric_jacobian(grad_np, X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(h, h.T, rtol=1e-12, atol=1e-15)


def test_vectorize_gives_the_same_jacobian_and_forward_mode_is_refused():
    np.testing.assert_array_equal(
        jacobian(f_vec, t64(X), vectorize=True).numpy(), jacobian(f_vec, t64(X)).numpy()
    )
    with pytest.raises(ValueError, match="needs vectorize=True"):
        jacobian(f_vec, t64(X), strategy="forward-mode")
    with pytest.raises(NotImplementedError, match="forward-mode"):
        jacobian(f_vec, t64(X), vectorize=True, strategy="forward-mode")
    with pytest.raises(TypeError, match="Tensor"):
        jacobian(f_vec, [1.0, 2.0])


def test_grad_with_batched_seeds_is_one_gradient_per_seed():
    x = t64(X, requires_grad=True)
    y = f_vec(x)
    seeds = t64(np.eye(2))
    (jac,) = fg.autograd.grad(y, x, seeds, is_grads_batched=True)
    np.testing.assert_allclose(jac.numpy(), numeric_jacobian(f_vec_np, X), rtol=1e-7)
    # with create_graph, the rows stay differentiable
    (rows,) = fg.autograd.grad(f_vec(x), x, seeds, is_grads_batched=True, create_graph=True)
    assert rows.requires_grad
    with pytest.raises(ValueError, match="leading batch dim"):
        fg.autograd.grad(f_vec(x), x, t64(1.0), is_grads_batched=True)
