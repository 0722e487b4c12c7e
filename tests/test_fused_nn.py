"""The fused network kernels behind the backend seam (batch norm, cross-entropy): one rule
per op for both devices, checked by finite differences in float64 on the host, CPU = GPU in
float32 for every mode, and the argument checks that keep the in-place statistics safe."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import _core
from ferrograd.autograd import gradcheck

rng = np.random.default_rng(5)


def _bn(x, w, b, rm, rv, training, relu):
    return _core.batch_norm(x, w, b, rm, rv, training, 0.1, 1e-5, activation="relu" if relu else None)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_gradcheck_float64(training, relu, affine):
    """Training (batch statistics, x's gradient through them) and eval (running ones)."""
    x = fg.tensor(rng.standard_normal((6, 4)) * 2 + 1, dtype=fg.float64, requires_grad=True)
    w = fg.tensor(rng.uniform(0.5, 1.5, 4), dtype=fg.float64, requires_grad=True)
    b = fg.tensor(rng.standard_normal(4) * 0.3, dtype=fg.float64, requires_grad=True)
    rm = fg.tensor(rng.standard_normal(4), dtype=fg.float64)
    rv = fg.tensor(rng.uniform(0.5, 2.0, 4), dtype=fg.float64)
    c = fg.tensor(rng.standard_normal((6, 4)), dtype=fg.float64)
    args = (x, w, b) if affine else (x,)

    def fn(*a):
        ww, bb = (a[1], a[2]) if affine else (None, None)
        # fresh running stats per call: training updates them in place
        return (_bn(a[0], ww, bb, rm.clone(), rv.clone(), training, relu) * c).sum()

    assert gradcheck(fn, args)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_gpu_equals_cpu(training, relu):
    if not fg.gpu_available():
        pytest.skip("no GPU adapter")
    xn = (rng.standard_normal((9, 5)) * 3 + 1).astype(np.float32)
    gn = rng.standard_normal((9, 5)).astype(np.float32)
    out = {}
    for dev in ("cpu", "gpu"):
        x = fg.tensor(xn, device=dev, requires_grad=True)
        w = fg.tensor(np.linspace(0.5, 1.5, 5, dtype=np.float32), device=dev, requires_grad=True)
        b = fg.tensor(np.linspace(-0.2, 0.2, 5, dtype=np.float32), device=dev, requires_grad=True)
        rm = fg.tensor(np.linspace(-1, 1, 5, dtype=np.float32), device=dev)
        rv = fg.tensor(np.linspace(0.5, 2, 5, dtype=np.float32), device=dev)
        y = _bn(x, w, b, rm, rv, training, relu)
        (y * fg.tensor(gn, device=dev)).sum().backward()
        out[dev] = [t.numpy() for t in (y, x.grad, w.grad, b.grad, rm, rv)]
    for name, c, g in zip(("y", "dx", "dw", "db", "running_mean", "running_var"), out["cpu"], out["gpu"]):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4, err_msg=name)


def test_batch_norm_large_mean_keeps_precision(device):
    """(x - mean) * scale + beta, not x * scale + shift: the latter loses the spread of
    features whose mean is 1e4 times their standard deviation in float32."""
    xn = (1e4 + rng.standard_normal((64, 3))).astype(np.float32)
    y = _bn(fg.tensor(xn, device=device), None, None, None, None, True, False).numpy()
    x64 = xn.astype(np.float64)
    want = (x64 - x64.mean(0)) / np.sqrt(x64.var(0) + 1e-5)
    np.testing.assert_allclose(y, want, atol=2e-3)


