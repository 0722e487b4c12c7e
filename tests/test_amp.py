"""Automatic mixed precision (issue 18): `fg.autocast` lowers the products to half precision
and keeps softmax, losses, batch norm and sums in float32, as PyTorch's autocast lists do;
`fg.GradScaler` scales the loss, skips steps with inf/NaN gradients and adapts the scale, as
torch.amp.GradScaler; the weights stay float32 (master weights) on both devices; a
checkpoint written under autocast loads and trains on the CPU; `fit(precision="mixed")`."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import ferrograd as fg
import ferrograd.nn as nn
import ferrograd.nn.functional as F

rng = np.random.default_rng(5)


def test_autocast_lowers_products_and_keeps_the_float32_ops_in_float32(device):
    dev = "gpu" if device == "gpu" else "cpu"
    x = fg.tensor(rng.standard_normal((8, 6)).astype(np.float32)).to(device)
    w = fg.tensor(rng.standard_normal((5, 6)).astype(np.float32)).to(device).requires_grad_()
    img = fg.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32)).to(device)
    k = fg.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32)).to(device)
    for dt in (fg.float16, fg.bfloat16):
        with fg.autocast(dev, dtype=dt):
            assert fg.amp.is_autocast_enabled(dev) and fg.amp.get_autocast_dtype(dev) == dt
            y = F.linear(x, w)
            assert y.dtype == dt
            assert (x @ w.t()).dtype == dt and x.mm(w.t()).dtype == dt
            assert F.conv2d(img, k).dtype == dt
            # the float32 list: softmax, log_softmax, losses, batch norm, sums
            assert F.softmax(y, 1).dtype == fg.float32 and F.log_softmax(y, 1).dtype == fg.float32
            labels = fg.tensor(np.arange(8) % 5)
            assert F.cross_entropy(y, labels).dtype == fg.float32
            assert F.mse_loss(y, y.detach() * 0.5).dtype == fg.float32
            assert y.sum().dtype == fg.float32
            bn = nn.BatchNorm1d(5).to(device)
            assert bn(y).dtype == fg.float32
            if device == "cpu":  # float64 is left alone, as PyTorch leaves it (the GPU has none)
                assert (x.double() @ w.double().t()).dtype == fg.float64
            with fg.autocast(dev, enabled=False):
                assert F.linear(x, w).dtype == fg.float32
            assert F.linear(x, w).dtype == dt  # restored on leaving the inner region
        assert not fg.amp.is_autocast_enabled(dev)
        assert F.linear(x, w).dtype == fg.float32
        # the values are the float32 product's, to the half type's precision
        want = x.cpu().numpy() @ w.detach().cpu().numpy().T
        tol = 1e-2 if dt == fg.float16 else 5e-2
        np.testing.assert_allclose(y.float().cpu().numpy(), want, rtol=tol, atol=tol)


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("x_half", [False, True])
@pytest.mark.parametrize("act", [None, "relu"])
@pytest.mark.parametrize("shape", [(128, 64, 48), (32, 20, 10)], ids=["vec4", "scalar-kernel"])
def test_autocast_linear_on_the_gpu_fuses_its_casts_into_the_products(dtype, x_half, act, shape):
    """Under autocast a GPU Linear of float32 operands reads them rounded to the half type
    inside the product, writes its gradients rounded and cast back inside theirs, and sums
    the bias gradient in the weight gradient's dispatch: one dispatch forward (no cast
    passes) and the same bits as casting first (the bias gradient, summed in another order,
    to the half type's rounding). Unaligned shapes take the scalar kernel, which does the
    same."""
    dt = getattr(fg, dtype)
    r = np.random.default_rng(11)
    m, k, n = shape
    xs = r.standard_normal((m, k)).astype(np.float32)
    ws = (r.standard_normal((n, k)) / 8).astype(np.float32)
    bs = r.standard_normal(n).astype(np.float32)
    gs = r.standard_normal((m, n)).astype(np.float32)

    def run(fused):
        x = fg.tensor(xs, device="gpu")
        x = (x.to(dt) if x_half else x).detach().requires_grad_()
        w = fg.tensor(ws, device="gpu", requires_grad=True)
        b = fg.tensor(bs, device="gpu", requires_grad=True)
        g = fg.tensor(gs, device="gpu").to(dt)
        fg.gpu.synchronize()
        d0 = fg.gpu.stats()["dispatches"]
        with fg.autocast("gpu", dtype=dt):
            if fused:
                y = F.linear(x, w, b) if act is None else fg.linear(x, w, b, activation=act)
            else:  # every operand cast first: the unfused path
                xc, wc, bc = x.to(dt), w.to(dt), b.to(dt)
                y = F.linear(xc, wc, bc) if act is None else fg.linear(xc, wc, bc, activation=act)
        forward = fg.gpu.stats()["dispatches"] - d0
        y.backward(g)
        assert y.dtype == dt and x.grad.dtype == x.dtype
        assert w.grad.dtype == fg.float32 and b.grad.dtype == fg.float32
        return forward, [t.float().cpu().numpy() for t in (y, x.grad, w.grad, b.grad)]

    (n_fused, fused), (n_cast, cast) = run(True), run(False)
    assert n_fused == 1 and n_cast == 3 - x_half + 1, (n_fused, n_cast)
    if act is None:
        # the half sum cast back, bit for bit (on the scalar kernel's shapes one reduce pass
        # rounds as it writes, where it used to sum, pack, then unpack)
        g = fg.tensor(gs, device="gpu").to(dt)
        np.testing.assert_array_equal(fused[3], g.sum(0).float().numpy())
    for name, a, b in zip(["y", "x.grad", "w.grad"], fused[:3], cast[:3]):
        np.testing.assert_array_equal(a, b, err_msg=name)
    ulp = 2.0**-10 if dt == fg.float16 else 2.0**-7
    np.testing.assert_allclose(fused[3], cast[3], rtol=2 * ulp, atol=1e-6)
    # the bias gradient is the half type's value of the float32 sum
    gsum = gs.astype(np.float32) if act is None else gs * (fused[0] > 0)
    want = fg.tensor(fg.tensor(gsum).to(dt).float().numpy().sum(0)).to(dt).float().numpy()
    np.testing.assert_allclose(fused[3], want, rtol=2 * ulp, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("fused", [False, True], ids=["bn", "bn-relu-dropout"])
@pytest.mark.parametrize("c", [24, 7])
def test_autocast_batch_norm_reads_a_half_input_as_it_rests(device, dtype, fused, c):
    """Under autocast a batch norm of a half input (a Linear's output) normalizes in float32:
    its output, statistics and parameter gradients are float32 and the input's gradient
    is in the input's dtype, with the bits of casting the input to float32 first; the GPU
    reads the packed input as it rests (one dispatch forward, none for the cast) and, for
    an even number of features, writes the input's gradient packed."""
    dev = "gpu" if device == "gpu" else "cpu"
    dt = getattr(fg, dtype)
    r = np.random.default_rng(2)
    xs = (r.standard_normal((64, c)) * 2 + 1).astype(np.float32)
    gs = r.standard_normal((64, c)).astype(np.float32)

    def run(cast_first):
        fg.manual_seed(7)
        layers = [nn.BatchNorm1d(c)] + ([nn.ReLU(), nn.Dropout(0.25)] if fused else [])
        model = nn.Sequential(*layers).to(device)
        x = fg.tensor(xs).to(device).to(dt).detach().requires_grad_()
        d0 = fg.gpu.stats()["dispatches"] if dev == "gpu" else 0
        with fg.autocast(dev, dtype=dt):
            y = model(x.float() if cast_first else x)
        forward = (fg.gpu.stats()["dispatches"] - d0) if dev == "gpu" else 0
        y.backward(fg.tensor(gs).to(device))
        bn = model[0]
        assert y.dtype == fg.float32 and x.grad.dtype == dt
        assert bn.weight.grad.dtype == fg.float32 and bn.running_mean.dtype == fg.float32
        state = [y, x.grad, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var]
        return forward, [t.detach().cpu().float().numpy() for t in state]

    (n_read, read), (n_cast, cast) = run(False), run(True)
    for name, a, b in zip(["y", "x.grad", "weight.grad", "bias.grad", "mean", "var"], read, cast):
        np.testing.assert_array_equal(a, b, err_msg=name)
    if dev == "gpu":
        assert n_read == 1 and n_cast == 2, (n_read, n_cast)


def test_the_weights_stay_float32_and_get_float32_gradients(device):
    dev = "gpu" if device == "gpu" else "cpu"
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).to(device)
    x = fg.tensor(rng.standard_normal((10, 6)).astype(np.float32)).to(device)
    labels = fg.tensor(np.arange(10) % 3)
    with fg.autocast(dev, dtype=fg.float16):
        out = model(x)
        loss = F.cross_entropy(out, labels)
    assert out.dtype == fg.float16 and loss.dtype == fg.float32
    loss.backward()
    ref = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    ref.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    F.cross_entropy(ref(x.cpu()), labels).backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        assert p.dtype == fg.float32 and p.grad.dtype == fg.float32
        np.testing.assert_allclose(p.grad.cpu().numpy(), q.grad.numpy(), rtol=2e-2, atol=2e-3)


def test_autocast_is_per_thread_and_a_decorator():
    seen = []

    @fg.autocast("cpu")
    def inside():
        seen.append(fg.amp.get_autocast_dtype("cpu"))
        t = threading.Thread(target=lambda: seen.append(fg.amp.is_autocast_enabled("cpu")))
        t.start()
        t.join()
        return F.linear(fg.ones(2, 3), fg.ones(4, 3)).dtype

    assert inside() == fg.bfloat16  # the CPU's default, as PyTorch's
    assert seen == [fg.bfloat16, False]
    assert not fg.amp.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        fg.autocast("cpu", dtype=fg.float64)
    with pytest.raises(ValueError, match="device_type"):
        fg.autocast("tpu")


def _one_step(model, opt, scaler, x, y, bad=False, device="cpu", half=True):
    opt.zero_grad()
    with fg.autocast(device, dtype=fg.float16, enabled=half):
        loss = F.cross_entropy(model(x), y)
    scaler.scale(loss).backward()
    if bad:
        model[0].weight.grad[0, 0] = float("inf")
    return scaler.step(opt)


def test_grad_scaler_skips_a_step_with_inf_and_adapts_the_scale():
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    opt = fg.optim.SGD(model.parameters(), lr=0.1)
    scaler = fg.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
    x, y = fg.randn(6, 4), fg.tensor(np.arange(6) % 3)
    # a clean step: the gradient the optimizer sees is the unscaled one
    before = model[0].weight.detach().numpy().copy()
    _one_step(model, opt, scaler, x, y)
    g = model[0].weight.grad.numpy().copy()
    ref = nn.Sequential(nn.Linear(4, 3))
    ref.load_state_dict({"0.weight": fg.tensor(before), "0.bias": model[0].bias.detach() + 0})
    with fg.autocast("cpu", dtype=fg.float16):
        F.cross_entropy(ref(x), y).backward()
    np.testing.assert_allclose(g, ref[0].weight.grad.numpy(), rtol=1e-2, atol=1e-3)
    np.testing.assert_allclose(model[0].weight.detach().numpy(), before - 0.1 * g, rtol=1e-6, atol=1e-7)
    scaler.update()
    assert scaler.get_scale() == 1024.0
    # an inf gradient: the step is skipped (weights unchanged) and the scale halves
    kept = model[0].weight.detach().numpy().copy()
    assert _one_step(model, opt, scaler, x, y, bad=True) is None
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), kept)
    scaler.update()
    assert scaler.get_scale() == 512.0
    # growth_interval clean steps in a row double it
    for _ in range(2):
        _one_step(model, opt, scaler, x, y)
        scaler.update()
    assert scaler.get_scale() == 1024.0
    assert scaler.state_dict() == {
        "scale": 1024.0,
        "growth_factor": 2.0,
        "backoff_factor": 0.5,
        "growth_interval": 2,
        "_growth_tracker": 0,
    }
    other = fg.GradScaler("cpu")
    other.load_state_dict(scaler.state_dict())
    assert other.get_scale() == 1024.0 and other.get_growth_interval() == 2


