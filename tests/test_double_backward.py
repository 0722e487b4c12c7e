"""Higher-order gradients: ``grad(..., create_graph=True)`` and ``backward(create_graph=True)``.

A create_graph pass runs each node's derivative rule with grad mode on, so the gradients it
returns carry a graph of their own. Every rule that can (the elementwise math and the op
table's activations, matmul and linear with fused activations and dropout, reductions,
views, indexing, cat, batch norm over batch statistics, convolution, the fused losses) is
checked here by `gradgradcheck` in float64: the first derivative's Jacobian, taken through
the recorded graph, against central differences of the first derivative itself. The rules
that are raw kernels with no recorded form refuse with a RuntimeError naming the node.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from unary_reference import ROWS, sample

import ferrograd as fg
import ferrograd.nn.functional as F
from ferrograd import _core, nn
from ferrograd.autograd import gradcheck, gradgradcheck

gpu = pytest.mark.skipif(
    not fg.gpu.is_available() and not os.environ.get("FERROGRAD_REQUIRE_GPU"),
    reason="no GPU adapter (set FERROGRAD_ALLOW_SOFTWARE_GPU=1 for lavapipe)",
)


def leaf(shape, seed=0, lo=-1.0, hi=1.0):
    r = np.random.default_rng(seed).uniform(lo, hi, shape)
    return fg.tensor(r, dtype=fg.float64, requires_grad=True)


# ------------------------------------------------------------------ the engine's behaviour


def test_grad_with_create_graph_gives_a_differentiable_gradient():
    x = fg.tensor([0.5, -1.0, 2.0], dtype=fg.float64, requires_grad=True)
    (g,) = fg.autograd.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(g.numpy(), 3 * x.detach().numpy() ** 2)
    (h,) = fg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())


def test_backward_with_create_graph_keeps_the_history_of_grad_and_the_graph():
    """As PyTorch's: `.grad` has a grad_fn, and retain_graph defaults to create_graph, so a
    second backward through the same graph works."""
    x = fg.tensor([1.0, 2.0], dtype=fg.float64, requires_grad=True)
    y = (x**3).sum()
    with pytest.warns(UserWarning, match="reference cycle"):  # PyTorch warns too
        y.backward(create_graph=True)
    g = x.grad
    assert g.grad_fn is not None
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    x.grad = None
    g.sum().backward()  # d/dx of 3x^2 summed
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])
    x.grad = None
    y.backward()  # the graph was retained
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 12.0])


def test_accumulated_grad_under_create_graph_sums_with_history():
    x = fg.tensor([1.0, 3.0], dtype=fg.float64, requires_grad=True)
    with pytest.warns(UserWarning, match="reference cycle"):
        (x**2).sum().backward(create_graph=True)
        (x**3).sum().backward(create_graph=True)
    g = x.grad  # 2x + 3x^2
    np.testing.assert_allclose(g.numpy(), [5.0, 33.0])
    (h,) = fg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), [2 + 6 * 1.0, 2 + 6 * 3.0])


def test_autograd_backward_list_and_inputs_with_create_graph():
    x = fg.tensor([1.0, 2.0], dtype=fg.float64, requires_grad=True)
    w = fg.tensor([0.5, -1.0], dtype=fg.float64, requires_grad=True)
    with pytest.warns(UserWarning, match="reference cycle"):
        fg.autograd.backward([(x * x * w).sum()], inputs=[x], create_graph=True)
    assert w.grad is None and x.grad.grad_fn is not None
    (gw,) = fg.autograd.grad(x.grad.sum(), w)  # d/dw of 2 x w
    np.testing.assert_allclose(gw.numpy(), 2 * x.detach().numpy())


def test_a_seed_with_history_is_differentiated_through():
    x = leaf((3,), 1)
    v = leaf((3,), 2)
    (g,) = fg.autograd.grad(x.sin(), x, grad_outputs=v * 2, create_graph=True)  # 2 v cos x
    (gv,) = fg.autograd.grad(g.sum(), v)
    np.testing.assert_allclose(gv.numpy(), 2 * np.cos(x.detach().numpy()))


def test_hessian_vector_product_of_a_quadratic_form():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    a = a + a.T
    x = leaf((4,), 4)
    at = fg.tensor(a)
    f = (x @ at @ x) * 0.5
    (g,) = fg.autograd.grad(f, x, create_graph=True)
    v = fg.tensor(rng.standard_normal(4))
    (hv,) = fg.autograd.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.numpy(), a @ v.numpy(), rtol=1e-12)


def test_third_derivative():
    x = fg.tensor([0.3, -0.4], dtype=fg.float64, requires_grad=True)
    (g1,) = fg.autograd.grad(x.tanh().sum(), x, create_graph=True)
    (g2,) = fg.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = fg.autograd.grad(g2.sum(), x)
    t = np.tanh(x.detach().numpy())
    np.testing.assert_allclose(g3.numpy(), -2 * (1 - t * t) * (1 - 3 * t * t), rtol=1e-12)


class _NumpyCube(fg.autograd.Function):
    """A backward computed outside the graph, marked so (PyTorch's once_differentiable)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    @fg.autograd.once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return fg.tensor(3 * x.numpy() ** 2 * g.numpy())


def test_a_once_differentiable_function_refuses_a_create_graph_pass():
    from ferrograd.autograd.function import once_differentiable  # PyTorch's import path

    assert once_differentiable is fg.autograd.once_differentiable
    x = leaf((3,), 31)
    with pytest.raises(RuntimeError, match="_NumpyCubeBackward.*once_differentiable"):
        fg.autograd.grad(_NumpyCube.apply(x).sum(), x, create_graph=True)
    # a plain pass through it works
    (g,) = fg.autograd.grad(_NumpyCube.apply(x).sum(), x)
    np.testing.assert_allclose(g.numpy(), 3 * x.detach().numpy() ** 2)


def test_grad_runs_only_the_part_of_the_graph_that_reaches_the_inputs():
    """A node that refuses a create_graph pass does not stop one that does not need it."""
    w = leaf((3,), 32)
    x = leaf((3,), 33)
    out = (_NumpyCube.apply(x) * w).sum()
    (gw,) = fg.autograd.grad(out, w, create_graph=True)
    np.testing.assert_allclose(gw.detach().numpy(), x.detach().numpy() ** 3)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        fg.autograd.grad(out, x, create_graph=True)


def test_a_custom_function_written_in_ops_is_differentiated_twice():
    class Cube(fg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * g

    x = leaf((3,), 5)
    (g,) = fg.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = fg.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class Wrong(fg.autograd.Function):  # right first derivative, wrong second
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x.detach() * x.detach() * g

    x = leaf((3,), 6)
    assert gradcheck(lambda t: Wrong.apply(t), (x,))
    assert not gradgradcheck(lambda t: Wrong.apply(t), (x,), raise_exception=False)


# ---------------------------------------------------------- second derivatives, by family

PUBLIC_ROWS = sorted(name for name in ROWS if not name.startswith("_"))
# a clamp needs its bounds; the table's defaults serve the others
ROW_ARGS = {"clamp": (-0.5, 0.5)}


@pytest.mark.parametrize("name", PUBLIC_ROWS)
def test_every_table_row_has_a_second_derivative(name):
    args = ROW_ARGS.get(name, ())
    x = fg.tensor(sample(name, args, (2, 3), seed_key="double"), dtype=fg.float64, requires_grad=True)
    assert gradgradcheck(lambda t: _core.unary(t, name, *args), (x,))


BINARY = {
    "add": lambda a, b: (a + b) * a,
    "sub": lambda a, b: (a - b) * b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 0.5),
    "pow": lambda a, b: (a.abs() + 0.5) ** b,
    "pow_scalar_exponent": lambda a, b: a**3 + b**-2,
    "maximum": lambda a, b: fg.maximum(a, b) * a,
    "minimum": lambda a, b: fg.minimum(a, b) * b,
    "where": lambda a, b: fg.where(a > 0, a * b, b.exp()),
    "masked_fill": lambda a, b: (a * b).masked_fill(a > 0.3, 0.0),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_broadcast(name):
    a = leaf((3, 4), 7)
    b = leaf((4,), 8, 0.4, 1.2) if name == "pow_scalar_exponent" else leaf((4,), 8)
    assert gradgradcheck(BINARY[name], (a, b))


REDUCTIONS = {
    "sum": lambda x: (x * x).sum(1),
    "mean": lambda x: (x.sin()).mean(0),
    "amax": lambda x: (x * x).amax(1),
    "max_dim": lambda x: (x * x.exp()).max(0).values,
    "norm": lambda x: x.norm(dim=1),
    "norm_all": lambda x: x.norm(),
    "var": lambda x: x.var(0),
    "std": lambda x: x.std(1),
    "logsumexp": lambda x: x.logsumexp(1),
    "log_softmax": lambda x: F.log_softmax(x, dim=1),
    "softmax_dim0": lambda x: F.softmax(x, dim=0),
    "cumsum": lambda x: (x * x).cumsum(1),
    "prod": lambda x: x.prod(1),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reductions(name):
    assert gradgradcheck(REDUCTIONS[name], (leaf((3, 4), 9),))


VIEWS = {
    "slice": lambda x: x[1:, ::2].sum(0) * x[0, ::2],
    "reshape_transpose_expand": lambda x: x.reshape(4, 3).T.expand(2, 3, 4) ** 2,
    "permute": lambda x: x.reshape(2, 2, 3).permute(2, 0, 1).sin() * x.reshape(3, 2, 2),
    "index_select": lambda x: x.index_select(0, fg.tensor([0, 2, 2])) ** 2,
    "advanced_index": lambda x: x[fg.tensor([0, 2, 2]), 1:] ** 2,
    "cat": lambda x: fg.cat([x, x * x], 1).exp(),
    "stack": lambda x: fg.stack([x, x.sin()], 0) ** 2,
    "diagonal": lambda x: x.diagonal() ** 3,
    "unfold": lambda x: x.unfold(0, 2, 1) ** 2,
    "gather": lambda x: x.gather(1, fg.tensor([[0, 1], [2, 2], [3, 0]])) ** 2,
    "flip_roll": lambda x: x.flip(0).roll(1, 1) * x,
    "contiguous_of_view": lambda x: x.T.contiguous() ** 2,
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_views_and_indexing(name):
    assert gradgradcheck(VIEWS[name], (leaf((3, 4), 10),))


def test_matmul_2d_and_batched():
    a, b = leaf((3, 4), 11), leaf((4, 2), 12)
    assert gradgradcheck(lambda a, b: (a @ b).tanh(), (a, b))
    c = leaf((2, 3, 4), 13)
    assert gradgradcheck(lambda c, b: (c @ b).sin(), (c, b))


@pytest.mark.parametrize(
    "act, alpha",
    [
        (None, None),
        ("relu", None),
        ("tanh", None),
        ("sigmoid", None),
        ("selu", None),
        ("elu", 0.7),
        ("leaky_relu", 0.1),
    ],
)
def test_linear_with_each_fused_activation(act, alpha):
    """The engine's one-node Linear + activation (what Sequential runs), in x, w and b."""
    x, w, b = leaf((5, 3), 14), leaf((4, 3), 27), leaf((4,), 28)
    assert gradgradcheck(lambda x, w, b: _core.linear(x, w, b, act, alpha), (x, w, b))
    assert gradgradcheck(lambda x, w: _core.linear(x, w, None, act, alpha), (x, w))


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Tanh(), nn.SELU(), nn.GELU()], ids=lambda a: type(a).__name__)
def test_sequential_linear_activation_in_its_input(act):
    fg.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 2)).double()
    assert gradgradcheck(lambda x: m(x), (leaf((5, 3), 14),))


