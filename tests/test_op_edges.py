"""Wrong answers found by running a peer framework's op tests against ferrograd (issue 16),
each fixed and pinned here with PyTorch's documented behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import gradcheck

F = fg.nn.functional
rng = np.random.default_rng(3)


def _log_softmax(a, axis):
    m = a.max(axis=axis, keepdims=True)
    return a - m - np.log(np.exp(a - m).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4), (2, 3, 2, 2), (3,)])
def test_cross_entropy_classes_are_dim_1_for_probability_and_index_targets(shape, device):
    """torch.nn.functional.cross_entropy: input (C), (N, C) or (N, C, d1, ...); the class
    dimension is 1 (0 when unbatched), with class-index targets (N, d1, ...) or class
    probabilities shaped as the input."""
    x = rng.standard_normal(shape).astype(np.float32)
    cdim = 1 if len(shape) > 1 else 0
    p = rng.dirichlet(np.ones(shape[cdim]), size=int(np.prod(shape)) // shape[cdim])
    p = np.moveaxis(p.reshape(*[s for i, s in enumerate(shape) if i != cdim], shape[cdim]), -1, cdim)
    ls = _log_softmax(x.astype(np.float64), cdim)
    got = F.cross_entropy(fg.tensor(x).to(device), fg.tensor(p.astype(np.float32)).to(device)).item()
    assert got == pytest.approx(-(p * ls).sum(axis=cdim).mean(), rel=1e-5)
    labels = rng.integers(0, shape[cdim], [s for i, s in enumerate(shape) if i != cdim])
    want = -np.take_along_axis(ls, np.expand_dims(labels, cdim), cdim).squeeze(cdim)
    xt, lt = fg.tensor(x).to(device), fg.tensor(labels)
    assert F.cross_entropy(xt, lt).item() == pytest.approx(want.mean(), rel=1e-5)
    none = F.cross_entropy(xt, lt, reduction="none")
    assert tuple(none.shape) == tuple(labels.shape)
    np.testing.assert_allclose(none.numpy(), want, rtol=1e-5)
    # nll_loss on log-probabilities, weight and ignore_index included
    if len(shape) > 2:
        w = np.array([0.5, 2.0, 1.0])
        lab = labels.copy()
        lab.flat[0] = -100
        keep = lab != -100
        safe = np.where(keep, lab, 0)
        picked = -np.take_along_axis(ls, np.expand_dims(safe, 1), 1).squeeze(1) * w[safe] * keep
        got = F.cross_entropy(xt, fg.tensor(lab), weight=fg.tensor(w.astype(np.float32))).item()
        assert got == pytest.approx(picked.sum() / (w[safe] * keep).sum(), rel=1e-5)
    with pytest.raises(fg.ShapeError, match="classes along dim 1"):
        F.cross_entropy(
            fg.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32)),
            fg.tensor(np.zeros((2, 3), np.int64)),
        )


def test_losses_give_a_target_that_requires_grad_its_gradient():
    """PyTorch differentiates these losses with respect to the target as well (soft targets
    produced by another network train that way); float64 finite differences."""
    logits = fg.tensor(rng.standard_normal((4, 3)))
    probs = fg.tensor(rng.dirichlet(np.ones(3), size=4), requires_grad=True)
    assert gradcheck(lambda t: F.cross_entropy(logits, t), [probs])
    assert gradcheck(lambda t: F.cross_entropy(logits, t, label_smoothing=0.1), [probs])
    t = fg.tensor(rng.uniform(0.1, 0.9, (4, 3)), requires_grad=True)
    assert gradcheck(lambda t: F.binary_cross_entropy_with_logits(logits, t), [t])
    p = fg.tensor(rng.uniform(0.1, 0.9, (4, 3)))
    assert gradcheck(lambda t: F.binary_cross_entropy(p, t), [t])
    y = fg.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    for fn in (F.mse_loss, F.l1_loss, F.huber_loss, F.smooth_l1_loss):
        assert gradcheck(lambda t, fn=fn: fn(logits, t), [y])
    # d/dt of BCE-with-logits is -logit / n
    t2 = fg.tensor([0.3, 0.9], requires_grad=True)
    F.binary_cross_entropy_with_logits(fg.tensor([0.5, -1.0]), t2).backward()
    np.testing.assert_allclose(t2.grad.numpy(), [-0.25, 0.5])


def test_var_and_std_with_correction_at_least_n_or_an_empty_dim():
    """torch.var: sum((x - mean)^2) / max(0, N - correction): inf where that is 0 (nan for a
    constant or empty slice), never a negative variance."""
    x = fg.tensor([1.0, 2.0])
    assert x.var(correction=5).item() == np.inf and x.var(correction=2).item() == np.inf
    assert x.std(correction=3).item() == np.inf
    assert np.isnan(fg.tensor([1.0, 1.0]).var(correction=2).item())
    assert np.isnan(fg.zeros(0).var().item())
    assert np.isnan(fg.zeros(3, 0).var(1).numpy()).all() and fg.zeros(3, 0).var(1).shape == (3,)


@pytest.mark.parametrize(
    "a,b,ga,gb",
    [
        (0.0, 0.0, 0.0, 0.0),  # d/dx x^0 = 0 everywhere; d/dy 0^y = 0 for y >= 0
        (0.0, 1.0, 1.0, 0.0),
        (0.0, 2.0, 0.0, 0.0),
        (0.0, 0.5, np.inf, 0.0),
        (2.0, 0.0, 0.0, np.log(2.0)),
        (2.0, 3.0, 12.0, 8 * np.log(2.0)),
    ],
)
def test_pow_derivatives_at_base_zero_follow_pytorch(a, b, ga, gb, device):
    x = fg.tensor([a], requires_grad=True)
    y = fg.tensor([b], requires_grad=True)
    (x.to(device) ** y.to(device)).sum().backward()
    assert x.grad.item() == pytest.approx(ga) and y.grad.item() == pytest.approx(gb)


def test_pow_with_a_number_on_either_side_at_zero():
    x = fg.tensor([0.0, 1.0], requires_grad=True)
    (x**0).sum().backward()
    assert x.grad.numpy().tolist() == [0.0, 0.0]
    z = fg.tensor([0.0, 1.0, 2.5], requires_grad=True)
    (0**z).sum().backward()  # 0^z is constant for z >= 0
    assert z.grad.numpy().tolist() == [0.0, 0.0, 0.0]


def test_integer_powers_and_other_refusals():
    """PyTorch refuses an integer tensor to a negative Python integer; an exponent tensor
    with negatives gives integer powers' truncated values ([2] ** [1, -1] is [2, 0];
    PyTorch 2.15 on the same call)."""
    with pytest.raises(ValueError, match="integers to negative integer powers are not allowed"):
        fg.tensor([2, 3]) ** -2
    y = fg.tensor([2]) ** fg.tensor([1, -1])
    assert y.dtype == fg.int64 and y.numpy().tolist() == [2, 0]
    assert (fg.tensor([-1, 1, 2, 0]) ** fg.tensor([-1])).numpy().tolist() == [-1, 1, 0, 0]
    assert (fg.tensor([2]) ** -2.0).item() == 0.25  # a float exponent is fine
    with pytest.raises(fg.DTypeError, match="linspace: bool"):
        fg.linspace(0, 1, 3, dtype=fg.bool_)
    with pytest.raises(IndexError, match="squeeze: dim 10 is out of range"):
        fg.tensor(1.0).squeeze(10)


def test_clamp_with_min_above_max_and_maximum_of_bools():
    """torch.clamp(x, min, max) = min(max(x, min), max): max everywhere when min > max;
    torch.maximum of two bool tensors is bool."""
    assert fg.tensor([1.0, 5.0, 2.5]).clamp(3, 2).numpy().tolist() == [2.0, 2.0, 2.0]
    m = fg.maximum(fg.tensor([True, False]), fg.tensor([False, False]))
    assert m.dtype == fg.bool_ and m.numpy().tolist() == [True, False]
    assert fg.minimum(fg.tensor([True, False]), fg.tensor([True, True])).dtype == fg.bool_


def test_shape_error_is_a_runtime_error_too():
    """PyTorch raises RuntimeError for shape mismatches; ShapeError stays a ValueError and is
    a RuntimeError as well, so ported `except RuntimeError` code catches it."""
    assert issubclass(fg.ShapeError, ValueError) and issubclass(fg.ShapeError, RuntimeError)
    for bad in (
        lambda: fg.ones(2, 3) @ fg.ones(2, 3),
        lambda: fg.ones(2, 3).permute(0),
        lambda: fg.ones(2, 3).reshape(4),
        lambda: fg.ones(2, 3).gather(1, fg.zeros(3, 3, dtype=fg.int64)),
    ):
        with pytest.raises(RuntimeError):
            bad()


def test_sum_and_mean_take_a_dtype():
    """torch.sum(x, dtype=...) casts before reducing: bools sum as int64, float32 in float64."""
    b = fg.tensor([True, True, False])
    assert b.sum(dtype=fg.int64).item() == 2 and b.sum(dtype=fg.int64).dtype == fg.int64
    x = fg.tensor([1e8, 1.0, -1e8], dtype=fg.float32)
    assert x.sum(dtype=fg.float64).dtype == fg.float64
    assert fg.sum(fg.tensor([[1, 2], [3, 4]]), 1, dtype=fg.float32).numpy().tolist() == [3.0, 7.0]
    assert fg.mean(fg.tensor([1, 2]), dtype=fg.float64).item() == 1.5


# --- found by a differential run against PyTorch 2.15 (stop 23): each pinned with the
# result PyTorch gives on the same call


def test_scatter_and_index_copy_keep_the_last_write_where_an_index_repeats(device):
    """torch.scatter / index_copy write in index order on the CPU: a repeated position holds
    the later entry (a scalar value stays itself, it is not added up). Their backward
    gathers the gradient for every entry, so an overwritten entry gets its position's
    gradient too (PyTorch 2.15: [[1, 1]] here; stop 23 pinned [[0, 1]], which was not
    PyTorch's answer)."""
    z = fg.zeros(1, 3, device=device)
    np.testing.assert_array_equal(z.scatter(1, fg.tensor([[0, 0]]).to(device), 5.0).numpy(), [[5, 0, 0]])
    src = fg.tensor([[1.0, 2.0]], device=device, requires_grad=True)
    y = z.scatter(1, fg.tensor([[0, 0]]).to(device), src)
    np.testing.assert_array_equal(y.numpy(), [[2, 0, 0]])
    (y * fg.tensor([[3.0, 5.0, 7.0]], device=device)).sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [[3, 3]])
    s = fg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device=device, requires_grad=True)
    out = fg.zeros(2, 3, device=device).index_copy(1, fg.tensor([2, 0, 2]).to(device), s)
    np.testing.assert_array_equal(out.detach().numpy(), [[2, 0, 3], [5, 0, 6]])
    (out * fg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device=device)).sum().backward()
    np.testing.assert_array_equal(s.grad.numpy(), [[3, 1, 3], [6, 4, 6]])


