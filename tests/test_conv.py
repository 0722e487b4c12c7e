"""Convolution, pooling, padding and resizing (issue 16): forward against direct NumPy
loops, float64 gradchecks, the same results on the GPU, the layers' configs and errors."""

from __future__ import annotations

import numpy as np
import op_table_cases as oc
import pytest

import ferrograd as fg
from ferrograd import _core, nn
from ferrograd.autograd import gradcheck

F = nn.functional
rng = np.random.default_rng(11)


# the direct-loop reference is the op table's (one spec for both files)
conv2d_ref = oc.conv2d


CASES = [
    # (N, C, H, W), (OC, KH, KW), stride, padding, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3), (1, 1), (0, 0), (1, 1), 1),
    ((2, 3, 7, 6), (4, 3, 3), (2, 1), (1, 2), (1, 1), 1),
    ((1, 4, 9, 9), (6, 3, 2), (2, 2), (1, 0), (2, 3), 2),
    ((2, 4, 5, 5), (4, 3, 3), (1, 1), (1, 1), (1, 1), 4),  # depthwise
    ((3, 2, 4, 4), (5, 1, 1), (1, 1), (0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation,groups", CASES)
def test_conv2d_matches_direct_loops_and_gradchecks(xs, ws, stride, padding, dilation, groups, device):
    x = rng.standard_normal(xs)
    w = rng.standard_normal((ws[0], xs[1] // groups, ws[1], ws[2]))
    b = rng.standard_normal(ws[0])
    got = F.conv2d(
        fg.tensor(x.astype(np.float32)).to(device),
        fg.tensor(w.astype(np.float32)).to(device),
        fg.tensor(b.astype(np.float32)).to(device),
        stride,
        padding,
        dilation,
        groups,
    )
    np.testing.assert_allclose(
        got.numpy(), conv2d_ref(x, w, b, stride, padding, dilation, groups), rtol=1e-4, atol=1e-4
    )
    if device == "cpu":
        xt, wt, bt = (fg.tensor(a, requires_grad=True) for a in (x, w, b))
        assert gradcheck(lambda a, c, d: F.conv2d(a, c, d, stride, padding, dilation, groups), [xt, wt, bt])


def test_host_conv_backward_over_many_images_matches_the_lowering_at_any_thread_count():
    """The host convolution runs image by image and sums the weight gradient in fixed
    groups of images: over 19 images (groups of 8, the last partial) its gradients equal the
    im2col lowering's (unfold2d, a product, fold2d through autograd), and 1 and 2 threads
    give the same bits."""
    r = np.random.default_rng(19)  # its own: the module's stream feeds the tests below
    x = r.standard_normal((19, 3, 9, 8))
    w = r.standard_normal((5, 3, 3, 2))
    g = r.standard_normal((19, 5, 5, 8))

    def grads(threads):
        before = fg.get_num_threads()
        fg.set_num_threads(threads)
        try:
            xt, wt = fg.tensor(x, requires_grad=True), fg.tensor(w, requires_grad=True)
            F.conv2d(xt, wt, None, (2, 1), (1, 1), (1, 2)).backward(fg.tensor(g))
            return xt.grad.numpy(), wt.grad.numpy()
        finally:
            fg.set_num_threads(before)

    dx, dw = grads(1)
    dx2, dw2 = grads(2)
    np.testing.assert_array_equal(dx, dx2)
    np.testing.assert_array_equal(dw, dw2)
    xt, wt = fg.tensor(x, requires_grad=True), fg.tensor(w, requires_grad=True)
    cols, (oh, ow) = _core.unfold2d(xt, (3, 2), (2, 1), (1, 1), (1, 2))
    y = (cols @ wt.reshape(5, -1).t()).reshape(19, oh, ow, 5).permute(0, 3, 1, 2)
    y.backward(fg.tensor(g))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_padding_same_valid_and_conv1d():
    x = rng.standard_normal((2, 3, 8, 7))
    w = rng.standard_normal((4, 3, 4, 3))
    same = F.conv2d(fg.tensor(x), fg.tensor(w), padding="same")
    assert tuple(same.shape) == (2, 4, 8, 7)
    # "same" with an even kernel pads the extra row at the bottom (as PyTorch)
    ref = conv2d_ref(np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 0))), w, None, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(same.numpy(), ref, rtol=1e-9)
    valid = F.conv2d(fg.tensor(x), fg.tensor(w), padding="valid")
    assert tuple(valid.shape) == (2, 4, 5, 5)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        F.conv2d(fg.tensor(x), fg.tensor(w), stride=2, padding="same")
    s = rng.standard_normal((2, 3, 11))
    k = rng.standard_normal((5, 3, 3))
    got = F.conv1d(fg.tensor(s), fg.tensor(k), stride=2, padding=1, dilation=2)
    ref = conv2d_ref(s[:, :, None, :], k[:, :, None, :], None, (1, 2), (0, 1), (1, 2), 1)[:, :, 0]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-9)
    st = fg.tensor(s, requires_grad=True)
    assert gradcheck(lambda a: F.conv1d(a, fg.tensor(k), padding=1), [st])


def test_conv_transpose2d_is_the_input_gradient_of_conv2d():
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)> for every x, y (the adjoint), and
    PyTorch's output size formula."""
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((4, 3, 3, 2))
    for stride, padding, dilation in [((1, 1), (0, 0), (1, 1)), ((2, 3), (1, 0), (1, 2))]:
        y = F.conv2d(fg.tensor(x), fg.tensor(w), None, stride, padding, dilation).numpy()
        g = rng.standard_normal(y.shape)
        op = tuple((9 + 2 * padding[0] - dilation[0] * 2 - 1) % stride[0] for _ in [0]) + (
            (8 + 2 * padding[1] - dilation[1] * 1 - 1) % stride[1],
        )
        back = F.conv_transpose2d(fg.tensor(g), fg.tensor(w), None, stride, padding, op, 1, dilation).numpy()
        assert back.shape == x.shape
        assert (y * g).sum() == pytest.approx((x * back).sum(), rel=1e-9)
    gt = fg.tensor(rng.standard_normal((1, 3, 4, 4)), requires_grad=True)
    wt = fg.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    assert gradcheck(lambda a, b: F.conv_transpose2d(a, b, stride=2, padding=1, output_padding=1), [gt, wt])


def test_pooling_against_numpy_with_ceil_mode_and_padding(device):
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    xt = fg.tensor(x).to(device)
    got = F.max_pool2d(xt, 2).numpy()
    np.testing.assert_array_equal(got, x[:, :, :6, :8].reshape(2, 3, 3, 2, 4, 2).max(axis=(3, 5)))
    got = F.avg_pool2d(xt, (2, 2)).numpy()
    np.testing.assert_allclose(got, x[:, :, :6, :8].reshape(2, 3, 3, 2, 4, 2).mean(axis=(3, 5)), rtol=1e-6)
    # ceil_mode keeps the partial last window; padding is -inf for max, counted for avg
    got = F.max_pool2d(xt, 3, stride=2, padding=1, ceil_mode=True)
    assert tuple(got.shape) == (2, 3, 4, 5)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 2), (1, 2)), constant_values=-np.inf)
    ref = np.stack(
        [
            np.stack([xp[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].max(axis=(2, 3)) for j in range(5)], -1)
            for i in range(4)
        ],
        -2,
    )
    np.testing.assert_array_equal(got.numpy(), ref)
    got = F.avg_pool2d(xt, 3, stride=2, padding=1, count_include_pad=False).numpy()
    ones = np.pad(np.ones((7, 8)), 1)
    xz = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.stack(
        [
            np.stack(
                [
                    xz[:, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].sum(axis=(2, 3))
                    / ones[2 * i : 2 * i + 3, 2 * j : 2 * j + 3].sum()
                    for j in range(4)
                ],
                -1,
            )
            for i in range(4)
        ],
        -2,
    )
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    s = fg.tensor(x[:, :, 0, :]).to(device)
    np.testing.assert_array_equal(F.max_pool1d(s, 2).numpy(), x[:, :, 0, :].reshape(2, 3, 4, 2).max(-1))
    np.testing.assert_allclose(
        F.avg_pool1d(s, 4).numpy(), x[:, :, 0, :].reshape(2, 3, 2, 4).mean(-1), rtol=1e-6
    )