def test_grad_scaler_unscale_once_errors_and_disabled():
    model = nn.Sequential(nn.Linear(4, 3))
    opt = fg.optim.SGD(model.parameters(), lr=0.1)
    scaler = fg.GradScaler("cpu", init_scale=8.0)
    x, y = fg.randn(6, 4), fg.tensor(np.arange(6) % 3)
    opt.zero_grad()
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    scaled = model[0].weight.grad.numpy().copy()
    scaler.unscale_(opt)  # e.g. to clip: the gradients are the true ones now
    np.testing.assert_allclose(model[0].weight.grad.numpy(), scaled / 8.0, rtol=1e-6)
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)  # no second division
    with pytest.raises(RuntimeError, match="already been called"):
        scaler.step(opt)
    scaler.update()
    with pytest.raises(AssertionError, match="No inf checks"):
        scaler.update()
    off = fg.GradScaler("cpu", enabled=False)
    t = fg.tensor([2.0])
    assert off.scale(t) is t and off.get_scale() == 1.0 and off.state_dict() == {}
    assert [float(v.item()) for v in scaler.scale([t, t])] == [16.0, 16.0]
    with pytest.raises(ValueError, match="growth_factor"):
        fg.GradScaler("cpu", growth_factor=1.0)


def test_a_checkpoint_written_under_autocast_loads_and_trains_on_the_cpu(device, tmp_path):
    dev = "gpu" if device == "gpu" else "cpu"
    fg.manual_seed(0)
    model = fg.models.standard(20, 4, width=16).to(device)
    opt = fg.optim.Adam(model.parameters(), lr=1e-2)
    scaler = fg.GradScaler(dev)
    x = fg.tensor(rng.standard_normal((32, 20)).astype(np.float32)).to(device)
    y = fg.tensor(np.arange(32) % 4)
    for _ in range(3):
        opt.zero_grad()
        with fg.autocast(dev, dtype=fg.float16):
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    path = tmp_path / "amp.safetensors"
    fg.save(model.state_dict(), str(path))
    back = fg.models.standard(20, 4, width=16)
    back.load_state_dict(fg.load(str(path)))
    assert all(p.dtype == fg.float32 for p in back.parameters())
    opt2 = fg.optim.Adam(back.parameters(), lr=1e-2)
    first = None
    for _ in range(5):
        opt2.zero_grad()
        loss = F.cross_entropy(back(x.cpu()), y)
        loss.backward()
        opt2.step()
        first = first if first is not None else float(loss.item())
    assert np.isfinite(float(loss.item())) and float(loss.item()) < first