@pytest.mark.parametrize("shape,dim", [((3,), 0), ((2, 3), 1), ((2, 1, 3), 0), ((2, 2, 2, 2), 1)])
def test_softmax_without_dim_takes_pytorchs_implicit_dim_and_warns(shape, dim):
    """torch.nn.functional.softmax(x) with no dim: dim 0 for 0-, 1- and 3-D input, else 1,
    and a deprecation warning; likewise log_softmax, softmin and the modules."""
    x = fg.tensor(rng.standard_normal(shape).astype(np.float32))
    for f, ref in (
        (F.softmax, lambda: x.softmax(dim)),
        (F.log_softmax, lambda: x.log_softmax(dim)),
        (F.softmin, lambda: (-x).softmax(dim)),
        (fg.nn.Softmax(), lambda: x.softmax(dim)),
        (fg.nn.LogSoftmax(), lambda: x.log_softmax(dim)),
    ):
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            got = f(x)
        np.testing.assert_allclose(got.numpy(), ref().numpy(), rtol=1e-6)


def test_onnx_export_asks_for_a_softmax_dim():
    pytest.importorskip("onnx")
    import ferrograd.onnx  # noqa: PLC0415

    m = fg.nn.Sequential(fg.nn.Linear(3, 2), fg.nn.Softmax())
    with pytest.raises(ValueError, match="without dim"):
        ferrograd.onnx.export(m, np.zeros((1, 3), np.float32), "/nonexistent/never-written.onnx")