def test_max_pool_gradient_goes_to_the_first_maximum_of_each_window(device):
    """PyTorch's max_pool2d routes each window's gradient to one element, the first maximum
    in window order (ReLU outputs make all-zero windows common), and a NaN wins its window;
    overlapping windows that share a maximum add their gradients there."""
    x = fg.tensor(np.zeros((1, 1, 4, 4), np.float32)).to(device).requires_grad_()
    F.max_pool2d(x, 2).sum().backward()
    want = np.zeros((4, 4), np.float32)
    want[::2, ::2] = 1.0
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], want)
    v = np.array([[1.0, 5.0, 2.0], [5.0, np.nan, 0.0], [3.0, 4.0, 4.0]], np.float32)
    xt = fg.tensor(v[None, None]).to(device).requires_grad_()
    y = F.max_pool2d(xt, 2, stride=1)
    assert np.isnan(y.numpy()).all()  # every 2x2 window holds the NaN
    y.sum().backward()
    want = np.zeros((3, 3), np.float32)
    want[1, 1] = 4.0
    np.testing.assert_array_equal(xt.grad.numpy()[0, 0], want)
    v[1, 1] = -1.0
    xt = fg.tensor(v[None, None]).to(device).requires_grad_()
    y = F.max_pool2d(xt, 2, stride=1)
    np.testing.assert_array_equal(y.numpy()[0, 0], [[5.0, 5.0], [5.0, 4.0]])
    y.backward(fg.tensor(np.array([[[[1.0, 2.0], [4.0, 8.0]]]], np.float32)).to(device))
    want = np.zeros((3, 3), np.float32)
    want[0, 1] = 3.0  # the first two windows' first maximum
    want[1, 0] = 4.0
    want[2, 1] = 8.0
    np.testing.assert_array_equal(xt.grad.numpy()[0, 0], want)