def test_batch_norm_refuses_mixed_devices_and_aliasing(device):
    x = fg.randn(4, 3, device=device)
    if fg.gpu_available():
        other = "cpu" if device == "gpu" else "gpu"
        with pytest.raises(fg.DeviceError, match="batch_norm: running_mean is on"):
            _bn(x, None, None, fg.zeros(3, device=other), fg.ones(3, device=other), True, False)
        with pytest.raises(fg.DeviceError, match="batch_norm: weight is on"):
            _bn(x, fg.ones(3, device=other), None, None, None, True, False)
    stats = fg.zeros(2, 3, device=device)
    with pytest.raises(ValueError, match="running_var shares memory"):
        _bn(x, None, None, fg.zeros(3, device=device), x[1], True, False)
    with pytest.raises(ValueError, match="shares memory"):
        _bn(x, None, None, stats[0], stats[1], True, False)
    with pytest.raises(ValueError, match="must be contiguous"):
        _bn(x, None, None, fg.zeros(6, device=device)[::2], fg.ones(3, device=device), True, False)
    with pytest.raises(fg.DTypeError, match="batch_norm: expected a floating-point"):
        _bn(fg.ones(4, 3, dtype=fg.int64), None, None, None, None, True, False)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_gradcheck_float64(reduction, smoothing):
    x = fg.tensor(rng.standard_normal((5, 4)) * 2, dtype=fg.float64, requires_grad=True)
    y = fg.tensor(rng.integers(0, 4, 5))
    c = fg.tensor(rng.standard_normal(5), dtype=fg.float64)

    def fn(x):
        loss = fg.losses.cross_entropy(x, y, label_smoothing=smoothing, reduction=reduction)
        return (loss * c).sum() if reduction == "none" else loss

    assert gradcheck(fn, (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gpu_equals_cpu_on_a_view(reduction):
    """Strided logits (a transposed view) and a gradient seeded on either side."""
    if not fg.gpu_available():
        pytest.skip("no GPU adapter")
    zn = (rng.standard_normal((6, 7)) * 4).astype(np.float32)
    yn = rng.integers(0, 6, 7)
    out = {}
    for dev in ("cpu", "gpu"):
        z = fg.tensor(zn, device=dev, requires_grad=True)
        loss = fg.losses.cross_entropy(z.t(), fg.tensor(yn), label_smoothing=0.1, reduction=reduction)
        (loss.sum() if reduction == "none" else loss).backward()
        out[dev] = (loss.numpy(), z.grad.numpy())
    for c, g in zip(out["cpu"], out["gpu"]):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)


def test_cross_entropy_of_no_rows(device):
    z = fg.zeros(0, 3, device=device, requires_grad=True)
    y = fg.tensor(np.zeros(0, dtype=np.int64))
    assert np.isnan(fg.losses.cross_entropy(z, y).item())
    s = fg.losses.cross_entropy(z, y, reduction="sum")
    s.backward()
    assert s.item() == 0.0 and z.grad.shape == (0, 3)


def _bn_relu_dropout(device, fused, p=0.3, seed=11, shape=(300, 70)):
    """BatchNorm1d -> ReLU -> Dropout(p) in training, fused by Sequential or run module by
    module (a forward hook on the Dropout keeps Sequential from fusing it); returns y and
    the gradients of x, gamma and beta for a fixed upstream gradient."""
    data = np.random.default_rng(4)
    xn = (data.standard_normal(shape) * 2 + 0.5).astype(np.float32)
    gn = data.standard_normal(shape).astype(np.float32)
    fg.manual_seed(seed)
    net = fg.nn.Sequential(fg.nn.BatchNorm1d(shape[1]), fg.nn.ReLU(), fg.nn.Dropout(p)).to(device)
    if not fused:
        net[2].register_forward_hook(lambda m, i, o: None)
    net.train()
    x = fg.tensor(xn, device=device, requires_grad=True)
    y = net(x)
    (y * fg.tensor(gn, device=device)).sum().backward()
    bn = net[0]
    return [t.numpy() for t in (y, x.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var)]


def test_batch_norm_relu_dropout_fused_is_the_unfused_chain_bit_for_bit():
    """Sequential fuses BatchNorm1d -> ReLU -> Dropout into batch norm's kernels; the mask is
    the one the Dropout module would draw (the same stream position), and the arithmetic
    the same, so outputs and gradients match the module-by-module chain exactly."""
    fused, chain = _bn_relu_dropout("cpu", True), _bn_relu_dropout("cpu", False)
    for name, a, b in zip(("y", "dx", "dgamma", "dbeta", "running_mean", "running_var"), fused, chain):
        np.testing.assert_array_equal(a, b, err_msg=name)
    y = fused[0]
    dropped = (y == 0).mean()
    assert 0.6 < dropped < 0.7  # relu zeros half, then dropout 0.3 of the rest: 0.65
    # and the stream moved on as the unfused chain's did: the next draw is the same
    fg.manual_seed(11)
    fg.nn.Dropout(0.3)(fg.ones(300 * 70))
    after = fg.rand(3).numpy()
    _bn_relu_dropout("cpu", True)
    np.testing.assert_array_equal(fg.rand(3).numpy(), after)


def test_batch_norm_relu_dropout_fused_gpu_equals_cpu():
    if not fg.gpu_available():
        pytest.skip("no GPU adapter")
    cpu, gpu = _bn_relu_dropout("cpu", True), _bn_relu_dropout("gpu", True)
    # the same mask on both devices: the same elements dropped
    np.testing.assert_array_equal(cpu[0] == 0, gpu[0] == 0)
    for name, c, g in zip(("y", "dx", "dgamma", "dbeta", "running_mean", "running_var"), cpu, gpu):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4, err_msg=name)


