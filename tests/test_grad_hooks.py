"""Gradient hooks and gradients on demand, as PyTorch scripts use them: `Tensor.register_hook`
(on leaves and non-leaves), `retain_grad`, `fg.autograd.grad`, and `fg.autograd.backward`
from several roots at once or into chosen `inputs`. The expected values are PyTorch 2.15's
on the same calls."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.autograd import Function


def _leaf(values, device="cpu"):
    return fg.tensor(values, dtype=fg.float32).to(device).requires_grad_()


def test_hook_on_non_leaf_sees_the_summed_gradient_and_replaces_it(device):
    x = _leaf([1.0, 2.0], device)
    y = x * 2
    seen = []

    def hook(g):
        seen.append(g.cpu().numpy().copy())
        return g * 10

    y.register_hook(hook)
    (y * y + y).sum().backward()  # dL/dy = 2y + 1, summed over the two uses
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [5.0, 9.0])
    np.testing.assert_allclose(x.grad.cpu().numpy(), [100.0, 180.0])


def test_hook_on_a_leaf_runs_once_on_its_total_before_grad_is_accumulated(device):
    x = _leaf([1.0, 2.0], device)
    calls = []
    x.register_hook(lambda g: calls.append(g.cpu().numpy().copy()) or g * 3)
    post = []
    x.register_post_accumulate_grad_hook(lambda t: post.append(t.grad.cpu().numpy().copy()))
    (x * 2 + x * x).sum().backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], [4.0, 6.0])
    np.testing.assert_allclose(x.grad.cpu().numpy(), [12.0, 18.0])
    np.testing.assert_allclose(post[0], [12.0, 18.0])  # after the hook's replacement
    # a second pass accumulates the hooked gradient on top
    (x * 1).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), [15.0, 21.0])


def test_hooks_run_in_order_and_remove_unregisters():
    x = _leaf([1.0])
    y = x * 1
    y.register_hook(lambda g: g + 1)
    h = y.register_hook(lambda g: g * 10)
    y.register_hook(lambda g: None)  # None keeps the gradient
    y.sum().backward(retain_graph=True)
    assert x.grad.item() == 20.0  # (1 + 1) * 10
    h.remove()
    h.remove()  # a second remove does nothing
    x.grad = None
    y.sum().backward()
    assert x.grad.item() == 2.0
    with x.register_hook(lambda g: g * 0):
        (x * 1).sum().backward()
    assert x.grad.item() == 2.0  # the hook's zero added nothing
    (x * 1).sum().backward()
    assert x.grad.item() == 3.0  # the with-block removed it


def test_hook_errors_are_clear():
    x = _leaf([1.0, 2.0])
    y = x * 1
    y.register_hook(lambda g: fg.ones(3))
    with pytest.raises(fg.ShapeError, match=r"register_hook.*\(2,\).*\(3,\)"):
        y.sum().backward()
    y = x * 1
    y.register_hook(lambda g: "no")
    with pytest.raises(RuntimeError, match="register_hook: a hook returned a str"):
        y.sum().backward()

    def boom(g):
        raise KeyError("boom")

    y = x * 1
    y.register_hook(boom)
    with pytest.raises(KeyError, match="boom"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        fg.ones(2).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="callable"):
        x.register_hook(3)


def test_retain_grad_keeps_a_non_leaf_gradient(device):
    x = _leaf([1.0, 2.0], device)
    y = x * 2
    assert not y.retains_grad
    y.retain_grad()
    assert y.retains_grad and not x.retains_grad
    z = y * y
    z.sum().backward(retain_graph=True)
    np.testing.assert_allclose(y.grad.cpu().numpy(), [4.0, 8.0])
    z.sum().backward()
    np.testing.assert_allclose(y.grad.cpu().numpy(), [8.0, 16.0])  # accumulates, as .grad does
    assert z.grad is None  # not retained
    x.retain_grad()  # a leaf keeps its gradient anyway: no-op
    with pytest.raises(RuntimeError, match="requires_grad=False"):
        fg.ones(2).retain_grad()


def test_retained_gradient_is_the_hooked_one():
    x = _leaf([1.0])
    y = x * 3
    y.retain_grad()
    y.register_hook(lambda g: g + 1)  # PyTorch runs retain_grad's store after the hooks
    y.sum().backward()
    assert y.grad.item() == 2.0
    assert x.grad.item() == 6.0


def test_autograd_grad_returns_without_touching_grad(device):
    x = _leaf([1.0, 2.0, 3.0], device)
    w = _leaf([0.5], device)
    y = (x * x * w).sum()
    gx, gw = fg.autograd.grad(y, [x, w], retain_graph=True)
    np.testing.assert_allclose(gx.cpu().numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(gw.cpu().numpy(), [14.0])
    assert x.grad is None and w.grad is None
    (gx_only,) = fg.autograd.grad(y, x)
    np.testing.assert_allclose(gx_only.cpu().numpy(), [1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="second time"):
        fg.autograd.grad(y, x)  # retain_graph defaults to False: the graph is freed


def test_autograd_grad_several_outputs_and_non_leaf_inputs():
    x = _leaf([1.0, 2.0])
    h = x * 3
    a, b = h * h, h.sum()
    ga, gb = fg.tensor([1.0, 0.5]), fg.tensor(2.0)
    gh, gx = fg.autograd.grad([a, b], [h, x], grad_outputs=[ga, gb])
    # d/dh: 2h * ga + gb ; d/dx = 3 * that
    want = 2 * np.array([3.0, 6.0]) * [1.0, 0.5] + 2.0
    np.testing.assert_allclose(gh.numpy(), want)
    np.testing.assert_allclose(gx.numpy(), 3 * want)
    # the same input twice gets the same gradient twice
    x2 = _leaf([1.0])
    g1, g2 = fg.autograd.grad((x2 * 4).sum(), [x2, x2])
    assert g1.item() == g2.item() == 4.0


def test_autograd_grad_unused_inputs_and_errors():
    x = _leaf([1.0, 2.0])
    other = _leaf([5.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="index 1 appears to not have been used"):
        fg.autograd.grad(y, [x, other], retain_graph=True)
    gx, go = fg.autograd.grad(y, [x, other], allow_unused=True, retain_graph=True)
    assert go is None
    np.testing.assert_allclose(gx.numpy(), [2.0, 2.0])
    _, go = fg.autograd.grad(y, [x, other], materialize_grads=True, retain_graph=True)
    np.testing.assert_array_equal(go.numpy(), [0.0])
    with pytest.raises(RuntimeError, match="index 0 does not require grad"):
        fg.autograd.grad(y, [fg.ones(1)])
    with pytest.raises(RuntimeError, match="one element"):
        fg.autograd.grad(x * 2, x)
    # create_graph (tests/test_double_backward.py): a gradient constant in x has no history
    (gx,) = fg.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(gx.numpy(), [2.0, 2.0])
    assert not gx.requires_grad


def test_autograd_grad_runs_hooks_on_inputs():
    x = _leaf([1.0, 2.0])
    x.register_hook(lambda g: g * 10)
    y = x * 2
    y.retain_grad()
    (g,) = fg.autograd.grad((y * y).sum(), [x])
    np.testing.assert_allclose(g.numpy(), [80.0, 160.0])
    np.testing.assert_allclose(y.grad.numpy(), [4.0, 8.0])  # retain_grad fills, as in PyTorch
    assert x.grad is None


def test_backward_from_several_roots_walks_a_shared_graph_once():
    x = _leaf([1.0, 2.0])
    h = x * x
    fg.autograd.backward([h.sum(), (h * 3).sum()])  # a freed graph would fail the second root
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 16.0])
    x.grad = None
    h = x * x
    fg.autograd.backward([h, h.sum()], [fg.tensor([1.0, 0.0]), None])
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0])


def test_backward_into_chosen_inputs_only():
    x = _leaf([1.0, 2.0])
    w = _leaf([3.0])
    h = x * w
    h.sum().backward(inputs=[w], retain_graph=True)
    assert x.grad is None
    assert w.grad.item() == 3.0
    fg.autograd.backward(h.sum(), inputs=h)  # a non-leaf input gets its .grad too
    np.testing.assert_allclose(h.grad.numpy(), [1.0, 1.0])
    assert x.grad is None and w.grad.item() == 3.0


class _DropGrad(Function):
    """Identity whose backward gives its input no gradient."""

    @staticmethod
    def forward(ctx, t):
        return t * 1

    @staticmethod
    def backward(ctx, g):
        return None


def test_a_branch_that_sends_no_gradient_does_not_stall_the_rest():
    # h feeds m (which gets nothing back through _DropGrad) and b; h must still run once
    # b's gradient is in, or x misses it.
    x = _leaf([1.0, 2.0])
    h = x * 2
    m = h * 1
    loss = _DropGrad.apply(m).sum() + (h * 3).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