def test_pooling_gradients():
    x = fg.tensor(rng.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) * 0.1, requires_grad=True)  # no ties
    assert gradcheck(lambda a: F.max_pool2d(a, 2, stride=1, padding=1), [x])
    assert gradcheck(
        lambda a: F.avg_pool2d(a, 3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), [x]
    )
    assert gradcheck(lambda a: F.adaptive_avg_pool2d(a, (3, 4)), [x])


def test_adaptive_avg_pool2d_windows():
    x = rng.standard_normal((1, 2, 5, 7))
    got = F.adaptive_avg_pool2d(fg.tensor(x), (3, 2)).numpy()
    for i in range(3):
        for j in range(2):
            y0, y1 = (i * 5) // 3, -(-(i + 1) * 5 // 3)
            x0, x1 = (j * 7) // 2, -(-(j + 1) * 7 // 2)
            np.testing.assert_allclose(got[:, :, i, j], x[:, :, y0:y1, x0:x1].mean(axis=(2, 3)))
    np.testing.assert_allclose(
        F.adaptive_avg_pool2d(fg.tensor(x), 1).numpy(), x.mean(axis=(2, 3), keepdims=True)
    )


@pytest.mark.parametrize(
    "mode,np_mode",
    [("constant", "constant"), ("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")],
)
def test_pad_modes_match_numpy(mode, np_mode):
    x = rng.standard_normal((2, 3, 4, 5))
    pads = (2, 1, 3, 0)  # last dim (2, 1), the one before (3, 0)
    got = F.pad(fg.tensor(x), pads, mode=mode, value=0.0)
    ref = np.pad(x, ((0, 0), (0, 0), (3, 0), (2, 1)), mode=np_mode)
    np.testing.assert_allclose(got.numpy(), ref)
    xt = fg.tensor(x, requires_grad=True)
    assert gradcheck(lambda a: F.pad(a, pads, mode=mode), [xt])
    np.testing.assert_allclose(F.pad(fg.tensor(x), (-1, -2), value=5).numpy(), x[..., 1:3])
    with pytest.raises(ValueError, match="pad must be an even number"):
        F.pad(fg.tensor(x), (1, 2, 3))


