"""Python inside the backward pass: `fg.autograd.Function` (PyTorch's custom autograd
functions), `Tensor.register_post_accumulate_grad_hook` and `fg.autograd.queue_callback`,
the engine pieces a data-parallel wrapper and a synchronized batch norm are built on."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import Function, gradcheck


class Cube(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * x * scale

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * ctx.scale * g, None


class MulAdd(Function):
    """a * b + c, gradients for each tensor."""

    @staticmethod
    def forward(ctx, a, b, c):
        ctx.save_for_backward(a, b)
        return a * b + c

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b, g * a, g


def test_a_function_gradchecks_in_float64_and_composes(device):
    x = fg.tensor(np.linspace(-1.5, 2.0, 7), dtype=fg.float64, requires_grad=True)
    assert gradcheck(lambda t: Cube.apply(t, 0.5), [x])
    a, b, c = (
        fg.tensor(np.random.default_rng(i).standard_normal((3, 4)), requires_grad=True) for i in range(3)
    )
    assert gradcheck(MulAdd.apply, [a, b, c])
    # inside a larger graph, on the device, the same numbers as the built-in ops
    xs = fg.tensor(np.linspace(-1.0, 1.0, 6).astype(np.float32), requires_grad=True)
    y = (Cube.apply(xs.to(device) * 2, 1.0).exp() * 0.1).sum()
    y.backward()
    want = 3 * (2 * xs.detach().numpy()) ** 2 * 2 * np.exp((2 * xs.detach().numpy()) ** 3) * 0.1
    np.testing.assert_allclose(xs.grad.numpy(), want, rtol=1e-4)
    assert type(y.grad_fn).__name__ != "NoneType"


def test_a_function_outside_grad_mode_and_its_errors():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    with fg.no_grad():
        assert Cube.apply(x, 1.0).grad_fn is None
    assert Cube.apply(fg.tensor([1.0]), 1.0).grad_fn is None  # nothing requires grad

    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(ValueError, match="TooFew.backward returned 1 gradients for 2 arguments"):
        TooFew.apply(x, x).sum().backward()

    class WrongShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    with pytest.raises(fg.ShapeError, match=r"WrongShapeBackward: backward returned a gradient of shape"):
        WrongShape.apply(x).sum().backward()

    class Raises(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            raise KeyError("from backward")

    with pytest.raises(KeyError, match="from backward"):  # the exception itself, not a RuntimeError
        Raises.apply(x).sum().backward()

    class NotATensor(Function):
        @staticmethod
        def forward(ctx, x):
            return 3

    with pytest.raises(TypeError, match="must return one Tensor"):
        NotATensor.apply(x)


def test_post_accumulate_grad_hooks_run_once_the_gradient_is_final():
    w = fg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seen = []
    h = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    # w is used twice (a tied weight): the hook runs once, with the sum of both parts
    ((w * 2).sum() + (w * w).sum()).backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], 2 + 2 * np.array([1.0, 2.0, 3.0]))
    # gradients accumulate across passes; the hook sees each pass's final value
    (w * 3).sum().backward()
    np.testing.assert_allclose(seen[1], seen[0] + 3)
    h.remove()
    h.remove()
    (w * 3).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="only a leaf tensor that requires grad"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(TypeError, match="must be callable"):
        w.register_post_accumulate_grad_hook(3)


def test_hook_order_follows_the_backward_pass_and_callbacks_run_at_its_end():
    fg.manual_seed(0)
    net = fg.nn.Sequential(fg.nn.Linear(3, 4), fg.nn.ReLU(), fg.nn.Linear(4, 2))
    events = []

    def hook(name):
        def h(t):
            events.append(name)
            if name == "0.weight":  # the first layer's weight is final last
                fg.autograd.queue_callback(lambda: events.append(("end", all_grads())))

        return h

    def all_grads():
        return all(p.grad is not None for p in net.parameters())

    handles = [p.register_post_accumulate_grad_hook(hook(n)) for n, p in net.named_parameters()]
    net(fg.randn(5, 3)).sum().backward()
    assert events[:2] == ["2.bias", "2.weight"] or events[:2] == ["2.weight", "2.bias"]
    assert set(events[2:4]) == {"0.bias", "0.weight"}
    assert events[-1] == ("end", True) and len(events) == 5
    for h in handles:
        h.remove()
    with pytest.raises(RuntimeError, match="only be called during a backward pass"):
        fg.autograd.queue_callback(print)


def test_a_hook_that_raises_stops_the_pass_with_its_exception():
    w = fg.tensor([1.0], requires_grad=True)

    def bad(t):
        raise ValueError("hook says no")

    with w.register_post_accumulate_grad_hook(bad):
        with pytest.raises(ValueError, match="hook says no"):
            (w * 2).sum().backward()
    (w * 2).sum().backward()  # removed on leaving the block: the next pass is clean