def test_interpolate_scale_factor_keeps_a_dim_whose_size_stays(device):
    """PyTorch's upsampling kernels copy a dim whose output size equals its input size, and
    nearest halves the index where a size exactly doubles, whatever scale_factor says."""
    x = fg.arange(12.0).reshape(1, 1, 3, 4).to(device)
    np.testing.assert_array_equal(
        F.interpolate(x, scale_factor=1.3, mode="nearest")[0, 0, :, 0].numpy(), [0, 4, 8]
    )
    np.testing.assert_array_equal(
        F.interpolate(x, scale_factor=2.1, mode="nearest")[0, 0, :, 0].numpy(), [0, 0, 4, 4, 8, 8]
    )
    y = F.interpolate(x, scale_factor=1.3, mode="bilinear")[0, 0].numpy()
    np.testing.assert_allclose(y[:, 0], [0, 4, 8])
    np.testing.assert_allclose(y[0], [0.0, 0.653846, 1.423077, 2.192308, 2.961538], rtol=1e-5)
    # bilinear has no doubling rule: 1 / 2.1 maps the rows (PyTorch: 0.8571 at row 1)
    np.testing.assert_allclose(
        F.interpolate(x, scale_factor=2.1, mode="bilinear")[0, 0, :, 0].numpy(),
        [0, 0.857143, 2.761905, 4.666667, 6.571429, 8],
        rtol=1e-5,
    )


