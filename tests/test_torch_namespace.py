"""More of PyTorch's top-level names, as scripts use them (`fg.<name>` for `torch.<name>`):
dtype queries (finfo, iinfo, result_type, promote_types, can_cast), as_tensor, tensordot,
addmm/addmv/baddbmm, norm, the bitwise functions, broadcast_tensors, tril/triu_indices,
atleast_nd, trapezoid, compile, and the small predicates. Each against NumPy or the value
PyTorch's documentation states; the differentiable ones by float64 gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import gradcheck

RNG = np.random.default_rng(11)


def t64(a, **kw):
    return fg.tensor(np.asarray(a, dtype=np.float64), **kw)


def test_finfo_and_iinfo():
    assert fg.finfo(fg.float32).eps == np.finfo(np.float32).eps
    assert fg.finfo().max == float(np.finfo(np.float32).max)  # float32's by default
    assert fg.finfo(fg.float64).tiny == np.finfo(np.float64).tiny
    assert fg.finfo(fg.float16).max == 65504.0
    bf = fg.finfo(fg.bfloat16)
    assert (bf.eps, bf.bits, bf.tiny) == (2.0**-7, 16, 2.0**-126)
    assert bf.max == float(np.float32(3.3895313892515355e38))
    assert (
        fg.iinfo(fg.int64).max == 2**63 - 1 and fg.iinfo(fg.uint8).min == 0 and fg.iinfo(fg.int32).bits == 32
    )
    with pytest.raises(TypeError, match="iinfo"):
        fg.finfo(fg.int64)
    with pytest.raises(TypeError, match="integer dtype"):
        fg.iinfo(fg.float32)


def test_dtype_promotion_queries_follow_the_engine():
    assert fg.result_type(fg.tensor([1, 2]), 1.0) == fg.float32  # a number is the weaker operand
    assert fg.result_type(fg.tensor([1.0]), fg.tensor(1.0, dtype=fg.float64)) == fg.float32  # 0-d too
    assert fg.result_type(fg.tensor([True]), fg.tensor([1])) == fg.int64
    assert fg.result_type(1, 2.0) == fg.float32
    assert fg.promote_types(fg.int64, fg.float32) == fg.float32
    assert fg.promote_types(fg.uint8, fg.int32) == fg.int32
    assert fg.can_cast(fg.int64, fg.float32) and not fg.can_cast(fg.float32, fg.int64)
    assert not fg.can_cast(fg.int32, fg.bool)


def test_as_tensor_shares_where_it_can():
    a = np.arange(4.0)
    t = fg.as_tensor(a)
    t[0] = 9.0
    assert a[0] == 9.0  # a writable array of a stored dtype: shared, as PyTorch's
    x = fg.ones(2)
    assert fg.as_tensor(x) is x and fg.as_tensor(x, dtype=fg.float64).dtype == fg.float64
    assert fg.as_tensor([1, 2]).dtype == fg.int64


def test_tensordot_matches_numpy():
    a, b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((3, 4, 5))
    np.testing.assert_allclose(fg.tensordot(t64(a), t64(b)).numpy(), np.tensordot(a, b), rtol=1e-12)
    c = RNG.standard_normal((4, 3))
    got = fg.tensordot(t64(a), t64(c), dims=([1, 2], [1, 0])).numpy()
    np.testing.assert_allclose(got, np.tensordot(a, c, axes=([1, 2], [1, 0])), rtol=1e-12)
    np.testing.assert_allclose(
        fg.tensordot(t64(c), t64(c), dims=0).numpy(), np.tensordot(c, c, 0), rtol=1e-12
    )
    with pytest.raises(fg.ShapeError, match="does not match"):
        fg.tensordot(t64(a), t64(a), dims=([0], [1]))
    x, y = t64(a, requires_grad=True), t64(b, requires_grad=True)
    assert gradcheck(lambda x, y: fg.tensordot(x, y, dims=1), (x[:, :, :3].detach().requires_grad_(), y))


def test_addmm_addmv_baddbmm():
    i, m1, m2 = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 4)), RNG.standard_normal((4, 3))
    got = fg.addmm(t64(i), t64(m1), t64(m2), beta=0.5, alpha=2.0).numpy()
    np.testing.assert_allclose(got, 0.5 * i + 2 * m1 @ m2, rtol=1e-12)
    # beta = 0: the input is ignored, NaN included (PyTorch's documented rule)
    nan = np.full((2, 3), np.nan)
    np.testing.assert_allclose(fg.addmm(t64(nan), t64(m1), t64(m2), beta=0).numpy(), m1 @ m2, rtol=1e-12)
    v = RNG.standard_normal(3)
    np.testing.assert_allclose(fg.addmv(t64(v[:2]), t64(i), t64(v)).numpy(), v[:2] + i @ v, rtol=1e-12)
    b1, b2 = RNG.standard_normal((2, 2, 4)), RNG.standard_normal((2, 4, 3))
    got = fg.baddbmm(t64(np.ones((2, 2, 3))), t64(b1), t64(b2), alpha=0.5).numpy()
    np.testing.assert_allclose(got, 1 + 0.5 * (b1 @ b2), rtol=1e-12)
    assert t64(i).addmm(t64(m1), t64(m2)).shape == (2, 3)  # as methods too
    x = t64(i, requires_grad=True)
    assert gradcheck(
        lambda x, a: fg.addmm(x, a, t64(m2), beta=2.0, alpha=0.5), (x, t64(m1, requires_grad=True))
    )


def test_norm_as_torch_norm():
    a = RNG.standard_normal((3, 4))
    assert fg.norm(t64(a)).item() == pytest.approx(np.linalg.norm(a))
    np.testing.assert_allclose(fg.norm(t64(a), p=1, dim=1).numpy(), np.abs(a).sum(1), rtol=1e-12)
    np.testing.assert_allclose(
        fg.norm(t64(a), dim=0, keepdim=True).numpy(), np.linalg.norm(a, axis=0, keepdims=True)
    )
    assert fg.norm(t64(a), p="nuc").item() == pytest.approx(np.linalg.norm(a, "nuc"))


def test_bitwise_functions_and_small_predicates():
    assert fg.bitwise_and(fg.tensor([6, 5]), fg.tensor([3, 3])).tolist() == [2, 1]
    assert fg.bitwise_or(fg.tensor([4]), 1).tolist() == [5]
    assert fg.bitwise_xor(fg.tensor([True, False]), fg.tensor([True, True])).tolist() == [False, True]
    assert fg.tensor([6]).bitwise_and(fg.tensor([3])).tolist() == [2]
    assert fg.is_floating_point(fg.zeros(1)) and not fg.is_floating_point(fg.zeros(1, dtype=fg.int64))
    assert not fg.is_complex(fg.zeros(1)) and fg.isreal(fg.tensor([np.nan])).tolist() == [True]
    assert fg.is_nonzero(fg.tensor([2])) and not fg.is_nonzero(fg.tensor(0.0))
    with pytest.raises(RuntimeError, match="one element"):
        fg.is_nonzero(fg.ones(2))
    assert fg.signbit(fg.tensor([-0.0, 0.0, -2.0, 3.0])).tolist() == [True, False, True, False]
    assert fg.signbit(fg.tensor([-1, 1])).tolist() == [True, False]
    assert fg.positive(fg.tensor([-1.0])).tolist() == [-1.0]
    with pytest.raises(fg.DTypeError, match="bool"):
        fg.positive(fg.tensor([True]))
    r = fg.float_power(fg.tensor([2, 3]), 2)
    assert r.dtype == fg.float64 and r.tolist() == [4.0, 9.0]
    assert fg.reciprocal(fg.tensor([4])).tolist() == [0.25]
    c = fg.clone(x := fg.ones(2, requires_grad=True))
    assert c.grad_fn is not None and not fg.detach(x).requires_grad


def test_take_broadcast_tensors_and_triangle_indices():
    a = fg.tensor([[1, 2, 3], [4, 5, 6]])
    assert fg.take(a, fg.tensor([[0, 5], [2, 3]])).tolist() == [[1, 6], [3, 4]]
    shapes = [tuple(t.shape) for t in fg.broadcast_tensors(fg.ones(3, 1), fg.ones(4), fg.ones(1, 1))]
    assert shapes == [(3, 4)] * 3
    for rows, cols, off in [(3, 3, 0), (3, 4, 1), (4, 3, -1), (0, 2, 0)]:
        np.testing.assert_array_equal(
            fg.tril_indices(rows, cols, off).numpy(), np.stack(np.tril_indices(rows, off, cols))
        )
        np.testing.assert_array_equal(
            fg.triu_indices(rows, cols, off).numpy(), np.stack(np.triu_indices(rows, off, cols))
        )
    assert fg.tril_indices(3, 3).dtype == fg.int64


def test_atleast_nd_as_pytorch_shapes_them():
    s = fg.tensor(1.0)
    assert (
        fg.atleast_1d(s).shape == (1,)
        and fg.atleast_2d(s).shape == (1, 1)
        and fg.atleast_3d(s).shape == (1, 1, 1)
    )
    v, m = fg.ones(3), fg.ones(2, 3)
    assert fg.atleast_2d(v).shape == (1, 3) and fg.atleast_3d(v).shape == (1, 3, 1)
    assert fg.atleast_3d(m).shape == (2, 3, 1)  # (M, N) -> (M, N, 1), as NumPy's and PyTorch's
    assert [t.shape for t in fg.atleast_1d(s, v)] == [(1,), (3,)]
    assert fg.concat([v, v]).shape == (6,) and fg.row_stack([v, v]).shape == (2, 3)


def test_trapezoid_and_cumulative_trapezoid_match_numpy():
    y, x = RNG.standard_normal((2, 5)), np.sort(RNG.standard_normal(5))
    np.testing.assert_allclose(fg.trapezoid(t64(y)).numpy(), np.trapezoid(y, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(fg.trapezoid(t64(y), t64(x)).numpy(), np.trapezoid(y, x, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(fg.trapezoid(t64(y), dx=0.5, dim=0).numpy(), np.trapezoid(y, dx=0.5, axis=0))
    want = np.cumsum((y[:, 1:] + y[:, :-1]) / 2 * np.diff(x), axis=-1)
    np.testing.assert_allclose(fg.cumulative_trapezoid(t64(y), t64(x)).numpy(), want, rtol=1e-12)
    assert gradcheck(lambda y: fg.trapezoid(y, t64(x)), (t64(y, requires_grad=True),))


def test_randint_like_and_compile():
    fg.manual_seed(0)
    r = fg.randint_like(fg.zeros(100), 3)
    assert r.dtype == fg.float32 and set(r.tolist()) <= {0.0, 1.0, 2.0}
    r = fg.randint_like(fg.zeros(50, dtype=fg.int64), 5, 7)
    assert r.dtype == fg.int64 and set(r.tolist()) <= {5, 6}
    model = fg.nn.Linear(2, 1)
    assert fg.compile(model) is model  # eager: the model as it is
    assert fg.compile(mode="reduce-overhead")(len)([1, 2]) == 2  # as a decorator factory