def test_interpolate_nearest_and_bilinear():
    x = rng.standard_normal((1, 2, 3, 4))
    near = F.interpolate(fg.tensor(x), scale_factor=2).numpy()
    np.testing.assert_array_equal(near, x.repeat(2, 2).repeat(2, 3))
    bil = F.interpolate(fg.tensor(x), size=(5, 7), mode="bilinear", align_corners=True).numpy()
    # align_corners: the corners are the input's corners, the centre row is an average
    np.testing.assert_allclose(bil[..., 0, 0], x[..., 0, 0])
    np.testing.assert_allclose(bil[..., -1, -1], x[..., -1, -1])
    np.testing.assert_allclose(bil[..., 2, 0], x[..., 1, 0])
    xt = fg.tensor(x, requires_grad=True)
    assert gradcheck(lambda a: F.interpolate(a, size=(5, 6), mode="bilinear"), [xt])


def test_batchnorm2d_and_dropout2d():
    x = rng.standard_normal((4, 3, 5, 5)) * 2 + 1
    bn = nn.BatchNorm2d(3)
    y = bn(fg.tensor(x.astype(np.float32))).numpy()
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean.ravel(), rtol=1e-4)
    bn.eval()
    assert tuple(bn(fg.tensor(x.astype(np.float32))).shape) == (4, 3, 5, 5)
    fg.manual_seed(0)
    d = nn.Dropout2d(0.5)
    out = d(fg.ones(8, 16, 3, 3)).numpy()
    per_channel = out.reshape(8, 16, 9)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert all(len(set(ch)) == 1 for ch in per_channel.reshape(-1, 9))  # whole channels
    d.eval()
    np.testing.assert_array_equal(d(fg.ones(2, 2, 2, 2)).numpy(), 1.0)