def test_attention_row_with_nothing_to_attend_is_zero_not_nan(device):
    """scaled_dot_product_attention: a query whose mask keeps no key gets zeros (PyTorch's
    CPU result), and no NaN reaches the gradients."""
    q = fg.ones(1, 2, 2, device=device, requires_grad=True)
    v = fg.ones(1, 2, 2, device=device, requires_grad=True)
    mask = fg.tensor([[False, False], [True, True]]).to(device)
    o = F.scaled_dot_product_attention(q, fg.ones(1, 2, 2, device=device), v, attn_mask=mask)
    np.testing.assert_array_equal(o.numpy(), [[[0, 0], [1, 1]]])
    o.sum().backward()
    assert np.isfinite(q.grad.numpy()).all() and np.isfinite(v.grad.numpy()).all()
    np.testing.assert_array_equal(v.grad.numpy(), [[[0.5, 0.5], [0.5, 0.5]]])
    additive = fg.tensor([[-np.inf, -np.inf], [0.0, 0.0]]).to(device)
    o2 = F.scaled_dot_product_attention(
        fg.ones(1, 2, 2, device=device), fg.ones(1, 2, 2, device=device), v, attn_mask=additive
    )
    np.testing.assert_array_equal(o2.numpy()[0, 0], [0, 0])