def test_batch_norm_dropout_probability_is_checked():
    x = fg.randn(4, 3)
    with pytest.raises(ValueError, match="dropout probability must be in"):
        _core.batch_norm(x, None, None, None, None, True, 0.1, 1e-5, "relu", 1.5)


@pytest.mark.parametrize("dtype", ["half", "bfloat16"])
def test_batch_norm_relu_dropout_fused_in_half_precision(dtype):
    """In float16/bfloat16 the fused chain rounds once where the module-by-module chain
    rounded after batch norm and again after dropout: the same mask, values within a
    rounding of each other."""

    def run(fused):
        fg.manual_seed(2)
        net = getattr(fg.nn.Sequential(fg.nn.BatchNorm1d(40), fg.nn.ReLU(), fg.nn.Dropout(0.3)), dtype)()
        if not fused:
            net[2].register_forward_hook(lambda m, i, o: None)
        x = getattr(fg.randn(33, 40), dtype)().requires_grad_()
        y = net(x)
        (y * y).sum().backward()
        return y.float().numpy(), x.grad.float().numpy()

    (y, dx), (y_chain, dx_chain) = run(True), run(False)
    np.testing.assert_array_equal(y == 0, y_chain == 0)
    eps = 2.0**-7 if dtype == "bfloat16" else 2.0**-10
    np.testing.assert_allclose(y, y_chain, rtol=2 * eps, atol=2 * eps * np.abs(y_chain).max())
    np.testing.assert_allclose(dx, dx_chain, rtol=4 * eps, atol=4 * eps * np.abs(dx_chain).max())


def _dropout_factor(kind: str, p: float) -> np.float32:
    if kind == "dropout":
        return np.float32(1 / (1 - p))
    alpha_p = -1.0507009873554804934193349852946 * 1.6732632423543772848170429916717
    return np.float32(1 / np.sqrt((1 - p) * (1 + p * alpha_p * alpha_p)))


@pytest.mark.parametrize("kind,p", [("dropout", 0.3), ("alpha_dropout", 0.1)])
@pytest.mark.parametrize("shape", [(37, 29), (3, 9000)])
@pytest.mark.parametrize("threads", [1, 2])
def test_dropout_backward_is_the_gradient_times_the_forward_factor(kind, p, shape, threads):
    """The host keeps dropout's mask as bits for the backward: dx = g * A exactly, with A the
    kept elements' factor and 0 where dropped (so an infinite gradient gives NaN there, as
    g * 0), for sizes that are not whole bytes of the mask, a gradient that arrives as a
    transposed view, and the mask split between threads."""
    old = fg.get_num_threads()
    fg.set_num_threads(threads)
    try:
        x = fg.tensor(rng.standard_normal(shape).astype(np.float32) + 5, requires_grad=True)
        y = getattr(_core, kind)(x, p, True)
        g = rng.standard_normal(shape[::-1]).astype(np.float32)
        g[0, :4] = np.inf
        (y.t() * fg.tensor(g)).sum().backward()
    finally:
        fg.set_num_threads(old)
    yv, a = y.numpy(), _dropout_factor(kind, p)
    # every dropped element takes one value (0, or alpha dropout's), the kept ones x A + B
    values, counts = np.unique(yv, return_counts=True)
    kept = yv != values[counts.argmax()]
    assert 0 < kept.mean() < 1
    with np.errstate(invalid="ignore"):
        want = g.T * np.where(kept, a, np.float32(0))
    np.testing.assert_array_equal(x.grad.numpy(), want)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_dropout_gradient_of_a_half_tensor_is_half(dtype):
    """As PyTorch: the gradient of a float16/bfloat16 input keeps its dtype."""
    x = fg.randn(16, 20).to(getattr(fg, dtype)).requires_grad_()
    for kind in ("dropout", "alpha_dropout"):
        x.grad = None
        getattr(_core, kind)(x, 0.2, True).sum().backward()
        assert x.grad.dtype == getattr(fg, dtype)