@pytest.mark.parametrize(
    "arch, build, floor",
    [
        ("standard", lambda: fg.models.standard(784, 10, width=128), 0.8),
        ("residual", lambda: fg.models.residual(784, 10, width=128, blocks=2), 0.8),
        ("self_normalizing", lambda: fg.models.self_normalizing(784, 10, width=128), 0.7),
    ],
    ids=["standard", "residual", "self_normalizing"],
)
def test_mixed_precision_training_reaches_float32_accuracy(device, arch, build, floor):
    """Each of the three networks on MNIST digits, float32 against mixed precision (float16
    and a GradScaler on the GPU, bfloat16 on the CPU) through fit: the same accuracy within
    the seed spread."""
    x, y = fg.data.load_mnist()
    x, y = x[:1600], y[:1600]
    acc = {}
    for precision in ("float32", "mixed"):
        fg.manual_seed(0)
        model = build().to(device)
        h = model.fit(x, y, epochs=3, batch_size=128, validation_split=0.25, verbose=0, precision=precision)
        acc[precision] = h.history["val_acc"][-1]
    assert acc["float32"] > floor, (arch, acc)
    assert abs(acc["mixed"] - acc["float32"]) < 0.04, (arch, acc)
    with pytest.raises(ValueError, match="precision"):
        fg.models.standard(784, 10).fit(x[:10], y[:10], precision="half")


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
def test_grad_scaler_unscales_gpu_gradients_in_a_few_dispatches():
    """On the GPU the scaler unscales every float32 gradient with a multi-tensor kernel
    (31 a dispatch on lavapipe) and sets one flag for inf or NaN before scaling, as
    PyTorch's _amp_foreach_non_finite_check_and_unscale_: the same values as one multiply
    per tensor, and the flag read back once. Views and halves go one by one."""
    rng = np.random.default_rng(0)
    sizes = [5, 64, 1, 300, 7, 9, 2, 33, 12, 4, 100] * 4
    host = [rng.standard_normal(n).astype(np.float32) * 300 for n in sizes[:40]]
    for bad_at, bad in [(None, None), (9, np.inf), (2, np.nan), (0, -np.inf), (35, np.inf)]:
        values = [h.copy() for h in host]
        if bad_at is not None:
            values[bad_at][values[bad_at].size // 2] = bad
        grads = [fg.tensor(v, device="gpu") for v in values]
        fg.gpu.synchronize()
        d0 = fg.gpu.stats()["dispatches"]
        flag = fg._core._unscale_grads(grads, 1 / 256)
        # 40 gradients: up to 32 a dispatch (31 on lavapipe, whose 32 bindings hold the flag too)
        assert fg.gpu.stats()["dispatches"] - d0 == 2
        assert flag.device == "gpu" and flag.shape == ()
        assert flag.item() == (0.0 if bad_at is None else 1.0), bad_at
        for g, v in zip(grads, values):
            np.testing.assert_array_equal(g.numpy(), v * np.float32(1 / 256))
    # not whole float32 buffers of their own: the caller goes one by one
    base = fg.tensor(host[3], device="gpu")
    assert fg._core._unscale_grads([base[1:], fg.tensor(host[1], device="gpu")], 0.5) is None
    assert fg._core._unscale_grads([base.half(), fg.tensor(host[1], device="gpu")], 0.5) is None
    assert fg._core._unscale_grads([base, base], 0.5) is None
    assert fg._core._unscale_grads([fg.tensor(host[0]), fg.tensor(host[1])], 0.5) is None
    # end to end: an inf gradient on the GPU skips the step and halves the scale
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).to("gpu")
    opt = fg.optim.SGD(model.parameters(), lr=0.1)
    scaler = fg.GradScaler("gpu", init_scale=1024.0)
    x, y = fg.randn(6, 4, device="gpu"), fg.tensor(np.arange(6) % 3)
    kept = [p.detach().numpy().copy() for p in model.parameters()]
    assert _one_step(model, opt, scaler, x, y, bad=True, device="gpu") is None
    for p, k in zip(model.parameters(), kept):
        np.testing.assert_array_equal(p.detach().numpy(), k)
    scaler.update()
    assert scaler.get_scale() == 512.0
    _one_step(model, opt, scaler, x, y, device="gpu")
    assert not np.array_equal(model[0].weight.detach().numpy(), kept[0])