def test_linear_with_a_fused_dropout_in_training():
    fg.manual_seed(2)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.3)).double()
    x = leaf((5, 3), 15)

    def f(x):
        fg.manual_seed(5)  # the same mask at every evaluation
        return m(x)

    assert gradgradcheck(f, (x,))
    d = nn.Dropout(0.4)

    def g(x):
        fg.manual_seed(6)
        return d(x * x)

    assert gradgradcheck(g, (x,))


def test_batch_norm_over_batch_statistics_with_and_without_relu():
    x = leaf((6, 3), 16)
    bn = nn.BatchNorm1d(3).double()
    with fg.no_grad():
        bn.weight.copy_(fg.tensor([0.5, 1.5, -1.0], dtype=fg.float64))
        bn.bias.copy_(fg.tensor([0.1, -0.2, 0.3], dtype=fg.float64))
    assert gradgradcheck(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, bn.weight, bn.bias)
    )
    assert gradgradcheck(lambda x: bn(x), (x,))
    seq = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU()).double()
    assert gradgradcheck(lambda x: seq(x), (x,))


def test_batch_norm_with_a_fused_dropout_and_in_eval():
    x = leaf((6, 3), 34)
    seq = nn.Sequential(nn.BatchNorm1d(3), nn.ReLU(), nn.Dropout(0.3)).double()

    def f(x):
        fg.manual_seed(12)  # the same mask at every evaluation
        return seq(x)

    assert gradgradcheck(f, (x,))
    bn = nn.BatchNorm1d(3).double()
    with fg.no_grad():
        bn.running_mean.copy_(fg.tensor([0.2, -0.1, 0.4], dtype=fg.float64))
        bn.running_var.copy_(fg.tensor([0.5, 2.0, 1.5], dtype=fg.float64))
    bn.eval()
    rm, rv = bn.running_mean, bn.running_var
    assert gradgradcheck(
        lambda x, w, b: F.relu(F.batch_norm(x, rm, rv, w, b, training=False)) * x, (x, bn.weight, bn.bias)
    )
    y = (bn(x) * x).sum()
    (g,) = fg.autograd.grad(y, x, create_graph=True)
    (h,) = fg.autograd.grad(g.sum(), bn.weight)
    xs, rm = x.detach().numpy(), np.array([0.2, -0.1, 0.4])
    sd = np.sqrt(np.array([0.5, 2.0, 1.5]) + bn.eps)
    # d/dgamma of sum(d/dx [((x - m) / s gamma + beta) x]) = sum((2 x - m) / s)
    np.testing.assert_allclose(h.numpy(), ((2 * xs - rm) / sd).sum(0), rtol=1e-12)
    # statistics updated after the forward (a training step): the recorded rule refuses
    # instead of reading the new ones, as PyTorch's saved-tensor check does
    y = (bn(x) * x).sum()
    with fg.no_grad():
        bn.running_var.mul_(4.0)
    (g,) = fg.autograd.grad(y, x, retain_graph=True)  # the kernel's rule kept its own
    w = bn.weight.detach().numpy()
    np.testing.assert_allclose(g.numpy(), w * (2 * xs - rm) / sd, rtol=1e-12)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        fg.autograd.grad(y, x, create_graph=True)


