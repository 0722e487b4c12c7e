"""Conv3d / F.conv3d, BatchNorm3d and EmbeddingBag / F.embedding_bag, against NumPy
transcriptions of PyTorch's documented definitions (float64), with float64 gradient checks
and CPU = GPU."""

from __future__ import annotations

import numpy as np
import pytest

import ferrograd as fg
from ferrograd.nn import functional as F

RNG = np.random.default_rng(3)


def _f64(a, **kw) -> fg.Tensor:
    return fg.tensor(a, dtype=fg.float64, **kw)


def _conv3d_ref(x, w, b, s, p, d, g):
    """The definition: out[n, o, i, j, k] = b[o] + sum over the group's channels and the
    dilated kernel window at (i s0, j s1, k s2) of the zero-padded input."""
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]), (p[2], p[2])))
    n, _, depth, h, wd = x.shape
    oc, cg, kd, kh, kw = w.shape
    od = (depth - d[0] * (kd - 1) - 1) // s[0] + 1
    oh = (h - d[1] * (kh - 1) - 1) // s[1] + 1
    ow = (wd - d[2] * (kw - 1) - 1) // s[2] + 1
    out = np.zeros((n, oc, od, oh, ow))
    og = oc // g
    for o in range(oc):
        c0 = (o // og) * cg
        for i in range(od):
            for j in range(oh):
                for k in range(ow):
                    patch = x[
                        :,
                        c0 : c0 + cg,
                        i * s[0] : i * s[0] + d[0] * (kd - 1) + 1 : d[0],
                        j * s[1] : j * s[1] + d[1] * (kh - 1) + 1 : d[1],
                        k * s[2] : k * s[2] + d[2] * (kw - 1) + 1 : d[2],
                    ]
                    out[:, o, i, j, k] = (patch * w[o]).sum(axis=(1, 2, 3, 4))
    return out if b is None else out + b.reshape(1, -1, 1, 1, 1)


CONFIGS = [
    ((1, 1, 1), (0, 0, 0), (1, 1, 1), 1),
    ((2, 1, 2), (1, 2, 0), (1, 2, 1), 2),
    ((1, 2, 1), (2, 0, 1), (2, 1, 1), 4),
]


@pytest.mark.parametrize("s,p,d,g", CONFIGS)
def test_conv3d_forward_matches_the_definition(s, p, d, g):
    x = RNG.standard_normal((2, 4, 7, 6, 5))
    w = RNG.standard_normal((4, 4 // g, 3, 2, 3))
    b = RNG.standard_normal(4)
    y = F.conv3d(_f64(x), _f64(w), _f64(b), s, p, d, g)
    np.testing.assert_allclose(y.numpy(), _conv3d_ref(x, w, b, s, p, d, g), atol=1e-12)


def test_conv3d_gradients_match_finite_differences():
    x = _f64(RNG.standard_normal((1, 2, 4, 3, 3)), requires_grad=True)
    w = _f64(RNG.standard_normal((2, 1, 2, 2, 1)), requires_grad=True)
    b = _f64(RNG.standard_normal(2), requires_grad=True)
    assert fg.autograd.gradcheck(
        lambda x, w, b: F.conv3d(x, w, b, stride=(2, 1, 1), padding=(1, 0, 1), dilation=(1, 2, 1), groups=2),
        (x, w, b),
    )


def test_conv3d_layer_same_padding_and_unbatched_input():
    m = fg.nn.Conv3d(3, 4, 3, padding="same", bias=False)
    x = fg.randn(2, 3, 5, 4, 6)
    y = m(x)
    assert y.shape == (2, 4, 5, 4, 6)
    ref = _conv3d_ref(
        x.numpy().astype(np.float64),
        m.weight.detach().numpy().astype(np.float64),
        None,
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 1),
        1,
    )
    np.testing.assert_allclose(y.detach().numpy(), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m(x[0]).detach().numpy(), y[0].detach().numpy(), rtol=1e-6)
    with pytest.raises(fg.ShapeError, match="Conv3d: expected input"):
        m(fg.randn(2, 3, 4, 4))
    with pytest.raises(fg.ShapeError, match="conv3d"):
        F.conv3d(fg.randn(1, 1, 2, 4, 4), fg.randn(1, 1, 3, 1, 1))


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
def test_conv3d_gpu_matches_cpu():
    x = RNG.standard_normal((2, 2, 5, 4, 4)).astype(np.float32)
    w = RNG.standard_normal((4, 1, 3, 2, 2)).astype(np.float32)
    grads = []
    for device in ("cpu", "gpu"):
        xt = fg.tensor(x, device=device, requires_grad=True)
        wt = fg.tensor(w, device=device, requires_grad=True)
        y = F.conv3d(xt, wt, None, (2, 1, 1), (1, 0, 1), 1, 2)
        y.square().sum().backward()
        grads.append((y.cpu().detach().numpy(), xt.grad.cpu().numpy(), wt.grad.cpu().numpy()))
    for a, b in zip(*grads):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4)


def test_batchnorm3d_normalizes_each_channel_and_tracks_statistics():
    x = RNG.standard_normal((3, 2, 4, 3, 5)) * 2 + 1
    bn = fg.nn.BatchNorm3d(2).double()
    y = bn(_f64(x)).detach().numpy()
    mean = x.mean(axis=(0, 2, 3, 4), keepdims=True)
    var = x.var(axis=(0, 2, 3, 4), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), atol=1e-10)
    unbiased = x.var(axis=(0, 2, 3, 4), ddof=1)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * unbiased, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean.reshape(-1), rtol=1e-10)
    with pytest.raises(fg.ShapeError, match=r"\(N, 2, D, H, W\)"):
        bn(fg.randn(3, 2, 4, 4).double())


