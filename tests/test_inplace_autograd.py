"""In-place writes inside the graph, as PyTorch records them.

A write into a tensor that is part of the graph (a result of an op, a view of one, or a
buffer written with a value that requires grad) is recorded: the tensor's history, and
its base's when it is a view, becomes "the old history except where written, the value
where written" (PyTorch's CopySlices). A rule that saved values the write replaces refuses
at backward, as PyTorch's version counter does; leaves that require grad are still refused.
Each case: the forward against NumPy, the gradient against central differences (float64).
"""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg

RNG = np.random.default_rng(7)
X0 = RNG.standard_normal((3, 4))
WEIGHT = RNG.standard_normal((3, 4))


def _numeric_grad(f, x0: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x0)
    for i in np.ndindex(x0.shape):
        xp, xm = x0.copy(), x0.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def _f64(a, **kw) -> fg.Tensor:
    return fg.tensor(a, dtype=fg.float64, **kw)


# each case: (ferrograd build, NumPy reference of the same computation)
def _setitem_row(x):
    y = x * 2
    y[0] = 0
    return y


def _setitem_row_np(x):
    y = x * 2
    y[0] = 0
    return y


def _buffer(x):
    out = fg.zeros_like(x)
    out[1] = x[0] * 3
    out[:, 2] = x[:, 1].exp()
    return out


def _buffer_np(x):
    out = np.zeros((3, 4))
    out[1] = x[0] * 3
    out[:, 2] = np.exp(x[:, 1])
    return out


def _mask_through_view(x):
    y = x * 1.5
    col = y[:, 0]
    col[col > 0] = 0
    return y


def _mask_through_view_np(x):
    y = x * 1.5
    col = y[:, 0]
    col[col > 0] = 0
    return y


def _relu_(x):
    y = x + 0
    y.relu_()
    return y


def _relu_np(x):
    return np.maximum(x, 0)


def _stale_view(x):
    y = x * 2
    v = y[1]  # taken before the write: it must see the new values and their gradient
    y[1] = x[2]
    return y + v.reshape(1, 4)


def _stale_view_np(x):
    y = x * 2
    y[1] = x[2]
    return y + y[1].reshape(1, 4)


def _transposed_view(x):
    y = x * 2
    y.T[0] = x[:, 3]
    return y


def _transposed_view_np(x):
    y = x * 2
    y.T[0] = x[:, 3]
    return y


def _masked_fill_(x):
    y = x * 2
    y.masked_fill_(x > 0, 1.0)
    return y


def _masked_fill_np(x):
    return np.where(x > 0, 1.0, x * 2)


def _mul_self(x):
    y = x * 2
    y.mul_(x)  # mul's rule needs y's old values: kept by running it on a copy
    return y


def _mul_self_np(x):
    return x * 2 * x


def _chain(x):
    y = x.clone()
    y.add_(x.sin())
    y[2, 1:3] = x[0, :2] * x[1, :2]
    return y


def _chain_np(x):
    y = x + np.sin(x)
    y[2, 1:3] = x[0, :2] * x[1, :2]
    return y


def _bool_mask_values(x):
    out = fg.zeros_like(x)
    m = x > 0
    out[m] = x[m] * 3
    return out


def _bool_mask_values_np(x):
    out = np.zeros((3, 4))
    m = x > 0
    out[m] = x[m] * 3
    return out


def _view_of_view(x):
    y = x * 2
    z = y[1:]
    z[0, 0] = 5.0
    z.mul_(3)
    return y


def _view_of_view_np(x):
    y = x * 2
    z = y[1:]
    z[0, 0] = 5.0
    z *= 3
    return y


def _reshaped_view(x):
    y = x * 2
    y.view(12)[3:7] = x.view(12)[:4] ** 2
    return y


def _reshaped_view_np(x):
    y = x * 2
    y.reshape(12)[3:7] = x.reshape(12)[:4] ** 2
    return y


def _index_rows(x):
    y = x * 2
    y[fg.tensor([0, 2])] = x[fg.tensor([1, 1])] * 4
    return y


def _index_rows_np(x):
    y = x * 2
    y[[0, 2]] = x[[1, 1]] * 4
    return y


def _fill(x):
    y = x * 1
    y.fill_(3.0)
    return y + x


def _fill_np(x):
    return 3.0 + x


def _copy(x):
    y = x * 1
    y.copy_(x.cos())
    return y