def test_residual_block_with_fused_shortcut():
    fg.manual_seed(3)
    # the shortcut is added inside the last batch norm's kernel (BnSpec.residual)
    block = nn.Residual(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU())).double()
    x = leaf((6, 4), 17)
    assert gradgradcheck(lambda x: block(x), (x,))


def test_conv2d_and_its_transpose():
    x = leaf((1, 2, 5, 5), 18)
    w = leaf((3, 2, 3, 3), 19)
    b = leaf((3,), 20)
    assert gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1, stride=2).tanh(), (x, w, b))
    wt = leaf((2, 3, 2, 2), 21)
    assert gradgradcheck(lambda x, w: F.conv_transpose2d(x, w, stride=2).sin(), (x, wt))


@pytest.mark.parametrize("ceil_mode", [False, True])
def test_max_pooling(ceil_mode):
    x = leaf((2, 2, 5, 5), 29)
    assert gradgradcheck(lambda x: F.max_pool2d(x * x, 3, stride=2, padding=1, ceil_mode=ceil_mode), (x,))
    assert gradgradcheck(lambda x: F.max_pool1d(x[0].sin(), 2), (x,))
    # ties go to the first maximum, in the recorded rule as in the kernel
    t = fg.tensor(np.array([[[[1.0, 1.0], [0.0, 1.0]]]]), requires_grad=True)
    (g,) = fg.autograd.grad(F.max_pool2d(t * 2, 2).sum(), t, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), [[[[2.0, 0.0], [0.0, 0.0]]]])