# ---------------------------------------------------------------------------- EmbeddingBag

W = RNG.standard_normal((10, 3))
IDX = np.array([1, 2, 4, 5, 4, 3, 2, 9])
OFFSETS = np.array([0, 4, 4])  # three bags: [1 2 4 5], [], [4 3 2 9]


def _bags(idx, offsets, n):
    ends = list(offsets[1:]) + [n]
    return [idx[a:b] for a, b in zip(offsets, ends)]


def _bag_ref(mode, weight, bags, psw=None):
    out = []
    for b, ws in zip(bags, psw if psw is not None else [None] * len(bags)):
        rows = weight[b] if ws is None else weight[b] * ws[:, None]
        if len(b) == 0:
            out.append(np.zeros(weight.shape[1]))
        else:
            out.append({"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0)}[mode])
    return np.stack(out)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_modes_match_the_definition(mode):
    out = F.embedding_bag(fg.tensor(IDX), _f64(W), fg.tensor(OFFSETS), mode=mode)
    np.testing.assert_allclose(out.numpy(), _bag_ref(mode, W, _bags(IDX, OFFSETS, 8)), atol=1e-12)
    # the same bags as a (B, L) input
    two = IDX.reshape(2, 4)
    out2 = F.embedding_bag(fg.tensor(two), _f64(W), mode=mode)
    np.testing.assert_allclose(out2.numpy(), _bag_ref(mode, W, list(two)), atol=1e-12)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_gradients_match_finite_differences(mode):
    w = _f64(W, requires_grad=True)
    assert fg.autograd.gradcheck(
        lambda w: F.embedding_bag(fg.tensor(IDX), w, fg.tensor(OFFSETS), mode=mode), (w,)
    )


def test_embedding_bag_per_sample_weights_padding_and_last_offset():
    psw = RNG.standard_normal(8)
    ws = _f64(psw, requires_grad=True)
    out = F.embedding_bag(
        fg.tensor(IDX),
        _f64(W),
        fg.tensor([0, 4, 4, 8]),
        mode="sum",
        per_sample_weights=ws,
        include_last_offset=True,
    )
    bags = _bags(IDX, OFFSETS, 8)
    wbags = _bags(psw, OFFSETS, 8)
    np.testing.assert_allclose(out.detach().numpy(), _bag_ref("sum", W, bags, wbags), atol=1e-12)
    assert fg.autograd.gradcheck(
        lambda ws: F.embedding_bag(
            fg.tensor(IDX), _f64(W), fg.tensor(OFFSETS), mode="sum", per_sample_weights=ws
        ),
        (ws,),
    )
    # padding_idx entries leave their bag (and a mean's count)
    out = F.embedding_bag(fg.tensor(IDX), _f64(W), fg.tensor(OFFSETS), mode="mean", padding_idx=4)
    kept = [b[b != 4] for b in bags]
    np.testing.assert_allclose(out.numpy(), _bag_ref("mean", W, kept), atol=1e-12)
    with pytest.raises(fg.ArgumentError, match="per_sample_weights"):
        F.embedding_bag(fg.tensor(IDX), _f64(W), fg.tensor(OFFSETS), mode="mean", per_sample_weights=ws)
    with pytest.raises(fg.ArgumentError, match="offsets"):
        F.embedding_bag(fg.tensor(IDX), _f64(W))
    with pytest.raises(fg.ArgumentError, match="offsets"):
        F.embedding_bag(fg.tensor(IDX.reshape(2, 4)), _f64(W), fg.tensor([0, 1]))


def test_embedding_bag_layer_trains_and_loads_pretrained():
    m = fg.nn.EmbeddingBag(10, 3, mode="sum", padding_idx=0)
    assert m.weight[0].abs().sum().item() == 0.0
    out = m(fg.tensor([[0, 1], [2, 3]]))
    out.sum().backward()
    assert m.weight.grad[0].abs().sum().item() == 0.0 and m.weight.grad[1].abs().sum().item() > 0
    p = fg.nn.EmbeddingBag.from_pretrained(_f64(W), mode="max")
    assert not p.weight.requires_grad
    np.testing.assert_allclose(p(fg.tensor([[1, 2]])).numpy(), W[[1, 2]].max(0, keepdims=True))


@pytest.mark.skipif(not fg.gpu_available(), reason="no GPU adapter")
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_gpu_matches_cpu(mode):
    res = []
    for device in ("cpu", "gpu"):
        w = fg.tensor(W.astype(np.float32), device=device, requires_grad=True)
        out = F.embedding_bag(fg.tensor(IDX), w, fg.tensor(OFFSETS), mode=mode)
        out.square().sum().backward()
        res.append((out.cpu().detach().numpy(), w.grad.cpu().numpy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