GATED = {
    "sgd_momentum": lambda ps: fg.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    "sgd": lambda ps: fg.optim.SGD(ps, lr=0.05, weight_decay=1e-3),
    "adam": lambda ps: fg.optim.Adam(ps, lr=1e-2),
    "adamw": lambda ps: fg.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
    "adadelta": lambda ps: fg.optim.Adadelta(ps),
}


def _scaled_run(make_opt, gated: bool, half: bool, bad_steps=(1, 4), steps=7):
    """`steps` steps on the GPU (float16 autocast when `half`) with a GradScaler (interval
    2), an inf gradient at `bad_steps`: weights, optimizer state (as state_dict reports it),
    the scale after each update, and the bytes read back during the steps that follow the
    first."""
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)).to("gpu")
    opt = make_opt(model.parameters())
    opt._gated = gated
    scaler = fg.GradScaler("gpu", init_scale=2.0**10, growth_interval=2)
    r = np.random.default_rng(1)
    x = fg.tensor(r.standard_normal((10, 12)).astype(np.float32), device="gpu")
    y = fg.tensor(np.arange(10) % 3)
    scales, read = [], 0
    for s in range(steps):
        fg.gpu.synchronize()
        before = fg.gpu.stats()["bytes_read"]
        _one_step(model, opt, scaler, x, y, bad=s in bad_steps, device="gpu", half=half)
        scaler.update()
        fg.gpu.synchronize()
        read += (fg.gpu.stats()["bytes_read"] - before) if s else 0
        scales.append(scaler.get_scale())
    weights = [p.detach().numpy().copy() for p in model.parameters()]
    state = {
        i: {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in st.items()}
        for i, st in opt.state_dict()["state"].items()
    }
    return weights, state, scales, read


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
@pytest.mark.parametrize("name", list(GATED))
def test_a_gpu_grad_scaler_decides_on_the_device_as_the_host_would(name):
    """On the GPU the scale lives on the device and SGD, Adam(W) and Adadelta skip their own
    step where the unscale kernel found inf (PyTorch's fused optimizers with a scaler): no
    byte is read back during the steps, and the run matches the one that reads the flag and
    decides on the host: the same scales, step counts (skipped steps not counted) and state,
    the same weights (bit for bit where the update is the same formula; Adam's bias
    corrections are computed on the device in float32, so within float32 rounding: the
    forward stays float32 there, where float16 would magnify those last bits)."""
    exact = not name.startswith("adam")
    w_dev, st_dev, sc_dev, read_dev = _scaled_run(GATED[name], True, half=exact)
    w_host, st_host, sc_host, read_host = _scaled_run(GATED[name], False, half=exact)
    # (the steps after the first: SGD with momentum seeds its buffers on the host's decision)
    assert read_dev == 0, read_dev
    assert read_host > read_dev
    assert sc_dev == sc_host == [1024.0, 512.0, 512.0, 1024.0, 512.0, 512.0, 1024.0]
    assert st_dev.keys() == st_host.keys()
    for i in st_dev:
        assert st_dev[i].keys() == st_host[i].keys()
        for k in st_dev[i]:
            if isinstance(st_dev[i][k], np.ndarray) and not exact:
                # a sum of gradients: judged against its largest element, as float32 rounding is
                scale = np.abs(st_host[i][k]).max()
                np.testing.assert_allclose(
                    st_dev[i][k], st_host[i][k], rtol=1e-4, atol=1e-4 * scale, err_msg=k
                )
            else:
                np.testing.assert_array_equal(st_dev[i][k], st_host[i][k], err_msg=k)
    for a, b in zip(w_dev, w_host):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.abs(b).max())
    if st_dev and "step" in st_dev[0]:
        assert st_dev[0]["step"] == 5  # 7 steps, 2 skipped


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
def test_a_skipped_gated_step_moves_nothing_and_is_not_counted():
    """A step skipped on the device leaves weights, moments and the count as they were; an
    ungated step afterwards (or a checkpoint) counts only the steps taken, so Adam's bias
    corrections stay PyTorch's."""
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4)).to("gpu")
    opt = fg.optim.Adam(model.parameters(), lr=1e-2)
    scaler = fg.GradScaler("gpu", init_scale=256.0)
    x, y = fg.randn(8, 6, device="gpu"), fg.tensor(np.arange(8) % 4)
    _one_step(model, opt, scaler, x, y, device="gpu")
    scaler.update()
    kept = [p.detach().numpy().copy() for p in model.parameters()]
    moments = [st["exp_avg"].numpy().copy() for st in opt.state.values()]
    _one_step(model, opt, scaler, x, y, bad=True, device="gpu")
    scaler.update()
    for p, k in zip(model.parameters(), kept):
        np.testing.assert_array_equal(p.detach().numpy(), k)
    for st, m in zip(opt.state.values(), moments):
        np.testing.assert_array_equal(st["exp_avg"].numpy(), m)
    assert [st["step"] for st in opt.state_dict()["state"].values()] == [1, 1]
    assert scaler.get_scale() == 128.0
    # a plain step folds the device's count into the host's: this is step 2
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert [st["step"] for st in opt.state.values()] == [2, 2]
    assert opt._skipped.item() == 0.0


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
def test_the_device_scale_update_follows_the_host_schedule():
    """update() on the device (one kernel) against the host's arithmetic for a sequence of
    clean and overflowing steps: backoff, growth after the interval, a scale that would
    overflow float32 stays, and update(new_scale) / load_state_dict write the device copy."""
    flags = [0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    for init in (2.0**16, 2.0**126):  # 2**128 would overflow float32: no growth there
        dev = fg.GradScaler("gpu", init_scale=init, growth_interval=3)
        host = fg.GradScaler("cpu", init_scale=init, growth_interval=3)
        dev._on_device("gpu")
        for f in flags:
            for s, found in ((dev, fg.tensor(float(f), device="gpu")), (host, bool(f))):
                s._per_optimizer[0] = {"stage": 2, "found_inf": found}
                s.update()
            assert dev.state_dict() == host.state_dict(), f
            assert dev._state_t.numpy()[1] == np.float32(1 / np.float32(dev.get_scale()))
    dev.update(64.0)
    assert dev.get_scale() == 64.0 and dev._state_t.numpy()[1] == 1 / 64
    dev.load_state_dict({**host.state_dict(), "scale": 8.0, "_growth_tracker": 2})
    assert dev._state_t.numpy().tolist() == [8.0, 0.125, 2.0, 0.0]


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
def test_device_scale_kernels_refuse_views_they_would_misread():
    """The unscale and update kernels address their state's storage from element 0: a view
    that starts elsewhere, or steps over elements, is refused (None / False), not misread."""
    big = fg.tensor(np.array([9.0, 9.0, 1024.0, 1 / 1024, 0.0, 0.0], np.float32), device="gpu")
    g = fg.tensor(np.ones(3, np.float32), device="gpu")
    assert fg._core._unscale_grads([g], 1.0, big[2:]) is None
    found = fg.zeros(1).to("gpu")
    assert fg._core._amp_update_scale(big[2:], found, 2.0, 0.5, 3) is False
    strided = fg.tensor(np.array([1024.0, 0, 1 / 1024, 0, 0, 0, 0, 0], np.float32), device="gpu")
    assert not strided[::2].is_contiguous()
    assert fg._core._amp_update_scale(strided[::2], found, 2.0, 0.5, 3) is False
    np.testing.assert_array_equal(big.numpy()[2:4], [1024.0, 1 / 1024])
    with pytest.raises(ValueError, match="amp_update_scale: expected a float32 state of shape"):
        fg._core._amp_update_scale(fg.zeros(3).to("gpu"), found, 2.0, 0.5, 3)
