"""The everyday PyTorch surface composed in ferrograd/_surface.py: operator functions,
composed math, shape helpers and in-place variants. Forward results against NumPy (whose
functions PyTorch's documentation follows for these), gradients against finite differences
in float64, the GPU against the CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import gradcheck

SPECIAL = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0, math.inf, -math.inf, math.nan]


def _f64(a):
    return fg.tensor(np.asarray(a, dtype=np.float64))


def _close(got, want, **kw):
    np.testing.assert_allclose(np.asarray(got.detach().cpu().numpy(), dtype=np.float64), want, **kw)


def test_operator_functions():
    a, b = fg.tensor([1.0, 2.0, 3.0]), fg.tensor([3.0, 2.0, 1.0])
    _close(fg.add(a, b, alpha=2), [7.0, 6.0, 5.0])
    _close(fg.sub(a, b, alpha=0.5), [-0.5, 1.0, 2.5])
    _close(fg.subtract(a, 1), [0.0, 1.0, 2.0])
    _close(a.add(b, alpha=-1), [-2.0, 0.0, 2.0])
    _close(a.sub(b, alpha=2), [-5.0, -2.0, 1.0])
    _close(fg.mul(a, b), [3.0, 4.0, 3.0])
    _close(fg.multiply(a, 2), [2.0, 4.0, 6.0])
    _close(fg.pow(a, 2), [1.0, 4.0, 9.0])
    _close(fg.pow(2, a), [2.0, 4.0, 8.0])
    _close(fg.negative(a), [-1.0, -2.0, -3.0])
    _close(fg.square(a), [1.0, 4.0, 9.0])
    _close(fg.rsqrt(fg.tensor([4.0])), [0.5])
    for name, op in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                     ("gt", np.greater), ("ge", np.greater_equal), ("greater", np.greater),
                     ("greater_equal", np.greater_equal), ("less", np.less), ("less_equal", np.less_equal),
                     ("not_equal", np.not_equal)]:  # fmt: skip
        got = getattr(fg, name)(a, b)
        assert got.dtype == fg.bool_
        np.testing.assert_array_equal(got.numpy(), op(a.numpy(), b.numpy()), err_msg=name)
        np.testing.assert_array_equal(getattr(fg, name)(2.0, a).numpy(), op(2.0, a.numpy()), err_msg=name)
    x = fg.tensor([1.0, 2.0, 4.0])
    np.testing.assert_allclose(fg.std(x).item(), np.std([1, 2, 4], ddof=1), rtol=1e-6)
    np.testing.assert_allclose(fg.std(x, unbiased=False).item(), np.std([1, 2, 4]), rtol=1e-6)
    np.testing.assert_allclose(x.std(0, False).item(), np.std([1, 2, 4]), rtol=1e-6)
    np.testing.assert_allclose(x.var(unbiased=False).item(), np.var([1, 2, 4]), rtol=1e-6)
    np.testing.assert_allclose(fg.var(x, 0, False).item(), np.var([1, 2, 4]), rtol=1e-6)
    np.testing.assert_allclose(x.var(correction=2).item(), np.var([1, 2, 4]) * 3, rtol=1e-6)
    with pytest.raises(TypeError, match="not both"):
        x.std(unbiased=True, correction=1)
    _close(fg.amax(fg.tensor([[1.0, 5.0], [7.0, 2.0]]), 1), [5.0, 7.0])
    _close(fg.narrow(a, 0, 1, 2), [2.0, 3.0])
    _close(fg.masked_fill(a, a > 1, 0.0), [1.0, 0.0, 0.0])


def test_atan2_follows_c_on_zeros_and_infinities(device):
    y, x = (a.astype(np.float32) for a in np.meshgrid(SPECIAL, SPECIAL, indexing="ij"))
    got = fg.atan2(fg.tensor(y).to(device), fg.tensor(x).to(device)).cpu().numpy()
    want = np.arctan2(y, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)  # lavapipe's atan: 4e-6
    np.testing.assert_array_equal(np.signbit(got[~np.isnan(want)]), np.signbit(want[~np.isnan(want)]))
    assert fg.arctan2 is fg.atan2
    assert fg.tensor([1, 2]).atan2(fg.tensor([3, 4])).dtype == fg.float32


def test_composed_math_against_numpy():
    v = np.array(SPECIAL)
    _close(fg.hypot(fg.tensor([3.0, 1e30, 0.0, -5.0]), fg.tensor([4.0, 1e30, 0.0, 12.0])),
           [5.0, math.sqrt(2) * 1e30, 0.0, 13.0], rtol=1e-6)  # fmt: skip
    _close(fg.hypot(_f64([math.inf, math.nan]), _f64([math.nan, math.inf])), [math.inf, math.inf])
    xs, ys = np.array([0.0, 0.0, 2.0, 0.0, 1.0]), np.array([0.0, math.nan, 3.0, -1.0, 0.0])
    with np.errstate(all="ignore"):
        want = np.where((xs == 0) & ~np.isnan(ys), 0.0, xs * np.log(ys))
    _close(fg.xlogy(_f64(xs), _f64(ys)), want)
    p = np.array([0.1, 0.5, 0.9, 0.0, 1.0])
    with np.errstate(divide="ignore"):
        _close(fg.logit(_f64(p)), np.log(p / (1 - p)))
    _close(fg.logit(_f64(p), eps=0.01), np.log(np.clip(p, 0.01, 0.99) / (1 - np.clip(p, 0.01, 0.99))))
    _close(fg.nan_to_num(_f64(v)), np.nan_to_num(v))
    _close(fg.nan_to_num(fg.tensor(v.astype(np.float32))), np.nan_to_num(v.astype(np.float32)))
    _close(
        fg.nan_to_num(_f64(v), nan=1.0, posinf=2.0, neginf=-2.0),
        np.nan_to_num(v, nan=1.0, posinf=2.0, neginf=-2.0),
    )
    np.testing.assert_array_equal(fg.nan_to_num(fg.tensor([1, 2])).numpy(), [1, 2])
    _close(fg.sgn(_f64([-2.0, 0.0, 3.0])), [-1.0, 0.0, 1.0])
    # copysign of a zero magnitude: -0.0 (was +0.0), as np.copysign and torch.copysign
    zs = fg.copysign(_f64([0.0, 0.0, 0.0]), _f64([-1.0, -0.0, 1.0])).numpy()
    np.testing.assert_array_equal(np.signbit(zs), [True, True, False])
    _close(fg.clamp_min(_f64([-1.0, 2.0]), 0.0), [0.0, 2.0])
    _close(fg.clamp_max(_f64([-1.0, 2.0]), 0.0), [-1.0, 0.0])
    a, b = np.array([1.0, math.nan, math.nan, -0.5]), np.array([math.nan, 2.0, math.nan, 3.0])
    _close(fg.fmax(_f64(a), _f64(b)), np.fmax(a, b))
    _close(fg.fmin(_f64(a), _f64(b)), np.fmin(a, b))
    _close(fg.deg2rad(fg.tensor([180])), [math.pi], rtol=1e-6)
    _close(fg.rad2deg(_f64([math.pi])), [180.0])
    t1, t2 = _f64([1.0, 2.0]), _f64([4.0, 8.0])
    _close(fg.addcmul(_f64([1.0, 1.0]), t1, t2, value=0.5), [3.0, 9.0])
    _close(fg.addcdiv(_f64([1.0, 1.0]), t1, t2, value=2), [1.5, 1.5])


def test_reductions_and_products_against_numpy():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((4, 4))
    _close(fg.trace(_f64(m)), np.trace(m))
    for n, dim in [(1, -1), (2, 0), (3, 1)]:
        _close(fg.diff(_f64(m), n, dim), np.diff(m, n, dim))
    _close(fg.diff(_f64([1.0, 4.0]), prepend=_f64([0.0]), append=_f64([10.0])), [1.0, 3.0, 6.0])
    np.testing.assert_array_equal(fg.diff(fg.tensor([True, True, False])).numpy(), [False, True])
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((1, 3))
    _close(fg.cross(_f64(a), _f64(b)), np.cross(a, b))
    _close(fg.cross(_f64(a.T), _f64(b.T), dim=0), np.cross(a.T, b.T, axis=0))
    c, d = rng.standard_normal((2, 5)), rng.standard_normal((3, 4, 5))
    _close(fg.inner(_f64(c), _f64(d)), np.inner(c, d))
    _close(fg.inner(_f64(2.0), _f64(c)), 2 * c)
    _close(fg.dist(_f64(a), _f64(b), 3), np.sum(np.abs(a - b) ** 3) ** (1 / 3))
    lo, hi = fg.aminmax(_f64(m))
    assert lo.item() == m.min() and hi.item() == m.max()
    r = fg.aminmax(_f64(m), dim=1, keepdim=True)
    _close(r.min, m.min(1, keepdims=True))
    _close(r.max, m.max(1, keepdims=True))
    x = fg.tensor([[1, 2, 2, 3, 3], [4, 4, 1, 1, 0]])
    values, indices = fg.mode(x, 1)  # PyTorch 2.15: values [2, 1], indices [2, 3]
    np.testing.assert_array_equal(values.numpy(), [2, 1])
    np.testing.assert_array_equal(indices.numpy(), [2, 3])
    v, i = fg.tensor([1.0, 2.0, 2.0, 1.0]).mode()
    assert v.item() == 1.0 and i.item() == 3
    assert fg.mode(x, 0, keepdim=True).values.shape == (1, 5)


def test_indexing_and_shape_helpers():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((3, 4))
    t = _f64(m)
    np.testing.assert_array_equal(fg.isin(fg.tensor([1, 2, 3, 4]), fg.tensor([2, 4])).numpy(), [0, 1, 0, 1])
    np.testing.assert_array_equal(fg.isin(fg.tensor([1, 2]), [2], invert=True).numpy(), [True, False])
    _close(fg.ravel(t.transpose(0, 1)), m.T.ravel())
    np.testing.assert_array_equal(
        fg.argwhere(fg.tensor([[0, 1], [2, 0]])).numpy(), np.argwhere([[0, 1], [2, 0]])
    )
    _close(fg.select(t, 1, -1), m[:, -1])
    with pytest.raises(fg.OutOfRangeError, match="select: index 4"):
        fg.select(t, 1, 4)
    for arg in (3, 5, [1, 3], [-1, 10], [2, 1]):
        got = fg.tensor_split(t, arg, dim=1)
        want = np.array_split(m, arg, axis=1)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    assert fg.tensor_split(t, 2)[0].shares_storage(t)  # views
    _close(fg.index_fill(t, 1, fg.tensor([0, -1]), -7.0), np.where(np.isin(np.arange(4), [0, 3]), -7.0, m))
    for k in range(-1, 5):
        _close(fg.rot90(t, k), np.rot90(m, k))
        _close(fg.rot90(t, k, (1, 0)), np.rot90(m, k, (1, 0)))
    one, two = np.arange(3.0), np.arange(6.0).reshape(3, 2)
    _close(fg.hstack([_f64(one), _f64(one)]), np.hstack([one, one]))
    _close(fg.hstack([_f64(two), _f64(two)]), np.hstack([two, two]))
    _close(fg.vstack([_f64(one), _f64(one)]), np.vstack([one, one]))
    _close(fg.dstack([_f64(two), _f64(two)]), np.dstack([two, two]))
    _close(fg.dstack([_f64(one), _f64(one)]), np.dstack([one, one]))
    _close(fg.column_stack([_f64(one), _f64(two)]), np.column_stack([one, two]))


@pytest.mark.parametrize(
    "name, fn, shapes",
    [
        ("atan2", lambda a, b: fg.atan2(a, b), [(2, 3), (3,)]),
        ("hypot", lambda a, b: fg.hypot(a, b), [(2, 3), (2, 3)]),
        ("xlogy", lambda a, b: fg.xlogy(a, b.abs() + 0.5), [(4,), (4,)]),
        ("logit", lambda a: fg.logit(a.sigmoid()), [(5,)]),
        ("fmax", lambda a, b: fg.fmax(a, b), [(5,), (5,)]),
        ("addcdiv", lambda a, b, c: fg.addcdiv(a, b, c.abs() + 1, value=0.5), [(3,), (3,), (3,)]),
        ("diff", lambda a: fg.diff(a, 2, 0), [(5, 2)]),
        ("cross", lambda a, b: fg.cross(a, b, dim=1), [(2, 3), (1, 3)]),
        ("inner", lambda a, b: fg.inner(a, b), [(2, 4), (3, 4)]),
        ("dist", lambda a, b: fg.dist(a, b, 3), [(4,), (4,)]),
        ("trace", lambda a: fg.trace(a), [(3, 3)]),
        ("index_fill", lambda a: fg.index_fill(a, 0, fg.tensor([1]), 2.0), [(3, 2)]),
        ("tensor_split", lambda a: fg.tensor_split(a, 3, 1)[1] * 2, [(2, 5)]),
        ("rot90", lambda a: fg.rot90(a, 3), [(2, 3)]),
        ("vstack", lambda a, b: fg.vstack([a, b]), [(3,), (3,)]),
        ("nan_to_num", lambda a: fg.nan_to_num(a), [(4,)]),
    ],
)
def test_gradients_against_finite_differences(name, fn, shapes):
    rng = np.random.default_rng(2)
    args = [fg.tensor(rng.standard_normal(s) + 0.1, requires_grad=True) for s in shapes]
    assert gradcheck(fn, args), name


def test_atan2_gradient_and_index_fill_value_gradient():
    y = fg.tensor([1.0, -2.0], dtype=fg.float64, requires_grad=True)
    x = fg.tensor([-3.0, 0.5], dtype=fg.float64, requires_grad=True)
    fg.atan2(y, x).sum().backward()
    r2 = np.array([10.0, 4.25])
    _close(y.grad, np.array([-3.0, 0.5]) / r2)
    _close(x.grad, -np.array([1.0, -2.0]) / r2)
    v = fg.tensor(5.0, dtype=fg.float64, requires_grad=True)
    fg.index_fill(fg.zeros(3, 2, dtype=fg.float64), 0, fg.tensor([0, 2]), v).sum().backward()
    assert v.grad.item() == 4.0


def test_gpu_matches_cpu(device):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    calls = [
        lambda x, y: fg.hypot(x, y),
        lambda x, y: fg.xlogy(x, y.abs()),
        lambda x, y: fg.fmax(x, y),
        lambda x, y: fg.addcmul(x, x, y, value=2),
        lambda x, y: fg.diff(x, 1, 1),
        lambda x, y: fg.inner(x, y),
        lambda x, y: fg.rot90(x, 1),
        lambda x, y: fg.index_fill(x, 1, fg.tensor([2]), 3.0),
        lambda x, y: fg.nan_to_num(x / (y * 0)),
        lambda x, y: fg.logit(x.sigmoid(), eps=1e-3),
        lambda x, y: fg.hstack(list(fg.tensor_split(x, 2, 1))),
    ]
    for k, call in enumerate(calls):
        want = call(fg.tensor(a), fg.tensor(b)).numpy()
        got = call(fg.tensor(a).to(device), fg.tensor(b).to(device))
        assert got.device == device
        np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-5, atol=1e-5, err_msg=str(k))


def test_in_place_variants(device):
    x = fg.tensor([-1.0, 0.5, 2.0]).to(device)
    assert x.relu_() is x
    _close(x, [0.0, 0.5, 2.0])
    for name, ref in [("exp_", np.exp), ("sqrt_", np.sqrt), ("log_", np.log), ("tanh_", np.tanh),
                      ("sigmoid_", lambda v: 1 / (1 + np.exp(-v))), ("abs_", np.abs), ("neg_", np.negative),
                      ("square_", np.square)]:  # fmt: skip
        t = fg.tensor([0.5, 2.0]).to(device)
        getattr(t, name)()
        _close(t, ref(np.array([0.5, 2.0])), rtol=1e-6, err_msg=name)
    t = fg.tensor([1.0, 2.0]).to(device)
    t.pow_(3).clamp_max_(5.0).clamp_min_(2.0)
    _close(t, [2.0, 5.0])
    t.addcmul_(fg.tensor([1.0, 1.0]).to(device), fg.tensor([2.0, 3.0]).to(device), value=2)
    _close(t, [6.0, 11.0])
    t.lerp_(fg.tensor([0.0, 1.0]).to(device), 0.5)
    _close(t, [3.0, 6.0])
    m = fg.zeros(3, 3).to(device)
    m.fill_diagonal_(2.0)
    _close(m, np.eye(3) * 2)
    tall = fg.zeros(7, 3)
    tall.fill_diagonal_(1.0, wrap=True)
    want = np.zeros((7, 3))
    want[[0, 1, 2, 4, 5, 6], [0, 1, 2, 0, 1, 2]] = 1.0
    _close(tall, want)  # PyTorch 2.15's answer on this call
    m.index_fill_(0, fg.tensor([1]), -1.0)
    _close(m[1], [-1.0, -1.0, -1.0])
    m.index_add_(1, fg.tensor([0]), fg.ones(3, 1).to(device))
    _close(m[:, 0], [3.0, 0.0, 1.0])
    s = fg.zeros(4).to(device)
    s.scatter_add_(0, fg.tensor([1, 1, 3]), fg.ones(3).to(device))
    _close(s, [0.0, 2.0, 0.0, 1.0])
    s.scatter_(0, fg.tensor([0]), fg.tensor([9.0]).to(device))
    _close(s, [9.0, 2.0, 0.0, 1.0])
    view = fg.zeros(2, 3).to(device)
    view[1].exp_()  # through a view: the base sees it
    _close(view, [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])


def test_in_place_rules():
    w = fg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="exp_: a tensor that requires grad"):
        w.exp_()
    with fg.no_grad():
        w.mul_(2).exp_()
    np.testing.assert_allclose(w.detach().numpy(), np.exp([2.0, 2.0]), rtol=1e-6)
    with pytest.raises(fg.DTypeError, match="sqrt_"):
        fg.tensor([4, 9]).sqrt_()
    i = fg.tensor([-3, 4])
    i.abs_()
    np.testing.assert_array_equal(i.numpy(), [3, 4])


def test_random_fills_and_constructors(device):
    fg.manual_seed(0)
    w = fg.empty(2000).to(device) if hasattr(fg, "empty") else fg.zeros(2000).to(device)
    w.uniform_(-2.0, 3.0)
    v = w.cpu().numpy()
    assert v.min() >= -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.15
    w.normal_(1.0, 0.5)
    v = w.cpu().numpy()
    assert abs(v.mean() - 1.0) < 0.05 and abs(v.std() - 0.5) < 0.05
    with pytest.raises(fg.DTypeError, match="uniform_"):
        fg.tensor([1, 2]).uniform_()
    p = fg.ones(2, requires_grad=True)
    with fg.no_grad():
        p.normal_()
    assert p.requires_grad and p.is_leaf
    dt = fg.float64 if device == "cpu" else fg.float32  # the GPU holds float32
    x = fg.ones(2, 3, dtype=dt).to(device)
    n = x.new_tensor([[1, 2]])
    assert n.dtype == dt and n.device == device and n.shape == (1, 2)
    e = x.new_empty(4, 5)
    assert e.shape == (4, 5) and e.dtype == dt and e.device == device
    assert x.new_empty((2,)).shape == (2,)
    f = x.new_full((2, 2), 7)
    assert f.cpu().numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]] and f.dtype == dt
    assert x.nelement() == 6 and x.is_floating_point() and not fg.tensor([1]).is_floating_point()
    b = fg.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(b.mT.numpy(), np.swapaxes(np.arange(24).reshape(2, 3, 4), -1, -2))
    np.testing.assert_array_equal(b[0].H.numpy(), np.arange(12).reshape(3, 4).T)
    assert b.mH.shape == (2, 4, 3)
    with pytest.raises(fg.ShapeError, match="mT"):
        _ = fg.ones(3).mT


def test_index_put(device):
    """PyTorch 2.15's answers: the later of two values for one position stays (the sum
    with accumulate); every value gets the gradient of the position it names."""
    x = fg.zeros(3, 4).to(device)
    i = (fg.tensor([0, 2, 0]), fg.tensor([1, 3, 1]))
    want = np.zeros((3, 4))
    want[0, 1], want[2, 3] = 3.0, 2.0
    _close(fg.index_put(x, i, fg.tensor([1.0, 2.0, 3.0]).to(device)), want)
    acc = np.zeros((3, 4))
    acc[0, 1], acc[2, 3] = 10.0, 5.0
    _close(x.index_put(i, fg.tensor(5.0).to(device), accumulate=True), acc)
    assert x.index_put_(i, fg.tensor([1.0, 2.0, 3.0]).to(device), accumulate=True) is x
    _close(x, [[0, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2]])
    a = fg.zeros(3, 4, requires_grad=True)
    v = fg.tensor([1.0, 2.0, math.inf], requires_grad=True)
    y = fg.index_put(a, i, v)
    assert np.isinf(y.detach().numpy()[0, 1]) and not np.isnan(y.detach().numpy()).any()
    (y * fg.arange(12.0).reshape(3, 4)).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [1.0, 11.0, 1.0])
    np.testing.assert_array_equal(a.grad.numpy(), np.where(want != 0, 0.0, np.arange(12.0).reshape(3, 4)))