def test_layers_configs_and_errors(tmp_path):
    m = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, groups=2, padding_mode="reflect", padding=1),
        nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d(1),
        nn.Dropout2d(0.1),
        nn.Flatten(),
        nn.Linear(8, 3),
    )
    x = fg.randn(2, 1, 8, 8)
    m.eval()
    out = m(x)
    assert tuple(out.shape) == (2, 3)
    fg.save(m, tmp_path / "cnn.safetensors")
    again = fg.load(tmp_path / "cnn.safetensors")
    again.eval()
    np.testing.assert_allclose(again(x).numpy(), out.numpy(), rtol=1e-6)
    assert "Conv2d(1, 4, kernel_size=(3, 3)" in repr(m)
    with pytest.raises(fg.ShapeError, match=r"Conv2d: expected input \(N, 1, H, W\)"):
        m[0](fg.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="groups 3 must divide in_channels 4"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(fg.ShapeError, match="smaller than the kernel"):
        F.conv2d(fg.randn(1, 1, 2, 2), fg.randn(1, 1, 3, 3))
    c1 = nn.Conv1d(2, 3, 3, padding=1)
    assert tuple(c1(fg.randn(4, 2, 10)).shape) == (4, 3, 10)
    assert tuple(nn.MaxPool1d(2)(fg.randn(4, 2, 10)).shape) == (4, 2, 5)
    assert tuple(nn.AvgPool1d(5)(fg.randn(4, 2, 10)).shape) == (4, 2, 2)


def test_gpu_conv_forward_reads_windows_inside_the_product():
    """On the GPU a convolution's forward is one implicit-gemm dispatch that writes NCHW
    (no copy after it), never the im2col matrix and a separate matmul; its values are the
    CPU's."""
    if not fg.gpu_available():
        pytest.skip("no gpu adapter")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 10, 9)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 2)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    args = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    xg, wg, bg = (fg.tensor(a).to("gpu") for a in (x, w, b))
    F.conv2d(xg, wg, bg, **args).cpu()  # compiles the kernels
    with fg.no_grad():
        before = fg.gpu.stats()["dispatches"]
        y = F.conv2d(xg, wg, bg, **args)
        fg.gpu.synchronize()
        assert fg.gpu.stats()["dispatches"] - before == 1
    assert "conv_gemm" in fg.gpu.stats()["pipelines"]
    want = F.conv2d(fg.tensor(x), fg.tensor(w), fg.tensor(b), **args).numpy()
    np.testing.assert_allclose(y.cpu().numpy(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device", ["cpu", "gpu"] if fg.gpu_available() else ["cpu"])
def test_conv_transpose2d_layer_is_torchs(device):
    """nn.ConvTranspose2d, as torch.nn.ConvTranspose2d: weight (in, out / groups, KH, KW)
    with PyTorch's fan-in bound, the transposed convolution of the direct-loop reference,
    output_size choosing output_padding (and refusing sizes out of reach), a config that
    rebuilds it, and a gradient that trains both parameters."""
    fg.manual_seed(0)
    layer = nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=(1, 0), groups=2, dilation=(1, 2))
    assert tuple(layer.weight.shape) == (4, 3, 3, 2) and tuple(layer.bias.shape) == (6,)
    bound = 1 / np.sqrt(3 * 3 * 2)
    assert np.abs(layer.weight.detach().numpy()).max() <= bound
    x = rng.standard_normal((2, 4, 5, 4)).astype(np.float32)
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    layer = layer.to(device)
    xt = fg.tensor(x, device=device)
    y = layer(xt)
    ref = oc.conv_transpose2d(x, w, b, (2, 2), (1, 0), (0, 0), (1, 2), 2)
    assert tuple(y.shape) == ref.shape == (2, 6, 9, 9)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-5)
    # output_size: (9, 9) is the least; stride 2 also reaches (10, 10)
    y2 = layer(xt, output_size=(10, 9))
    ref2 = oc.conv_transpose2d(x, w, b, (2, 2), (1, 0), (1, 0), (1, 2), 2)
    assert tuple(y2.shape) == (2, 6, 10, 9)
    np.testing.assert_allclose(y2.numpy(), ref2, rtol=1e-5, atol=1e-5)
    assert tuple(layer(xt, output_size=[2, 6, 9, 10]).shape) == (2, 6, 9, 10)
    with pytest.raises(
        ValueError, match=r"output_size \(11, 9\) is not reachable.*dim 0 must be in \[9, 10\]$"
    ):
        layer(xt, output_size=(11, 9))
    with pytest.raises(fg.ShapeError, match=r"expected input \(N, 4, H, W\)"):
        layer(fg.zeros(2, 3, 5, 4, device=device))
    with pytest.raises(ValueError, match="output_padding"):
        nn.ConvTranspose2d(2, 2, 3, stride=1, output_padding=1)
    with pytest.raises(ValueError, match="groups"):
        nn.ConvTranspose2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="padding_mode"):
        nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    again = nn.config.from_config(nn.config.to_config(layer))
    assert isinstance(again, nn.ConvTranspose2d) and again.get_config() == layer.get_config()
    assert nn.ConvTranspose2d.state_shapes(**layer.get_config()) == {"weight": (4, 3, 3, 2), "bias": (6,)}
    y.sum().backward()
    assert layer.weight.grad is not None and layer.bias.grad is not None
    np.testing.assert_allclose(layer.bias.grad.numpy(), np.full(6, 9 * 9 * 2), rtol=1e-6)


