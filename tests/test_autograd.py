"""Autograd semantics: leaves, accumulation, grad mode, graph freeing, memory."""

import gc
import os

import numpy as np
import pytest

import ferrograd as fg


def test_leaf_and_grad_fn():
    x = fg.randn(3, requires_grad=True)
    y = x * 2
    assert x.is_leaf and x.grad_fn is None
    assert not y.is_leaf and y.grad_fn.name() == "MulBackward" and y.requires_grad
    c = fg.randn(3)
    assert c.is_leaf and not c.requires_grad and not (c * 2).requires_grad


def test_gradients_accumulate_across_calls():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad = None
    (x * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]


def test_backward_with_gradient_argument():
    x = fg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(fg.tensor([1.0, 0.0, 2.0]))
    assert x.grad.tolist() == [2.0, 0.0, 12.0]
    with pytest.raises(RuntimeError, match="one element"):
        (x * x).backward()
    with pytest.raises(fg.ShapeError):
        (x * x).backward(fg.ones(2))


def test_second_backward_through_freed_graph_is_refused():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 8.0]


def test_shared_subgraph_gradients_add():
    x = fg.tensor([2.0], requires_grad=True)
    a = x * x  # used twice below
    y = a * a + a  # x^4 + x^2 -> 4x^3 + 2x = 36
    y.backward()
    assert x.grad.tolist() == [36.0]


def test_no_grad_context_and_decorator():
    x = fg.ones(2, requires_grad=True)
    with fg.no_grad():
        y = x * 3
        assert not fg.is_grad_enabled()
    assert fg.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None

    @fg.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad
    with fg.no_grad():
        with fg.enable_grad():
            assert (x * 2).requires_grad


def test_detach_and_requires_grad_():
    x = fg.ones(2, requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf and d.shares_storage(d)
    z = fg.zeros(2).requires_grad_()
    assert z.requires_grad
    z.requires_grad = False
    assert not z.requires_grad
    with pytest.raises(fg.DTypeError):
        fg.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf"):
        (x * 2).requires_grad = False


def test_in_place_on_leaf_requiring_grad_is_refused_outside_no_grad():
    w = fg.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.add_(fg.ones(3))
    with fg.no_grad():
        w.add_(fg.ones(3), alpha=-0.5)
    assert w.tolist() == [0.5, 0.5, 0.5]


def test_grad_is_own_storage():
    """`.grad` must not alias another tensor: optimizers update it in place."""
    x = fg.ones(3, requires_grad=True)
    b = fg.ones(3, requires_grad=True)
    seed = fg.ones(3)
    (x + b).backward(seed)
    assert not x.grad.shares_storage(b.grad) and not x.grad.shares_storage(seed)
    x.grad.mul_(5.0)
    assert b.grad.tolist() == [1.0, 1.0, 1.0]
    y = fg.ones(1, requires_grad=True)
    y.expand(4).sum().backward()
    assert y.grad.is_contiguous() and y.grad.tolist() == [4.0]


def test_grad_assignment_is_checked():
    x = fg.ones(3, requires_grad=True)
    with pytest.raises(fg.ShapeError):
        x.grad = fg.ones(2)
    with pytest.raises(fg.DTypeError):
        x.grad = fg.ones(3, dtype=fg.float64)


def test_broadcast_gradients_sum_to_input_shape():
    a = fg.randn(4, 1, 5, dtype=fg.float64, requires_grad=True)
    b = fg.randn(3, 5, dtype=fg.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == (4, 1, 5) and b.grad.shape == (3, 5)
    np.testing.assert_allclose(a.grad.numpy(), np.broadcast_to(b.numpy().sum(0), (4, 1, 5)))
    np.testing.assert_allclose(b.grad.numpy(), np.broadcast_to(a.numpy().sum((0, 1)), (3, 5)))


def test_mixed_dtype_promotion_rule():
    # bool < int64 < float32 < float64; `/` and `**` on integers give float32
    i, f, d = fg.tensor([1, 2]), fg.tensor([1.0, 2.0]), fg.tensor([1.0, 2.0], dtype=fg.float64)
    assert (i + f).dtype == fg.float32
    assert (f + d).dtype == fg.float64
    assert (i + i).dtype == fg.int64 and (i / i).dtype == fg.float32
    assert (i * 1.5).dtype == fg.float32 and (f * 2).dtype == fg.float32
    assert (d * 2.0).dtype == fg.float64
    x = fg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * d).sum()  # gradient flows back through the float32 -> float64 cast
    y.backward()
    assert x.grad.dtype == fg.float32 and x.grad.tolist() == [1.0, 2.0]


def test_gradcheck_public_and_detects_errors():
    x = fg.randn(3, 4, dtype=fg.float64, requires_grad=True)
    assert fg.autograd.gradcheck(lambda t: (t * t).tanh().sum(dim=1), (x,))
    with pytest.raises(ValueError, match="float64"):
        fg.autograd.gradcheck(lambda t: t.sum(), (fg.randn(2, requires_grad=True),))
    # a function whose analytic gradient is wrong: detach() hides part of the dependency
    bad = lambda t: t * t.detach()  # noqa: E731
    assert not fg.autograd.gradcheck(bad, (x,), raise_exception=False)
    with pytest.raises(fg.autograd.GradcheckError, match="mismatch"):
        fg.autograd.gradcheck(bad, (x,))


def _rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_does_not_grow_over_long_autograd_loop():
    w = fg.randn(64, 32, requires_grad=True)
    x = fg.randn(16, 32)

    def step():
        loss = fg.linear(x, w).relu().log_softmax(dim=1).mean()
        loss.backward()
        with fg.no_grad():
            w.add_(w.grad, alpha=-1e-3)
        w.grad = None

    for _ in range(500):  # warm up allocator pools
        step()
    gc.collect()
    before = _rss_bytes()
    for _ in range(10_000):
        step()
    gc.collect()
    grown = _rss_bytes() - before
    # each step allocates ~40 KB of graph and activations; a leak would add hundreds of MB
    assert grown < 8 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 10,000 steps"


def test_deep_graph_backward_and_drop():
    x = fg.ones(1, requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]
    del y