def test_binary_cross_entropy_gradients_at_zero_and_one():
    """PyTorch's BCE clamps each log at -100 and its input gradient is (p - t) / max(p (1 -
    p), 1e-12): finite at p = 0 and 1 (the composed clamp gave NaN); the target's is
    log(1 - p) - log(p)."""
    p = fg.tensor([0.0, 1.0, 0.0, 0.3], requires_grad=True)
    t = fg.tensor([0.0, 1.0, 1.0, 0.5], requires_grad=True)
    loss = F.binary_cross_entropy(p, t, reduction="sum")
    np.testing.assert_allclose(loss.item(), 100 + -(0.5 * np.log(0.3) + 0.5 * np.log(0.7)), rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(p.grad.numpy(), [0, 0, -1e12, (0.3 - 0.5) / 0.21], rtol=1e-5)
    np.testing.assert_array_equal(t.grad.numpy()[:3], [np.inf, -np.inf, np.inf])
    a = fg.tensor([0.2, 0.7], dtype=fg.float64, requires_grad=True)
    b = fg.tensor([0.1, 0.9], dtype=fg.float64, requires_grad=True)
    assert gradcheck(lambda x, y: F.binary_cross_entropy(x, y), (a, b))


def test_integer_ops_stay_integers_exactly():
    """PyTorch keeps integer dtypes through clamp, relu, matmul/dot/linear, integer powers
    and cumsum/cumprod (int64 for narrow ints), exactly: float32 would round past 2**24."""
    big = 2**40 + 1
    y = fg.tensor([big, -5]).clamp(0, 2**41)
    assert y.dtype == fg.int64 and y.numpy().tolist() == [big, 0]
    assert fg.tensor([5, 1], dtype=fg.int32).clamp(max=3).dtype == fg.int32
    assert fg.tensor([1]).clamp(0.5).dtype == fg.float32  # a float bound makes floats
    b = fg.tensor([True, False]).clamp(0, 3)
    assert b.dtype == fg.int64 and b.numpy().tolist() == [1, 0]
    r = F.relu(fg.tensor([2**25 + 1, -3]))
    assert r.dtype == fg.int64 and r.numpy().tolist() == [2**25 + 1, 0]
    m = fg.tensor([[2**25 + 1, 1]]) @ fg.tensor([[1], [2]])
    assert m.dtype == fg.int64 and m.numpy().tolist() == [[2**25 + 3]]
    d = fg.tensor([2**25 + 1]).dot(fg.tensor([1]))
    assert d.dtype == fg.int64 and d.item() == 2**25 + 1
    bm = fg.tensor(np.arange(12).reshape(2, 2, 3)) @ fg.tensor(np.arange(3))
    np.testing.assert_array_equal(bm.numpy(), np.arange(12).reshape(2, 2, 3) @ np.arange(3))
    lin = F.linear(fg.tensor([[1, 2]]), fg.tensor([[3, 4]]), fg.tensor([5]))
    assert lin.dtype == fg.int64 and lin.numpy().tolist() == [[16]]
    p = fg.tensor([2**13 + 1]) ** 2
    assert p.dtype == fg.int64 and p.item() == (2**13 + 1) ** 2
    u = fg.tensor([200], dtype=fg.uint8) ** 2
    assert u.dtype == fg.uint8 and u.item() == 64  # 40000 wraps, as uint8 does
    c = fg.tensor([2**25, 1], dtype=fg.int32).cumsum(0)
    assert c.dtype == fg.int64 and c.numpy().tolist() == [2**25, 2**25 + 1]
    assert fg.tensor([2, 3], dtype=fg.uint8).cumprod(0).dtype == fg.int64
    assert fg.tensor([1, 2, 3], dtype=fg.uint8).prod().item() == 6
    assert fg.tensor([1.5, 2.5]).cumsum(0, dtype=fg.float64).dtype == fg.float64
    with pytest.raises(fg.DTypeError, match="bool"):
        fg.tensor([True]) @ fg.tensor([True])


def test_clamp_takes_tensor_bounds(device):
    """torch.clamp with tensor bounds (broadcast), min > max giving max, in place too."""
    x = fg.tensor([[-1.0, 0.5, 3.0], [2.0, -2.0, 0.0]], device=device)
    lo = fg.tensor([0.0, 0.0, 1.0], device=device)
    hi = fg.tensor([[0.5], [1.0]], device=device)
    np.testing.assert_array_equal(
        x.clamp(lo, hi).numpy(), np.minimum(np.maximum(x.numpy(), lo.numpy()), hi.numpy())
    )
    np.testing.assert_array_equal(fg.clamp(x, min=lo).numpy(), np.maximum(x.numpy(), lo.numpy()))
    y = x.clone()
    y.clamp_(max=hi)
    np.testing.assert_array_equal(y.numpy(), np.minimum(x.numpy(), hi.numpy()))
    with pytest.raises(ValueError, match="at least one"):
        x.clamp()


def test_bool_arithmetic_stays_bool():
    """PyTorch: bool + bool is their or, bool * bool their and (bool results); bool - bool
    is refused; a Python int operand makes int64."""
    a, b = fg.tensor([True, False, False]), fg.tensor([True, True, False])
    s = a + b
    assert s.dtype == fg.bool_ and s.numpy().tolist() == [True, True, False]
    p = a * b
    assert p.dtype == fg.bool_ and p.numpy().tolist() == [True, False, False]
    assert (a + True).dtype == fg.bool_
    assert (a + 1).dtype == fg.int64 and (a + 1).numpy().tolist() == [2, 1, 1]
    with pytest.raises(fg.DTypeError, match="cannot be subtracted"):
        a - b


@pytest.mark.parametrize("offset", [0, 1, -2, 5])
def test_diagonal_is_a_view(offset, device):
    """torch.diagonal is a view: x.diagonal().fill_(0) zeroes x's diagonal, and a view
    taken before sees later writes to x; values, gradients and empty diagonals as NumPy's."""
    a = rng.standard_normal((2, 4, 5)).astype(np.float32)
    x = fg.tensor(a, device=device)
    d = x.diagonal(offset, 1, 2)
    np.testing.assert_array_equal(d.numpy(), np.diagonal(a, offset, 1, 2))
    d.fill_(0.0)
    want = a.copy()
    i = np.arange(4)[:, None]
    j = np.arange(5)[None, :]
    want[:, (j - i) == offset] = 0
    np.testing.assert_array_equal(x.numpy(), want)
    x.add_(1.0)
    np.testing.assert_array_equal(d.numpy(), np.diagonal(want + 1, offset, 1, 2))
    t = fg.tensor(a.astype(np.float64), requires_grad=True)
    assert gradcheck(lambda v: (v.diagonal(offset, -1, 1) * 1.5).sum(), (t,))
    assert gradcheck(lambda v: v.diagonal(offset, 2, 0), (t,))


@pytest.mark.parametrize("size,step", [(2, 2), (3, 1), (2, 3), (0, 1), (5, 2)])
def test_unfold_is_a_view(size, step, device):
    """Tensor.unfold is a view (writes through it reach the tensor); overlapping windows'
    gradients add up."""
    x = fg.zeros(2, 5, device=device)
    w = x.unfold(1, size, step)
    count = (5 - size) // step + 1
    assert tuple(w.shape) == (2, count, size)
    if step >= size or size <= 1 or count == 1:
        w.add_(1.0)
        covered = np.zeros(5)
        for k in range(count):
            covered[k * step : k * step + size] = 1
        np.testing.assert_array_equal(x.numpy(), np.broadcast_to(covered, (2, 5)))
    else:
        # overlapping windows: an in-place write would meet itself; refused
        with pytest.raises(ValueError, match="share memory"):
            w.add_(1.0)
    a = rng.standard_normal((3, 5))
    t = fg.tensor(a, requires_grad=True)
    assert gradcheck(lambda v: (v.unfold(1, size, step) ** 2).sum(), (t,))
    np.testing.assert_array_equal(
        fg.tensor(a).unfold(1, size, step).numpy(),
        np.lib.stride_tricks.sliding_window_view(a, size, axis=1)[:, ::step],
    )


def test_diag_of_a_matrix_is_a_copy():
    x = fg.ones(3, 3)
    d = fg.diag(x)
    d.fill_(5.0)
    assert x.sum().item() == 9.0


def test_max_along_a_dim_gives_the_gradient_to_the_returned_index(device):
    """torch.max(x, dim): the values' gradient goes to the returned index alone, at a tie
    (the first) and at a NaN (the NaN's own entry), not split or NaN across the row."""
    x = fg.tensor([[1.0, np.nan, 3.0], [2.0, 2.0, 1.0]], device=device, requires_grad=True)
    v, i = x.max(1)
    assert i.numpy().tolist() == [1, 0]
    v.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])
    y = fg.tensor([[4.0, 1.0, 4.0]], device=device, requires_grad=True)
    y.min(1, keepdim=True).values.sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [[0, 1, 0]])