def _residual_block(device, fused, dtype="float", p=0.2, seed=7, skip_grad=True):
    """A residual block, x + (Linear -> BatchNorm1d -> ReLU -> Dropout)(x), in training:
    with the shortcut added inside batch norm's kernels (`fused`), or with a forward hook
    on the Dropout, which keeps Sequential from fusing (and so Residual from passing it
    the shortcut). Returns the output and the gradients of x and of every parameter."""
    data = np.random.default_rng(9)
    xn = data.standard_normal((64, 48)).astype(np.float32)
    gn = data.standard_normal((64, 48)).astype(np.float32)
    fg.manual_seed(seed)
    body = fg.nn.Sequential(fg.nn.Linear(48, 48), fg.nn.BatchNorm1d(48), fg.nn.ReLU(), fg.nn.Dropout(p))
    block = getattr(fg.nn.Residual(body), dtype)().to(device)
    if not fused:
        body[3].register_forward_hook(lambda m, i, o: None)
    x = getattr(fg.tensor(xn, device=device), dtype)().requires_grad_(skip_grad)
    y = block(x)
    (y * getattr(fg.tensor(gn, device=device), dtype)()).sum().backward()
    grads = [t.grad for t in [x, *block.parameters()] if t.grad is not None]
    return [t.float().numpy() for t in [y, *grads]]


@pytest.mark.parametrize("dtype", ["float", "double"])
def test_residual_shortcut_added_in_batch_norm_is_the_unfused_block_bit_for_bit(dtype):
    """Residual passes its shortcut to the body's last fused batch norm (-> ReLU ->
    Dropout), which adds it last, as `skip + y`: output and every gradient equal the
    module-by-module block's exactly (the shortcut's gradient is the output's)."""
    fused, chain = _residual_block("cpu", True, dtype), _residual_block("cpu", False, dtype)
    assert len(fused) == len(chain) == 6  # y, dx, the Linear's two, batch norm's two
    for i, (a, b) in enumerate(zip(fused, chain)):
        np.testing.assert_array_equal(a, b, err_msg=str(i))


def test_residual_shortcut_in_batch_norm_on_the_gpu():
    """On the GPU the shortcut is read inside batch norm's one forward dispatch: a block's
    forward is the product and the batch norm, two dispatches, where the unfused block
    adds a third; values as on the CPU."""
    if not fg.gpu_available():
        pytest.skip("no GPU adapter")
    cpu, gpu = _residual_block("cpu", True), _residual_block("gpu", True)
    for i, (c, g) in enumerate(zip(cpu, gpu)):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4, err_msg=str(i))
    chain = _residual_block("gpu", False)
    for i, (c, g) in enumerate(zip(chain, gpu)):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6, err_msg=str(i))
    body = fg.nn.Sequential(fg.nn.Linear(48, 48), fg.nn.BatchNorm1d(48), fg.nn.ReLU(), fg.nn.Dropout(0.2))
    block = fg.nn.Residual(body).to("gpu")
    x = fg.randn(64, 48, device="gpu")
    with fg.no_grad():
        block(x)
        fg.gpu.synchronize()
        d0 = fg.gpu.stats()["dispatches"]
        block(x)
        assert fg.gpu.stats()["dispatches"] - d0 == 2
        body[3].register_forward_hook(lambda m, i, o: None)
        d0 = fg.gpu.stats()["dispatches"]
        block(x)
        assert fg.gpu.stats()["dispatches"] - d0 == 4  # product, batch norm, dropout, add


def test_batch_norm_residual_argument_is_checked_and_promotes():
    x = fg.randn(8, 5)
    with pytest.raises(fg.ShapeError, match="residual has shape"):
        _core.batch_norm(x, None, None, None, None, True, 0.1, 1e-5, None, 0.0, fg.randn(8, 4))
    # another dtype: added after the kernels, with the usual promotion (skip + y)
    skip = fg.randn(8, 5, dtype=fg.float64)
    got = _core.batch_norm(x, None, None, None, None, True, 0.1, 1e-5, "relu", 0.0, skip)
    want = skip + _core.batch_norm(x, None, None, None, None, True, 0.1, 1e-5, "relu", 0.0)
    assert got.dtype == fg.float64
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    # no shortcut gradient asked: none computed, the others as usual
    assert len(_residual_block("cpu", True, skip_grad=False)) == 5


def _linear_act_dropout(device, fused, act, drop, dtype="float32", seed=13):
    """Linear -> act -> Dropout/AlphaDropout as a Sequential (fused) or layer by layer."""
    fg.manual_seed(seed)
    acts = {"selu": fg.nn.SELU, "relu": fg.nn.ReLU, "tanh": fg.nn.Tanh, "elu": lambda: fg.nn.ELU(0.7)}
    drops = {"dropout": lambda: fg.nn.Dropout(0.3), "alpha": lambda: fg.nn.AlphaDropout(0.1)}
    layers = [fg.nn.Linear(23, 37), acts[act](), drops[drop]()]
    net = fg.nn.Sequential(*layers).to(device)
    if dtype == "float64":
        net = net.double()
    x = fg.tensor(np.random.default_rng(1).standard_normal((41, 23)), dtype=getattr(fg, dtype), device=device)
    x.requires_grad_()
    gn = fg.tensor(
        np.random.default_rng(2).standard_normal((41, 37)), dtype=getattr(fg, dtype), device=device
    )
    y = net(x) if fused else layers[2](layers[1](layers[0](x)))
    (y * gn).sum().backward()
    lin = layers[0]
    return [t.numpy() for t in (y, x.grad, lin.weight.grad, lin.bias.grad)], fg.rand(2).numpy()