def test_a_small_cnn_in_its_input():
    fg.manual_seed(10)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2)).double()
    assert gradgradcheck(lambda x: m(x), (leaf((2, 1, 6, 6), 30),))


def test_average_pooling_and_interpolation():
    x = leaf((1, 2, 4, 4), 22)
    assert gradgradcheck(lambda x: F.avg_pool2d(x * x, 2), (x,))
    assert gradgradcheck(lambda x: F.interpolate(x.sin(), scale_factor=2, mode="bilinear"), (x,))


_FIXED = fg.tensor(np.random.default_rng(2).standard_normal((5, 3)))
LOSSES = {
    "cross_entropy": lambda x: F.cross_entropy(x, fg.tensor([0, 2, 1, 1, 0])),
    "cross_entropy_smoothing_sum": lambda x: F.cross_entropy(
        x, fg.tensor([0, 2, 1, 1, 0]), label_smoothing=0.1, reduction="sum"
    ),
    "cross_entropy_none": lambda x: F.cross_entropy(x, fg.tensor([0, 2, 1, 1, 0]), reduction="none"),
    "cross_entropy_weight_ignore": lambda x: F.cross_entropy(
        x, fg.tensor([0, 2, 1, -100, 0]), weight=fg.tensor([1.0, 2.0, 0.5], dtype=fg.float64)
    ),
    "cross_entropy_probabilities": lambda x: F.cross_entropy(x, F.softmax(_FIXED * 2, dim=1)),
    "nll_loss": lambda x: F.nll_loss(F.log_softmax(x, dim=1), fg.tensor([0, 2, 1, 1, 0])),
    "bce_with_logits": lambda x: F.binary_cross_entropy_with_logits(
        x, fg.tensor(np.random.default_rng(0).uniform(0, 1, (5, 3)))
    ),
    "bce": lambda x: F.binary_cross_entropy(
        x.sigmoid(), fg.tensor(np.random.default_rng(1).uniform(0, 1, (5, 3)))
    ),
    "mse": lambda x: F.mse_loss(x, fg.zeros(5, 3, dtype=fg.float64)),
    "smooth_l1": lambda x: F.smooth_l1_loss(x * 3, fg.zeros(5, 3, dtype=fg.float64)),
    "kl_div": lambda x: F.kl_div(F.log_softmax(x, dim=1), F.softmax(_FIXED, dim=1), reduction="batchmean"),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses(name):
    assert gradgradcheck(LOSSES[name], (leaf((5, 3), 23),))


def test_layer_norm_and_attention():
    x = leaf((2, 3, 4), 24)
    ln = nn.LayerNorm(4).double()
    assert gradgradcheck(lambda x: ln(x), (x,))
    q = leaf((1, 3, 4), 25)
    assert gradgradcheck(lambda q, x: F.scaled_dot_product_attention(q, x[:1], x[1:], is_causal=True), (q, x))


# ------------------------------------------------------------- what people use it for


def test_gradient_penalty_of_a_critic_against_finite_differences():
    """WGAN-GP's penalty: the critic's input gradient's norm, trained toward 1; its
    gradient with respect to the critic's weights needs the second derivative."""
    fg.manual_seed(4)
    critic = nn.Sequential(
        nn.Linear(3, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)
    ).double()
    x = leaf((4, 3), 26)
    params = list(critic.parameters())

    def penalty(*ps):
        with fg.no_grad():
            for p, v in zip(params, ps):
                p.copy_(v)
        xi = x.detach().requires_grad_()
        (gx,) = fg.autograd.grad(critic(xi).sum(), xi, create_graph=True)
        return ((gx.norm(2, dim=1) - 1) ** 2).mean()

    before = [p.detach().clone() for p in params]
    pen = penalty(*before)
    pen.backward()
    analytic = [p.grad.numpy().copy() if p.grad is not None else np.zeros(p.shape) for p in params]
    h = 1e-6
    for k, p0 in enumerate(before):
        base = p0.numpy()
        for idx in [tuple(i) for i in np.argwhere(np.ones(base.shape))][:6]:
            hi, lo = base.copy(), base.copy()
            hi[idx] += h
            lo[idx] -= h
            args_hi = [fg.tensor(hi) if j == k else b for j, b in enumerate(before)]
            args_lo = [fg.tensor(lo) if j == k else b for j, b in enumerate(before)]
            num = (penalty(*args_hi).item() - penalty(*args_lo).item()) / (2 * h)
            np.testing.assert_allclose(analytic[k][idx], num, rtol=1e-5, atol=1e-8)
    # the last bias does not reach the input gradient: no gradient, as PyTorch gives
    assert params[-1].grad is None


def test_one_maml_inner_step_against_finite_differences():
    x = fg.tensor(np.random.default_rng(5).standard_normal((6, 4)))
    y = fg.tensor([0, 1, 2, 0, 1, 2])

    def outer(wn, create):
        w = fg.tensor(wn, requires_grad=True)
        (g,) = fg.autograd.grad(F.cross_entropy(x @ w.T, y), w, create_graph=create)
        w2 = w - 0.1 * g if create else w.detach() - 0.1 * g
        return w, F.cross_entropy((x @ w2.T).tanh(), y)

    wn = np.random.default_rng(6).standard_normal((3, 4))
    w, loss = outer(wn, True)
    loss.backward()
    num = np.zeros_like(wn)
    h = 1e-6
    for i in np.ndindex(wn.shape):
        a, b = wn.copy(), wn.copy()
        a[i] += h
        b[i] -= h
        num[i] = (outer(a, False)[1].item() - outer(b, False)[1].item()) / (2 * h)
    np.testing.assert_allclose(w.grad.numpy(), num, rtol=1e-6, atol=1e-9)


def test_second_derivative_of_a_tanh_network_in_its_input():
    """A physics-informed network's u_xx, against central differences of u_x."""
    fg.manual_seed(7)
    net = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    xs = np.linspace(-1, 1, 7).reshape(-1, 1)

    def u_x(xn, create=False):
        x = fg.tensor(xn, requires_grad=True)
        (g,) = fg.autograd.grad(net(x).sum(), x, create_graph=create)
        return x, g

    x, ux = u_x(xs, True)
    (uxx,) = fg.autograd.grad(ux.sum(), x)
    h = 1e-5
    num = (u_x(xs + h)[1].numpy() - u_x(xs - h)[1].numpy()) / (2 * h)
    np.testing.assert_allclose(uxx.numpy(), num, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- on the GPU


@gpu
def test_gradient_penalty_on_the_gpu_matches_the_cpu():
    def run(device):
        fg.manual_seed(8)
        m = nn.Sequential(nn.Linear(6, 16), nn.LeakyReLU(0.2), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
        m = m.to(device)
        x = fg.randn(8, 6).to(device).requires_grad_()
        (gx,) = fg.autograd.grad(m(x).sum(), x, create_graph=True)
        pen = ((gx.norm(2, dim=1) - 1) ** 2).mean() + F.cross_entropy(
            fg.cat([m(x), -m(x)], 1), fg.tensor([0, 1, 0, 1, 0, 1, 0, 1]).to(device)
        )
        pen.backward()
        return pen.item(), [p.grad.cpu().numpy() for p in m.parameters()]

    (lc, gc), (lg, gg) = run("cpu"), run("gpu")
    np.testing.assert_allclose(lg, lc, rtol=1e-5)
    for a, b in zip(gc, gg):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


@gpu
def test_hessian_vector_products_on_the_gpu_match_the_cpu():
    def hvp(device):
        fg.manual_seed(9)
        x = fg.randn(5, 4).to(device).requires_grad_()
        w = fg.randn(4, 3).to(device)
        f = F.log_softmax((x @ w).sigmoid() * 3, dim=1).sum() + (x.sin() * x).sum()
        (g,) = fg.autograd.grad(f, x, create_graph=True)
        (h,) = fg.autograd.grad((g * g).sum(), x)
        return h.cpu().numpy()

    np.testing.assert_allclose(hvp("gpu"), hvp("cpu"), rtol=1e-4, atol=1e-5)


@gpu
def test_a_cnn_input_gradient_penalty_on_the_gpu_matches_the_cpu():
    def run(device):
        fg.manual_seed(11)
        m = nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(48, 2)
        )
        m = m.to(device)
        x = fg.randn(2, 1, 8, 8).to(device).requires_grad_()
        loss = F.cross_entropy(m(x), fg.tensor([0, 1]).to(device))
        (gx,) = fg.autograd.grad(loss, x, create_graph=True)
        (gx * gx).sum().backward()
        return [p.grad.cpu().numpy() for p in m.parameters()]

    for a, b in zip(run("cpu"), run("gpu")):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-6)


@gpu
def test_autocast_linear_on_the_gpu_is_differentiated_twice():
    """autocast's one-node Linear (the casts fused into the product) has a recorded form."""

    def run(device, cast):
        fg.manual_seed(13)
        m = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1)).to(device)
        x = fg.randn(4, 8).to(device).requires_grad_()
        with fg.autocast(device, dtype=fg.float16, enabled=cast):
            out = m(x).float().sum()
        (gx,) = fg.autograd.grad(out, x, create_graph=True)
        (gx.float() ** 2).sum().backward()
        return [p.grad.float().cpu().numpy() for p in list(m.parameters())[:3]]

    for a, b in zip(run("cpu", False), run("gpu", True)):
        np.testing.assert_allclose(b, a, rtol=3e-2, atol=3e-3)