def test_sign_tanh_and_hardswish_at_their_edges(device):
    """PyTorch: sign(NaN) is 0 ((0 < x) - (x < 0)); tanh keeps -0.0; hardswish's gradient is
    0 at x = -3 and 1 at x = 3 (its backward's bounds are x <= -3 and x < 3)."""
    s = fg.tensor([np.nan, -2.0, 0.0, 3.0], device=device).sign()
    np.testing.assert_array_equal(s.numpy(), [0, -1, 0, 1])
    assert np.signbit(fg.tensor([-0.0], device=device).tanh().numpy()[0])
    x = fg.tensor([-3.0, 3.0, 0.0], device=device, requires_grad=True)
    F.hardswish(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 1.0, 0.5])


def test_unique_keeps_each_nan_and_takes_dim():
    """torch.unique: NaNs are not equal to each other, so each stays; dim= gives the unique
    slices along a dim (sorted), with inverse indices and counts."""
    u = fg.unique(fg.tensor([1.0, np.nan, 1.0, np.nan]))
    assert u.numpy()[0] == 1.0 and np.isnan(u.numpy()[1:]).all() and u.shape[0] == 3
    x = fg.tensor([[1, 2], [0, 5], [1, 2]])
    vals, inv, counts = fg.unique(x, dim=0, return_inverse=True, return_counts=True)
    assert vals.numpy().tolist() == [[0, 5], [1, 2]]
    assert inv.numpy().tolist() == [1, 0, 1] and counts.numpy().tolist() == [1, 2]


def test_embedding_refuses_negative_indices_and_arange_a_backward_step():
    """PyTorch: F.embedding(-1) is 'index out of range' (not the last row); arange whose
    step points away from its end is refused (not an empty tensor)."""
    w = fg.randn(3, 2)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(fg.tensor([0, -1]), w)
    with pytest.raises(ValueError, match="points away"):
        fg.arange(0, 5, -1)
    assert fg.arange(5, 5, -1).shape[0] == 0 and fg.arange(5, 0, -2).numpy().tolist() == [5, 3, 1]