def _copy_np(x):
    return np.cos(x)


def _exp_(x):
    y = x * 2
    y.exp_()
    return y


def _exp_np(x):
    return np.exp(x * 2)


def _augmented(x):
    y = x * 2
    alias, tail = y, y[1:]
    y += x * x  # in place: the alias and the view see it, and their gradients follow
    y *= 3
    return alias + tail.sum(0)


def _augmented_np(x):
    y = (x * 2 + x * x) * 3
    return y + y[1:].sum(0)


def _after_sine(x):
    y = (x * 1).sin()  # sin's rule reads its input, not its output: writing y is fine
    y += 1
    y /= 2
    return y


def _after_sine_np(x):
    return (np.sin(x) + 1) / 2


def _input_after_relu(x):
    h = x * 1
    y = h.relu()  # relu's rule reads its output: writing its input is fine
    h -= 5
    return y * h


def _input_after_relu_np(x):
    return np.maximum(x, 0) * (x - 5)


CASES = {
    "augmented_assignment": (_augmented, _augmented_np),
    "write_after_sine": (_after_sine, _after_sine_np),
    "write_input_after_relu": (_input_after_relu, _input_after_relu_np),
    "setitem_row": (_setitem_row, _setitem_row_np),
    "buffer_written_with_grad": (_buffer, _buffer_np),
    "mask_through_view": (_mask_through_view, _mask_through_view_np),
    "relu_": (_relu_, _relu_np),
    "stale_view": (_stale_view, _stale_view_np),
    "transposed_view": (_transposed_view, _transposed_view_np),
    "masked_fill_": (_masked_fill_, _masked_fill_np),
    "mul_self": (_mul_self, _mul_self_np),
    "chain": (_chain, _chain_np),
    "bool_mask_values": (_bool_mask_values, _bool_mask_values_np),
    "view_of_view": (_view_of_view, _view_of_view_np),
    "reshaped_view": (_reshaped_view, _reshaped_view_np),
    "index_rows": (_index_rows, _index_rows_np),
    "fill_": (_fill, _fill_np),
    "copy_": (_copy, _copy_np),
    "exp_": (_exp_, _exp_np),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_gradient(name):
    build, ref = CASES[name]
    x = _f64(X0, requires_grad=True)
    y = build(x)
    np.testing.assert_allclose(y.numpy(), ref(X0.copy()), rtol=1e-12, atol=1e-12)
    (y * _f64(WEIGHT)).sum().backward()

    def value(a):
        return float((build(_f64(a)) * _f64(WEIGHT)).sum().item())

    np.testing.assert_allclose(x.grad.numpy(), _numeric_grad(value, X0), atol=1e-6)


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_matches_cpu(name):
    build, _ = CASES[name]
    x32 = X0.astype(np.float32)
    grads = []
    outs = []
    for device in ("cpu", "gpu"):
        x = fg.tensor(x32, requires_grad=True, device=device)
        y = build(x)
        outs.append(y.cpu().numpy())
        (y * fg.tensor(WEIGHT.astype(np.float32), device=device)).sum().backward()
        grads.append(x.grad.cpu().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-5)


def test_the_written_tensor_and_its_base_join_the_graph():
    x = _f64(X0, requires_grad=True)
    out = fg.zeros(3, 4, dtype=fg.float64)
    assert not out.requires_grad and out.is_leaf
    row = out[1]
    out[0] = x[0]
    assert out.requires_grad and not out.is_leaf
    assert out.grad_fn.name() == "CopySlices"
    # a view made before the write follows its base's new history
    assert row.requires_grad
    assert row._base is not None and row._base.shares_storage(out)


def test_a_rule_whose_saved_values_were_overwritten_refuses():
    x = _f64(X0, requires_grad=True)
    y = x.exp()  # exp's rule reads its output
    y[0] = 1.0
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_a_write_into_an_input_after_its_use_refuses_when_the_rule_reads_it():
    x = _f64(X0, requires_grad=True)
    h = x * 1
    z = h * x  # reads h for x's gradient
    h[0] = 0.0
    with pytest.raises(RuntimeError, match="MulBackward"):
        z.sum().backward()


def test_a_write_after_a_use_that_saved_nothing_is_fine():
    x = _f64(X0, requires_grad=True)
    h = x * 1
    z = h + 1  # add's rule reads no values
    h[0] = 0.0
    z.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 4)))