def test_functional_batch_norm_is_torchs():
    """F.batch_norm as torch.nn.functional.batch_norm: channels along dim 1 of any rank, the
    running statistics folded with momentum (unbiased variance, as PyTorch's) when training,
    required when not, and more than one value per channel to train on."""
    x = rng.standard_normal((4, 3, 5)).astype(np.float32)
    mean, var = fg.zeros(3), fg.ones(3)
    y = F.batch_norm(fg.tensor(x), mean, var, training=True, momentum=0.5)
    want = (x - x.mean((0, 2), keepdims=True)) / np.sqrt(x.var((0, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean.numpy(), 0.5 * x.mean((0, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.numpy(), 0.5 + 0.5 * x.var((0, 2), ddof=1), rtol=1e-5)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(fg.tensor(x), None, None)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(fg.ones(1, 3), None, None, training=True)
    with pytest.raises(fg.ShapeError, match=r"expected input \(N, C\)"):
        F.batch_norm(fg.ones(3), None, None, training=True)


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
def test_dropout2d_drops_the_same_channels_on_both_devices():
    """One generator for both devices: the same seed drops the same channels on the GPU as on
    the CPU, and the gradient is the same channel mask times 1 / (1 - p)."""
    x = rng.standard_normal((4, 6, 3, 5)).astype(np.float32)
    out = {}
    for device in ("cpu", "gpu"):
        fg.manual_seed(7)
        t = fg.tensor(x, device=device, requires_grad=True)
        y = F.dropout2d(t, 0.4, training=True)
        y.sum().backward()
        out[device] = (y.numpy(), t.grad.numpy())
    np.testing.assert_allclose(out["gpu"][0], out["cpu"][0], rtol=1e-6)
    np.testing.assert_array_equal(out["gpu"][1], out["cpu"][1])
    kept = out["cpu"][1][:, :, 0, 0] != 0
    assert 0 < kept.sum() < kept.size  # some channels dropped, some kept
    want = np.broadcast_to(np.where(kept[:, :, None, None], 1 / 0.6, 0.0), x.shape)
    np.testing.assert_allclose(out["cpu"][1], want, rtol=1e-6)


def test_one_sample_without_a_batch_dim(device):
    """PyTorch's convolutions and pools take (C, H, W) / (C, L) as one sample: the result
    is the batched one's first entry, without the batch dim."""
    nn, F = fg.nn, fg.nn.functional
    rng = np.random.default_rng(7)
    x2 = fg.tensor(rng.standard_normal((3, 8, 8)).astype(np.float32)).to(device)
    x1 = fg.tensor(rng.standard_normal((3, 9)).astype(np.float32)).to(device)
    layers2 = [
        nn.Conv2d(3, 4, 3, padding=1).to(device),
        nn.Conv2d(3, 3, 3, groups=3, padding="same").to(device),
        nn.ConvTranspose2d(3, 2, 3, stride=2).to(device),
        nn.MaxPool2d(2),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.AdaptiveAvgPool2d((3, 5)),
    ]
    for m in layers2:
        one, batch = m(x2), m(x2.unsqueeze(0))
        assert one.shape == batch.shape[1:], type(m).__name__
        np.testing.assert_allclose(one.cpu().numpy(), batch[0].cpu().numpy(), rtol=1e-6, atol=1e-6)
    layers1 = [nn.Conv1d(3, 2, 3).to(device), nn.MaxPool1d(2), nn.AvgPool1d(3)]
    for m in layers1:
        one, batch = m(x1), m(x1.unsqueeze(0))
        assert one.shape == batch.shape[1:], type(m).__name__
        np.testing.assert_allclose(one.cpu().numpy(), batch[0].cpu().numpy(), rtol=1e-6, atol=1e-6)
    w = fg.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32)).to(device)
    assert F.conv2d(x2, w).shape == (4, 6, 6)
    x = fg.tensor(rng.standard_normal((2, 5, 5)), requires_grad=True)
    assert fg.autograd.gradcheck(
        lambda t: F.max_pool2d(F.conv2d(t, fg.ones(1, 2, 2, 2, dtype=fg.float64)), 2), [x]
    )
    with pytest.raises(fg.ShapeError, match=r"Conv2d: expected input \(N, 3, H, W\) or \(3, H, W\)"):
        nn.Conv2d(3, 4, 3)(fg.randn(2, 8, 8))


def test_interpolate_one_dimensional(device):
    """(N, C, L) input: "nearest" takes floor(i L / out), "linear" interpolates at
    half-pixel centres (i + 0.5) L / out - 0.5 (clamped at 0), or at i (L - 1) / (out - 1)
    with align_corners, as PyTorch documents."""
    F = fg.nn.functional
    x = np.random.default_rng(8).standard_normal((2, 3, 7)).astype(np.float32)
    t = fg.tensor(x).to(device)
    n = F.interpolate(t, size=12).cpu().numpy()
    np.testing.assert_array_equal(n, x[..., (np.arange(12) * 7) // 12])
    for out, corners in ((4, None), (11, None), (11, True)):
        src = (
            np.arange(out) * (6 / (out - 1))
            if corners
            else np.maximum((np.arange(out) + 0.5) * 7 / out - 0.5, 0)
        )
        want = np.apply_along_axis(lambda row, at=src: np.interp(at, np.arange(7), row), -1, x)
        got = F.interpolate(t, size=out, mode="linear", align_corners=corners).cpu().numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert F.interpolate(t, scale_factor=2.5, mode="linear").shape == (2, 3, 17)
    with pytest.raises(fg.ArgumentError, match="3-D input"):
        F.interpolate(t, size=3, mode="bilinear")
    with pytest.raises(fg.ArgumentError, match="needs 3-D input"):
        F.interpolate(t.unsqueeze(2), size=3, mode="linear")
    g = fg.tensor(x.astype(np.float64)[:1, :1], requires_grad=True)
    assert fg.autograd.gradcheck(lambda a: F.interpolate(a, size=5, mode="linear"), [g])


def _keys(d, a=-0.75):
    d = np.abs(d)
    return np.where(
        d <= 1,
        ((a + 2) * d - (a + 3)) * d * d + 1,
        np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0),
    )


def _bicubic_np(x, oh, ow, align_corners=False):
    def resample(a, out, axis):
        n = a.shape[axis]
        if align_corners:
            src = np.arange(out) * ((n - 1) / (out - 1) if out > 1 else 0.0)
        else:
            src = (np.arange(out) + 0.5) * n / out - 0.5
        base = np.floor(src).astype(int)
        acc = 0.0
        for k in (-1, 0, 1, 2):
            j = base + k
            wt = _keys(src - j)
            taken = np.take(a, np.clip(j, 0, n - 1), axis=axis)
            shape = [1] * a.ndim
            shape[axis] = out
            acc = acc + taken * wt.reshape(shape)
        return acc

    return resample(resample(x, oh, 2), ow, 3)


def test_interpolate_bicubic(device):
    """PyTorch's bicubic: cubic convolution (Keys, A = -0.75) at the same source positions
    as bilinear but unclamped, the taps clamped to the edge."""
    F = fg.nn.functional
    x = np.random.default_rng(9).standard_normal((2, 3, 6, 7))
    t = fg.tensor(x.astype(np.float32)).to(device)
    for (oh, ow), corners in (((9, 11), None), ((3, 4), None), ((4, 13), True)):
        got = F.interpolate(t, size=(oh, ow), mode="bicubic", align_corners=corners).cpu().numpy()
        np.testing.assert_allclose(got, _bicubic_np(x, oh, ow, bool(corners)), rtol=1e-4, atol=1e-5)
    g = fg.tensor(x[:1, :1, :4, :4], requires_grad=True)
    assert fg.autograd.gradcheck(lambda a: F.interpolate(a, size=(5, 3), mode="bicubic"), [g])


def test_interpolate_nearest_exact_and_area(device):
    """ "nearest-exact" picks the source pixel whose centre is nearest, floor((i + 0.5) in /
    out); "area" averages the adaptive pooling windows [floor(i in / out), ceil((i + 1) in /
    out)), as PyTorch documents."""
    F = fg.nn.functional
    x = np.random.default_rng(10).standard_normal((1, 2, 6, 7))
    t = fg.tensor(x.astype(np.float32)).to(device)
    iy = np.minimum(np.floor((np.arange(9) + 0.5) * 6 / 9).astype(int), 5)
    ix = np.minimum(np.floor((np.arange(4) + 0.5) * 7 / 4).astype(int), 6)
    got = F.interpolate(t, size=(9, 4), mode="nearest-exact").cpu().numpy()
    np.testing.assert_allclose(got, x[:, :, iy][:, :, :, ix], rtol=1e-6)

    def windows(n_in, n_out):
        return [(i * n_in // n_out, -((-(i + 1) * n_in) // n_out)) for i in range(n_out)]

    want = np.array(
        [[[[x[0, c, a:b, p:q].mean() for p, q in windows(7, 3)] for a, b in windows(6, 4)] for c in range(2)]]
    )
    got = F.interpolate(t, size=(4, 3), mode="area").cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert F.interpolate(t[:, :, 0], size=5, mode="area").shape == (1, 2, 5)
    with pytest.raises(fg.ArgumentError, match="align_corners"):
        F.interpolate(t, size=3, mode="area", align_corners=True)


@pytest.mark.parametrize(
    "stride, padding, output_padding, dilation, groups, shape",
    [
        # output_padding past the last contribution with dilation: fold2d was handed the
        # padded output size and counted windows the input does not have (a ShapeError)
        ((1, 2), (0, 0), (1, 1), (2, 2), 2, (1, 4, 2, 3)),
        ((1, 1), (0, 0), (1, 0), (2, 1), 1, (1, 2, 5, 7)),
        ((1, 2), (1, 1), (1, 1), (2, 1), 1, (1, 2, 4, 3)),
        ((2, 1), (2, 1), (0, 1), (2, 2), 1, (1, 3, 2, 4)),
        ((2, 1), (0, 2), (0, 1), (2, 2), 1, (2, 1, 7, 4)),
    ],
)
def test_conv_transpose2d_output_padding_with_dilation(
    stride, padding, output_padding, dilation, groups, shape, device
):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((shape[1], 2, 3, 2))
    b = rng.standard_normal(2 * groups)
    want = oc.conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups)
    got = fg.nn.functional.conv_transpose2d(
        fg.tensor(x.astype(np.float32)).to(device), fg.tensor(w.astype(np.float32)).to(device),
        fg.tensor(b.astype(np.float32)).to(device), stride, padding, output_padding, groups, dilation,
    )  # fmt: skip
    assert got.shape == want.shape
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-4, atol=1e-4)
    if device == "cpu":
        xt = fg.tensor(x[:1, :, :2, :2], requires_grad=True)
        wt = fg.tensor(w, requires_grad=True)

        def fn(a, c):
            return fg.nn.functional.conv_transpose2d(
                a, c, None, stride, padding, output_padding, groups, dilation
            )

        assert gradcheck(fn, [xt, wt])


def test_max_pool_indices_and_unpool(device):
    """max_pool2d(return_indices=True): each window's first maximum (a NaN wins) as its
    flat position h W + w in the input's plane, as PyTorch documents; max_unpool2d puts
    each value back there in zeros."""
    F = fg.nn.functional
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    x[0, 0, 1, 1] = np.nan
    k, s, p, d = (3, 2), (2, 2), (1, 0), (1, 1)
    vals, idx = F.max_pool2d(fg.tensor(x).to(device), k, s, p, d, return_indices=True)
    assert idx.dtype == fg.int64 and idx.shape == vals.shape
    oh, ow = vals.shape[2:]
    want = np.zeros((2, 3, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            best, where = None, None
            for a in range(k[0]):
                for b in range(k[1]):
                    r, c = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if not (0 <= r < 7 and 0 <= c < 6):
                        continue
                    v = x[:, :, r, c]
                    if best is None:
                        best, where = v.copy(), np.full(v.shape, r * 6 + c)
                        continue
                    take = (v > best) | (np.isnan(v) & ~np.isnan(best))
                    best, where = np.where(take, v, best), np.where(take, r * 6 + c, where)
            want[:, :, i, j] = where
    np.testing.assert_array_equal(idx.cpu().numpy(), want)
    y = F.max_unpool2d(vals, idx, k, s, p, output_size=(7, 6))
    back = np.zeros((2, 3, 42), np.float32)
    np.put_along_axis(back, want.reshape(2, 3, -1), vals.cpu().numpy().reshape(2, 3, -1), 2)
    np.testing.assert_allclose(y.cpu().numpy(), back.reshape(2, 3, 7, 6), equal_nan=True)
    m, u = nn.MaxPool1d(2, return_indices=True), nn.MaxUnpool1d(2)
    x1 = fg.tensor(rng.standard_normal((1, 2, 6)).astype(np.float32))
    v1, i1 = m(x1)
    restored = u(v1, i1).numpy()
    assert ((restored == 0) | (restored == x1.numpy())).all() and (restored != 0).sum() == 6
    g = fg.tensor(rng.standard_normal((1, 1, 4, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.max_unpool2d(*F.max_pool2d(t, 2, return_indices=True), 2), [g])