@pytest.mark.parametrize("act", ["selu", "relu", "tanh", "elu"])
@pytest.mark.parametrize("drop", ["dropout", "alpha"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_linear_activation_dropout_fused_is_the_unfused_chain_bit_for_bit(act, drop, dtype):
    """Sequential runs Linear -> activation -> (Alpha)Dropout as one node: the mask is the
    one the Dropout module would draw (the same stream position, and the stream moves on
    alike), and the backward's one pass (mask, then the activation's rule from its output)
    gives the separate ops' bits."""
    (fused, after_f), (chain, after_c) = (
        _linear_act_dropout("cpu", True, act, drop, dtype),
        _linear_act_dropout("cpu", False, act, drop, dtype),
    )
    for name, a, b in zip(("y", "dx", "dw", "db"), fused, chain):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(after_f, after_c)
    # a mask was applied: dropout zeros, alpha dropout puts its saturation value
    y = fused[0]
    hit = (y == 0) if drop == "dropout" else np.isclose(y, y.min())
    assert hit.mean() > 0.05


def test_linear_activation_dropout_fused_gpu_equals_cpu():
    if not fg.gpu_available():
        pytest.skip("no GPU adapter")
    for drop in ("dropout", "alpha"):
        (cpu, _), (gpu, _) = (
            _linear_act_dropout("cpu", True, "selu", drop),
            _linear_act_dropout("gpu", True, "selu", drop),
        )
        np.testing.assert_array_equal(np.isclose(cpu[0], cpu[0].min()), np.isclose(gpu[0], gpu[0].min()))
        for name, c, g in zip(("y", "dx", "dw", "db"), cpu, gpu):
            np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4, err_msg=f"{drop} {name}")


@pytest.mark.parametrize("drop", [(0.2, False), (0.1, True)])
def test_linear_dropout_gradcheck_float64(drop):
    """The fused node's rule against finite differences: the mask is drawn again from one
    seed at every evaluation, so the function is deterministic."""
    p, alpha = drop
    x = fg.tensor(rng.standard_normal((5, 4)), dtype=fg.float64, requires_grad=True)
    w = fg.tensor(rng.standard_normal((3, 4)), dtype=fg.float64, requires_grad=True)
    b = fg.tensor(rng.standard_normal(3), dtype=fg.float64, requires_grad=True)
    c = fg.tensor(rng.standard_normal((5, 3)), dtype=fg.float64)

    def fn(x, w, b):
        fg.manual_seed(3)
        return (_core.linear(x, w, b, "selu", dropout=p, alpha_dropout=alpha) * c).sum()

    assert gradcheck(fn, (x, w, b))


def test_linear_dropout_keeps_the_separate_ops_edges():
    """p = 0 is the identity's draw-free path, p = 1 composes (all dropped), a probability
    outside [0, 1] is the dropout's own ValueError, and no activation composes too."""
    x, w = fg.randn(4, 3), fg.randn(5, 3)
    y0 = _core.linear(x, w, None, "relu")
    fg.manual_seed(1)
    state = fg.rand(1).numpy()
    fg.manual_seed(1)
    np.testing.assert_array_equal(_core.linear(x, w, None, "relu", dropout=0.0).numpy(), y0.numpy())
    np.testing.assert_array_equal(fg.rand(1).numpy(), state)  # nothing drawn
    np.testing.assert_array_equal(_core.linear(x, w, None, "relu", dropout=1.0).numpy(), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="dropout: probability must be in"):
        _core.linear(x, w, None, "relu", dropout=1.5)
    with pytest.raises(ValueError, match="alpha_dropout: probability must be in"):
        _core.linear(x, w, None, "selu", dropout=-0.1, alpha_dropout=True)
    fg.manual_seed(4)
    a = _core.linear(x, w, None, None, dropout=0.5).numpy()
    fg.manual_seed(4)
    np.testing.assert_array_equal(a, fg.nn.functional.dropout(_core.linear(x, w, None), 0.5).numpy())