# every module family, second derivatives in the input (the modules' own rules composed)
def _seeded(module):
    def f(x):
        fg.manual_seed(14)
        return module(x)

    return f


MODULES = {
    "conv1d": (lambda: nn.Conv1d(2, 3, 3, padding=1, dilation=1), (2, 2, 6)),
    "conv2d_groups": (lambda: nn.Conv2d(4, 4, 3, padding="same", groups=2), (1, 4, 5, 5)),
    "conv3d": (lambda: nn.Conv3d(1, 2, 2), (1, 1, 3, 3, 3)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2), (1, 2, 3, 3)),
    "avg_pool1d": (lambda: nn.Sequential(nn.Tanh(), nn.AvgPool1d(2)), (2, 2, 6)),
    "max_pool1d": (lambda: nn.Sequential(nn.Tanh(), nn.MaxPool1d(2)), (2, 2, 6)),
    "adaptive_avg_pool2d": (lambda: nn.Sequential(nn.Tanh(), nn.AdaptiveAvgPool2d(2)), (1, 2, 5, 5)),
    "batch_norm2d": (lambda: nn.Sequential(nn.BatchNorm2d(2), nn.Tanh()), (3, 2, 2, 2)),
    "group_norm": (lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    "instance_norm": (lambda: nn.InstanceNorm1d(2), (2, 2, 5)),
    "layer_norm": (lambda: nn.LayerNorm(4), (3, 4)),
    "prelu": (lambda: nn.Sequential(nn.PReLU(), nn.Tanh()), (3, 4)),
    "softmax_dim1": (lambda: nn.Softmax(dim=1), (1, 3, 2, 2)),
    "pixel_shuffle": (lambda: nn.Sequential(nn.PixelShuffle(2), nn.Tanh()), (1, 4, 2, 2)),
    "upsample_bilinear": (lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (1, 1, 3, 3)),
    "reflection_pad": (lambda: nn.Sequential(nn.ReflectionPad2d(1), nn.Tanh()), (1, 1, 3, 3)),
    "replication_pad": (lambda: nn.Sequential(nn.ReplicationPad1d(2), nn.Tanh()), (1, 2, 3)),
    "circular_pad": (lambda: nn.Sequential(nn.CircularPad1d(1), nn.Tanh()), (1, 2, 3)),
    "rnn": (lambda: nn.RNN(3, 4, batch_first=True), (2, 3, 3)),
    "lstm": (lambda: nn.LSTM(3, 2, batch_first=True), (2, 3, 3)),
    "gru": (lambda: nn.GRU(3, 2), (3, 2, 3)),
    "attention": (lambda: nn.MultiheadAttention(4, 2, batch_first=True), (1, 3, 4)),
    "transformer_layer": (
        lambda: nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.1, batch_first=True),
        (1, 3, 4),
    ),
    "alpha_dropout_selu": (lambda: nn.Sequential(nn.Linear(3, 4), nn.SELU(), nn.AlphaDropout(0.2)), (5, 3)),
    "dropout2d": (lambda: nn.Sequential(nn.Tanh(), nn.Dropout2d(0.3)), (2, 3, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_in_their_input(name):
    make, shape = MODULES[name]
    fg.manual_seed(15)
    module = make().double()
    call = _seeded(module)
    if name in ("rnn", "lstm", "gru"):
        call = _seeded(lambda x: module(x)[0])
    elif name == "attention":
        call = _seeded(lambda x: module(x, x.sin(), x)[0])
    x = leaf(shape, 35)
    assert gradgradcheck(call, (x,))