def test_pytorch_method_overloads_max_other_squeeze_tuple_and_variadic_flip():
    """x.max(other)/x.min(other) are the elementwise maximum/minimum; squeeze takes a tuple
    of dims (squeezing those of size 1); flip takes its dims one by one or as dims=."""
    a, b = fg.tensor([1.0, 5.0]), fg.tensor([3.0, 2.0])
    assert a.max(b).numpy().tolist() == [3.0, 5.0] and a.min(b).numpy().tolist() == [1.0, 2.0]
    x = fg.zeros(1, 3, 1, 2)
    assert tuple(x.squeeze((0, 2)).shape) == (3, 2)
    assert tuple(x.squeeze((0, 1)).shape) == (3, 1, 2)  # dim 1 has size 3: kept
    assert tuple(x.squeeze([-1, -2]).shape) == (1, 3, 2)
    y = fg.arange(8.0).reshape(2, 2, 2)
    want = np.flip(np.arange(8.0).reshape(2, 2, 2), (0, 2))
    np.testing.assert_array_equal(y.flip(0, 2).numpy(), want)
    np.testing.assert_array_equal(y.flip((0, 2)).numpy(), want)
    np.testing.assert_array_equal(fg.flip(y, dims=[0, 2]).numpy(), want)


def test_integer_scatters_and_int32_indices():
    """PyTorch sums integer sources exactly (wrapping) in scatter_add/index_add, and takes
    int32 indices in gather, index_select, scatters and embedding (take_along_dim stays
    int64-only, as PyTorch's)."""
    x = fg.zeros(5, dtype=fg.int64)
    i = fg.tensor([1, 1, 3])
    big = 2**40 + 1  # past float32's 2**24: a float path would round it
    src = fg.tensor([big, 2, 3])
    np.testing.assert_array_equal(fg.scatter_add(x, 0, i, src).numpy(), [0, big + 2, 0, 3, 0])
    np.testing.assert_array_equal(fg.index_add(x, 0, i, src).numpy(), [0, big + 2, 0, 3, 0])
    got = fg.index_add(
        fg.zeros(2, 3, dtype=fg.int32), 1, fg.tensor([2, 2]).int(), fg.ones(2, 2, dtype=fg.int32)
    )
    assert got.dtype == fg.int32
    np.testing.assert_array_equal(got.numpy(), [[0, 0, 2], [0, 0, 2]])
    u8 = fg.zeros(4, dtype=fg.uint8).index_add(0, fg.tensor([0, 0]), fg.tensor([200, 100]).to(fg.uint8))
    assert u8.numpy().tolist() == [44, 0, 0, 0]  # 300 wraps to 44, as PyTorch's uint8
    np.testing.assert_array_equal(
        fg.index_copy(fg.zeros(3, dtype=fg.int64), 0, fg.tensor([2]), fg.tensor([7])).numpy(), [0, 0, 7]
    )
    i32 = fg.tensor([2, 0]).int()
    t = fg.tensor([10.0, 20.0, 30.0], requires_grad=True)
    np.testing.assert_array_equal(t.gather(0, i32).detach().numpy(), [30.0, 10.0])
    np.testing.assert_array_equal(t.index_select(0, i32).detach().numpy(), [30.0, 10.0])
    t.index_select(0, i32).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(fg.zeros(3).scatter_add(0, i32, fg.ones(2)).numpy(), [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(fg.nn.functional.embedding(i32, fg.eye(3)).numpy(), np.eye(3)[[2, 0]])
    with pytest.raises(fg.DTypeError, match="indices must be int64 or int32, got float32"):
        t.index_select(0, fg.tensor([1.0]))
    with pytest.raises(fg.DTypeError, match="embedding: indices must be int64 or int32"):
        fg.nn.functional.embedding(fg.tensor([1.0]), fg.eye(3))


def test_second_differential_run_fixes(device):
    """PyTorch 2.15's answers on calls where a second differential run (stop 24) found
    ferrograd different."""
    # sign: a bool is its own sign; the result is tracked with a zero gradient
    assert fg.tensor([True, False]).sign().dtype == fg.bool_
    x = fg.ones(3, device=device, requires_grad=True)
    y = x.sign()
    assert y.requires_grad
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), [0.0, 0.0, 0.0])
    # all/any of uint8 give uint8 (PyTorch's documented exception)
    u = fg.tensor([3, 0]).to(fg.uint8)
    assert u.all().dtype == fg.uint8 and u.all().item() == 0 and u.any().item() == 1
    assert fg.zeros(0).to(fg.uint8).all().dtype == fg.uint8
    # copysign is floating even for integers
    c = fg.copysign(fg.tensor([1, -2]), -1)
    assert c.dtype == fg.float32 and c.numpy().tolist() == [-1.0, -2.0]
    # scatter_reduce "mean" on integers: floor division, the dtype kept
    m = fg.zeros(1, dtype=fg.int64).scatter_reduce(0, fg.tensor([0, 0]), fg.tensor([-1, 0]), "mean")
    assert m.dtype == fg.int64 and m.numpy().tolist() == [-1]
    # scatter's older reduce= spelling
    np.testing.assert_array_equal(
        fg.zeros(3).scatter(0, fg.tensor([0, 0, 2]), fg.tensor([1.0, 2.0, 3.0]), reduce="add").numpy(),
        [3, 0, 3],
    )
    np.testing.assert_array_equal(
        fg.ones(3).scatter(0, fg.tensor([0, 0, 2]), 2.0, reduce="multiply").numpy(), [4, 1, 2]
    )
    # isclose of bools, repeat_interleave of counts alone, unique_consecutive
    np.testing.assert_array_equal(
        fg.isclose(fg.tensor([True, False]), fg.tensor([True, True])).numpy(), [True, False]
    )
    assert fg.repeat_interleave(fg.tensor([2, 0, 3])).numpy().tolist() == [0, 0, 2, 2, 2]
    vals, inv, counts = fg.unique_consecutive(
        fg.tensor([1, 1, 2, 2, 3, 1, 1, 2]), return_inverse=True, return_counts=True
    )
    assert vals.numpy().tolist() == [1, 2, 3, 1, 2] and counts.numpy().tolist() == [2, 2, 1, 2, 1]
    assert inv.numpy().tolist() == [0, 0, 1, 1, 2, 3, 3, 4]
    # cat skips the legacy (0,) placeholder; prod and softmax take dtype=
    assert fg.cat([fg.ones(2, 3), fg.zeros(0)]).shape == (2, 3)
    p = fg.prod(fg.tensor([[1, 2], [3, 4]]), 1, dtype=fg.float64)
    assert p.dtype == fg.float64 and p.numpy().tolist() == [2.0, 12.0]
    assert F.softmax(fg.tensor([1.0, 2.0]), 0, dtype=fg.float64).dtype == fg.float64
    # nn.utils.parameters_to_vector / vector_to_parameters
    lin = fg.nn.Linear(3, 2)
    v = fg.nn.utils.parameters_to_vector(lin.parameters())
    assert v.shape == (8,) and v.requires_grad
    fg.nn.utils.vector_to_parameters(fg.arange(8.0), lin.parameters())
    assert lin.weight.detach().numpy().tolist() == [
        [0, 1, 2],
        [3, 4, 5],
    ] and lin.bias.detach().numpy().tolist() == [6, 7]


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.max(0),
        lambda t: t.amax(0),
        lambda t: t.amin(0),
        lambda t: t.argmax(0),
        lambda t: t.argmin(0),
        lambda t: t.reshape(-1).max(),
    ],
    ids=["max_dim", "amax", "amin", "argmax", "argmin", "max_all"],
)
def test_a_max_over_an_empty_dim_is_both_numpys_and_pytorchs_error(call):
    """NumPy raises ValueError (no identity), PyTorch IndexError ("Expected reduction dim 0
    to have non-zero size"): EmptyReductionError is both, and an ArgumentError."""
    t = fg.zeros(0, 3)
    for cls in (fg.EmptyReductionError, ValueError, IndexError, RuntimeError, fg.ArgumentError):
        with pytest.raises(cls, match="empty dim|zero-size dim"):
            call(t)
    assert t.amax(1).shape == (0,)  # over a nonempty dim of an empty tensor: fine


@pytest.mark.parametrize("op", ["floor_divide", "remainder"])
def test_integer_division_by_zero_is_both_pythons_and_pytorchs_error(op):
    """Python raises ZeroDivisionError, PyTorch RuntimeError ("ZeroDivisionError")."""
    a, b = fg.tensor([4, 5]), fg.tensor([2, 0])
    f = (lambda: a // b) if op == "floor_divide" else (lambda: a % b)
    for cls in (fg.IntegerDivisionError, ZeroDivisionError, RuntimeError):
        with pytest.raises(cls, match=f"{op}: integer division by zero"):
            f()