def test_leaves_that_require_grad_are_still_refused():
    x = _f64(X0, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        x[0] = 1.0
    with pytest.raises(RuntimeError, match="through a view"):
        x[1:][0] = 1.0
    with pytest.raises(RuntimeError, match="leaf"):
        x.exp_()
    with fg.no_grad():
        x[0] = 1.0  # the optimizer's way
    assert x.is_leaf and x.numpy()[0].tolist() == [1.0] * 4


def test_version_counts_writes_and_is_shared_with_views():
    t = fg.zeros(4)
    v = t[1:]
    assert t._version == v._version == 0
    t[0] = 1.0
    v.add_(1.0)
    assert t._version == v._version == 2
    assert v._base is not None and t._base is None
    assert t.clone()._version == 0


def test_custom_function_saved_tensors_check_versions():
    class Square(fg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, g):
            (a,) = ctx.saved_tensors
            return 2 * a * g

    x = _f64(X0, requires_grad=True)
    h = x * 1
    y = Square.apply(h)
    h[0] = 0.0
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_a_preallocated_output_trains_as_a_stack_would():
    """The RNN pattern: outputs written step by step into a zero buffer."""
    fg.manual_seed(0)
    cell = fg.nn.Linear(4, 4).double()
    x = _f64(RNG.standard_normal((5, 2, 4)))
    h = _f64(np.zeros((2, 4)))
    out = fg.zeros(5, 2, 4, dtype=fg.float64)
    for t in range(5):
        h = (cell(x[t]) + h).tanh()
        out[t] = h
    out.sum().backward()
    got = cell.weight.grad.numpy().copy()

    cell.zero_grad()
    h = _f64(np.zeros((2, 4)))
    steps = []
    for t in range(5):
        h = (cell(x[t]) + h).tanh()
        steps.append(h)
    fg.stack(steps).sum().backward()
    np.testing.assert_allclose(got, cell.weight.grad.numpy(), rtol=1e-12)


def test_retain_grad_follows_the_rewritten_tensor():
    x = _f64(X0, requires_grad=True)
    y = x * 2
    y.retain_grad()
    y[0] = 0.0
    assert y.retains_grad
    (y * _f64(WEIGHT)).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), WEIGHT)  # the gradient of what y holds now
    want = 2 * WEIGHT
    want[0] = 0.0
    np.testing.assert_allclose(x.grad.numpy(), want)


def test_augmented_assignment_is_in_place_for_graph_tensors():
    """`y += v` on a tensor in the graph writes in place, as PyTorch's: other names and
    views of y see it (it used to rebind y to a new tensor)."""
    x = _f64([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    alias, view = y, y[1:]
    y += _f64([1.0, 1.0, 1.0])
    assert alias is y
    np.testing.assert_array_equal(view.detach().numpy(), [5.0, 7.0])
    assert y._version == alias._version > 0


@pytest.mark.parametrize(
    "op, fine",
    [
        ("exp", False),
        ("sigmoid", False),
        ("tanh", False),
        ("relu", False),
        ("sqrt", False),
        ("sin", True),
        ("log", True),
        ("abs", True),
        ("gelu", True),
    ],
)
def test_a_write_into_an_activations_output_refuses_only_where_its_rule_reads_it(op, fine):
    """PyTorch's rules save the output for exp, sigmoid, tanh, relu and sqrt and the input
    for sin, log, abs and gelu: writing the output after the op breaks the first only."""
    x = _f64([0.5, 1.0, 2.0], requires_grad=True)
    y = getattr(fg, op)(x * 1)
    y += 1
    if fine:
        y.sum().backward()
        assert x.grad is not None
    else:
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            y.sum().backward()


def test_a_create_graph_pass_checks_the_input_an_output_rule_does_not_save():
    """exp's first-order rule reads its output only, its recorded (create_graph) rule its
    input: writing the input after exp refuses there instead of differentiating stale
    values."""
    x = _f64([0.5, 1.0], requires_grad=True)
    h = x * 1
    y = h.exp()
    h += 1
    (g,) = fg.autograd.grad(y.sum(), x, retain_graph=True)  # first order: fine
    np.testing.assert_allclose(g.numpy(), np.exp([0.5, 1.0]))
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        fg.autograd.grad(y.sum(), x, create_graph=True)
