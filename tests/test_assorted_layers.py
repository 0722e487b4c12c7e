"""The smaller PyTorch layers of ferrograd/nn/assorted.py (shrink and gated activations,
PReLU, distances, padding, resizing, pixel shuffles), the initializers orthogonal_,
trunc_normal_ and eye_, and Embedding.from_pretrained: forward results against NumPy
transcriptions of PyTorch's documented formulas, gradients against finite differences in
float64, the GPU against the CPU, and configs that rebuild each layer."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck

F = nn.functional
RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 4, 3, 6))


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _pad_np(a, pad, mode, value=0.0):
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    kw = {"constant_values": value} if mode == "constant" else {}
    return np.pad(a, widths, mode=np_mode, **kw)


def _shuffle_np(a, r):
    n, c, h, w = a.shape
    return (
        a.reshape(n, c // (r * r), r, r, h, w)
        .transpose(0, 1, 4, 2, 5, 3)
        .reshape(n, c // (r * r), h * r, w * r)
    )


CASES = [
    (nn.Softmin(1), lambda a: np.exp(-a) / np.exp(-a).sum(1, keepdims=True)),
    (nn.GLU(1), lambda a: a[:, :2] * _sig(a[:, 2:])),
    (nn.GLU(), lambda a: a[..., :3] * _sig(a[..., 3:])),
    (nn.Threshold(0.1, 20.0), lambda a: np.where(a > 0.1, a, 20.0)),
    (nn.Hardshrink(0.3), lambda a: np.where(np.abs(a) > 0.3, a, 0.0)),
    (nn.Softshrink(0.3), lambda a: np.where(a > 0.3, a - 0.3, np.where(a < -0.3, a + 0.3, 0.0))),
    (nn.Tanhshrink(), lambda a: a - np.tanh(a)),
    (nn.PReLU(), lambda a: np.where(a >= 0, a, 0.25 * a)),
    (nn.PReLU(4, 0.1), lambda a: np.where(a >= 0, a, 0.1 * a)),
    (nn.ZeroPad2d((1, 2, 0, 3)), lambda a: _pad_np(a, (1, 2, 0, 3), "constant")),
    (nn.ZeroPad1d(2), lambda a: _pad_np(a, (2, 2), "constant")),
    (nn.ConstantPad1d((2, 1), 3.5), lambda a: _pad_np(a, (2, 1), "constant", 3.5)),
    (nn.ConstantPad2d(1, -1.0), lambda a: _pad_np(a, (1, 1, 1, 1), "constant", -1.0)),
    (nn.ReflectionPad1d((2, 1)), lambda a: _pad_np(a, (2, 1), "reflect")),
    (nn.ReflectionPad2d(2), lambda a: _pad_np(a, (2, 2, 2, 2), "reflect")),
    (nn.ReplicationPad1d((1, 3)), lambda a: _pad_np(a, (1, 3), "replicate")),
    (nn.ReplicationPad2d((0, 1, 2, 0)), lambda a: _pad_np(a, (0, 1, 2, 0), "replicate")),
    (nn.CircularPad1d(2), lambda a: _pad_np(a, (2, 2), "circular")),
    (nn.CircularPad2d(1), lambda a: _pad_np(a, (1, 1, 1, 1), "circular")),
    (nn.Upsample(scale_factor=2), lambda a: a.repeat(2, 2).repeat(2, 3)),
    (nn.UpsamplingNearest2d(size=(6, 12)), lambda a: a.repeat(2, 2).repeat(2, 3)),
    (nn.PixelShuffle(2), lambda a: _shuffle_np(a, 2)),
    (nn.PixelUnshuffle(1), lambda a: a),
]


@pytest.mark.parametrize(
    "layer, ref", CASES, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else ""
)
def test_forward_against_numpy_and_config_round_trip(layer, ref):
    got = layer(fg.tensor(X)).numpy()
    np.testing.assert_allclose(got, ref(X), rtol=1e-6, atol=1e-7)
    cfg = json.loads(json.dumps(nn.to_config(layer)))
    again = nn.from_config(cfg)
    assert type(again) is type(layer) and nn.to_config(again) == cfg
    np.testing.assert_array_equal(again(fg.tensor(X)).numpy(), got)


@pytest.mark.parametrize(
    "layer, ref", CASES, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else ""
)
def test_gradients_and_gpu(layer, ref, device):
    fresh = nn.from_config(nn.to_config(layer))  # the cases' layers are shared between tests
    x = RNG.standard_normal((1, 4, 3, 6)) + 0.05  # away from the kinks
    if device == "cpu":
        m = fresh.double()
        if isinstance(m, nn.PReLU):  # the slope as an argument, so finite differences move it
            w = m.weight.detach().clone().requires_grad_()
            assert gradcheck(lambda t, a: F.prelu(t, a), [fg.tensor(x, requires_grad=True), w])
        else:
            assert gradcheck(m, [fg.tensor(x, requires_grad=True)])
        return
    want = fresh(fg.tensor(x.astype(np.float32))).numpy()
    got = fresh.to(device)(fg.tensor(x.astype(np.float32)).to(device))
    assert got.device == device
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-5, atol=1e-6)


def test_pixel_unshuffle_inverts_pixel_shuffle_and_bilinear_matches_interpolate():
    x = fg.tensor(RNG.standard_normal((2, 8, 3, 5)))
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(), x.numpy())
    up = nn.UpsamplingBilinear2d(scale_factor=2)(x)
    want = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    np.testing.assert_array_equal(up.numpy(), want.numpy())
    big = nn.Upsample(size=(7, 9), mode="bilinear")(x)
    np.testing.assert_array_equal(big.numpy(), F.interpolate(x, size=(7, 9), mode="bilinear").numpy())


def test_distances_against_numpy():
    a, b = RNG.standard_normal((3, 5)), RNG.standard_normal((5,))
    cos = nn.CosineSimilarity(1)(fg.tensor(a), fg.tensor(b)[None]).numpy()
    want = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (b / np.linalg.norm(b))
    np.testing.assert_allclose(cos, want, rtol=1e-12)
    # each side normalized by max(its norm, eps), as PyTorch computes it: tiny vectors give 1
    tiny = fg.tensor([[1e-5, 0.0]])
    assert F.cosine_similarity(tiny, tiny).item() == pytest.approx(1.0)
    assert F.cosine_similarity(fg.zeros(1, 2), tiny).item() == 0.0
    d = nn.PairwiseDistance(3, keepdim=True)(fg.tensor(a), fg.tensor(b)).numpy()
    np.testing.assert_allclose(d, (np.abs(a - b + 1e-6) ** 3).sum(1, keepdims=True) ** (1 / 3), rtol=1e-12)
    x1 = fg.tensor(a, requires_grad=True)
    x2 = fg.tensor(RNG.standard_normal((3, 5)), requires_grad=True)
    assert gradcheck(lambda u, v: F.cosine_similarity(u, v), [x1, x2])
    assert gradcheck(lambda u, v: F.pairwise_distance(u, v, 1.5), [x1, x2])


def test_errors_name_the_layer():
    with pytest.raises(fg.ShapeError, match="glu: dim 1 of shape"):
        F.glu(fg.ones(2, 3), 1)
    with pytest.raises(fg.ArgumentError, match="Softshrink: lambd"):
        nn.Softshrink(-1.0)
    with pytest.raises(fg.ShapeError, match="prelu: weight"):
        nn.PReLU(3)(fg.ones(2, 4))
    with pytest.raises(fg.ArgumentError, match="ZeroPad2d: padding must be an int or 4 ints"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(fg.ShapeError, match="pixel_shuffle"):
        nn.PixelShuffle(2)(fg.ones(1, 3, 2, 2))
    with pytest.raises(fg.ArgumentError, match="exactly one of size and scale_factor"):
        nn.Upsample()


def test_prelu_learns_its_slope():
    m = nn.PReLU(2)
    (m(fg.tensor([[-1.0, -2.0], [3.0, -4.0]])).sum()).backward()
    np.testing.assert_array_equal(m.weight.grad.numpy(), [-1.0, -6.0])
    assert [n for n, _ in m.named_parameters()] == ["weight"]


def test_orthogonal_init(device):
    for shape in [(3, 5), (6, 2), (4, 2, 3)]:
        w = fg.zeros(*shape).to(device)
        assert nn.init.orthogonal_(w, gain=2.0) is w
        a = w.cpu().numpy().reshape(shape[0], -1).astype(np.float64)
        gram = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
        np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-5)
    fg.manual_seed(5)
    a = nn.init.orthogonal_(fg.zeros(4, 4)).numpy()
    fg.manual_seed(5)
    np.testing.assert_array_equal(nn.init.orthogonal_(fg.zeros(4, 4)).numpy(), a)  # the generator's draw
    with pytest.raises(ValueError, match="orthogonal_"):
        nn.init.orthogonal_(fg.zeros(3))


def test_trunc_normal_and_eye_init(device):
    t = fg.zeros(20000).to(device)
    nn.init.trunc_normal_(t, mean=1.0, std=0.5, a=0.5, b=2.0)
    v = t.cpu().numpy()
    assert v.min() >= 0.5 and v.max() <= 2.0
    # the truncated normal's mean: mu + sigma (phi(alpha) - phi(beta)) / (Phi(beta) - Phi(alpha))
    from math import erf, exp, pi, sqrt

    alpha, beta = -1.0, 2.0
    phi = lambda z: exp(-z * z / 2) / sqrt(2 * pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + erf(z / sqrt(2)))  # noqa: E731
    want = 1.0 + 0.5 * (phi(alpha) - phi(beta)) / (cdf(beta) - cdf(alpha))
    assert abs(v.mean() - want) < 0.01
    with pytest.raises(ValueError, match="less than 0.1%"):
        nn.init.trunc_normal_(fg.zeros(3), a=10.0, b=11.0)
    e = nn.init.eye_(fg.zeros(2, 3).to(device))
    np.testing.assert_array_equal(e.cpu().numpy(), np.eye(2, 3))


def test_embedding_from_pretrained(device):
    table = fg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]).to(device)
    e = nn.Embedding.from_pretrained(table, padding_idx=1)
    assert not e.weight.requires_grad and e.weight.device == device
    np.testing.assert_array_equal(e(fg.tensor([1, 2])).cpu().numpy(), [[3.0, 4.0], [5.0, 6.0]])
    assert not e.weight.shares_storage(table)  # a copy, as PyTorch's
    t = nn.Embedding.from_pretrained(table, freeze=False)
    t(fg.tensor([0, 0, 2])).sum().backward()
    np.testing.assert_array_equal(t.weight.grad.cpu().numpy(), [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding.from_pretrained(table, max_norm=1.0)
    with pytest.raises(fg.ShapeError, match="2-D"):
        nn.Embedding.from_pretrained(fg.ones(3))


def test_group_and_instance_norm_against_numpy(device):
    x = RNG.standard_normal((3, 6, 4, 5)) * 2 + 1
    g = x.reshape(3, 2, -1)
    want = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    m = nn.GroupNorm(2, 6)
    np.testing.assert_allclose(m.double()(fg.tensor(x)).numpy(), want, rtol=1e-10)
    got = nn.GroupNorm(2, 6).to(device)(fg.tensor(x.astype(np.float32)).to(device)).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    inst = nn.InstanceNorm2d(6, track_running_stats=True).double()
    axes = (2, 3)
    want = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-5)
    np.testing.assert_allclose(inst(fg.tensor(x)).numpy(), want, rtol=1e-10)
    # running statistics: toward the batch's mean of per-instance mean and unbiased variance
    np.testing.assert_allclose(inst.running_mean.numpy(), 0.1 * x.mean(axes).mean(0), rtol=1e-10)
    np.testing.assert_allclose(inst.running_var.numpy(), 0.9 + 0.1 * x.var(axes, ddof=1).mean(0), rtol=1e-10)
    assert inst.num_batches_tracked.item() == 1
    inst.eval()
    rm, rv = inst.running_mean.numpy()[None, :, None, None], inst.running_var.numpy()[None, :, None, None]
    np.testing.assert_allclose(inst(fg.tensor(x)).numpy(), (x - rm) / np.sqrt(rv + 1e-5), rtol=1e-10)
    one = nn.InstanceNorm1d(6)(fg.tensor(x[0, :, :, 0]))  # (C, L): one sample
    xs = x[0, :, :, 0]
    np.testing.assert_allclose(
        one.numpy(), (xs - xs.mean(1, keepdims=True)) / np.sqrt(xs.var(1, keepdims=True) + 1e-5), rtol=1e-6
    )
    xg = fg.tensor(x[:1, :2, :2, :3], requires_grad=True)
    assert gradcheck(lambda t: F.group_norm(t, 1), [xg])
    assert gradcheck(lambda t: F.instance_norm(t), [xg])
    with pytest.raises(fg.ArgumentError, match="divisible"):
        nn.GroupNorm(4, 6)


def test_adaptive_avg_pool1d_and_dropout1d(device):
    x = RNG.standard_normal((2, 3, 7))
    got = nn.AdaptiveAvgPool1d(3)(fg.tensor(x)).numpy()
    bounds = [(0, 3), (2, 5), (4, 7)]  # [floor(i L / n), ceil((i + 1) L / n))
    want = np.stack([x[..., a:b].mean(-1) for a, b in bounds], -1)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert nn.AdaptiveAvgPool1d(2)(fg.tensor(x[0])).shape == (3, 2)
    fg.manual_seed(0)
    d = nn.Dropout1d(0.5).to(device)
    y = d(fg.ones(4, 16, 5).to(device)).cpu().numpy()
    per_channel = y.reshape(4, 16, 5)
    assert set(np.unique(per_channel)) <= {0.0, 2.0}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()  # whole channels
    d.eval()
    np.testing.assert_array_equal(d(fg.ones(2, 3, 4).to(device)).cpu().numpy(), np.ones((2, 3, 4)))


def test_parameter_containers(tmp_path):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.ws = nn.ParameterList([fg.randn(3, 2), fg.randn(2)])
            self.extra = nn.ParameterDict({"a": fg.ones(2)})

        def forward(self, x):
            return x @ self.ws[0] + self.ws[1] + self.extra["a"]

    m = Model()
    assert [n for n, _ in m.named_parameters()] == ["ws.0", "ws.1", "extra.a"]
    assert all(p.requires_grad and p.is_leaf for p in m.parameters())
    m(fg.ones(4, 3)).sum().backward()
    np.testing.assert_array_equal(m.ws[1].grad.numpy(), [4.0, 4.0])
    np.testing.assert_array_equal(m.extra["a"].grad.numpy(), [4.0, 4.0])
    tied = fg.zeros(2, requires_grad=True)
    m.ws.append(tied)
    assert m.ws[2] is tied and len(m.ws) == 3 and "a" in m.extra and list(m.extra.keys()) == ["a"]
    m.ws[0] = fg.ones(3, 2)
    assert m.ws[0].requires_grad and m.ws[0].shape == (3, 2)
    fg.save(m.ws, tmp_path / "ws.safetensors")
    back = fg.load(tmp_path / "ws.safetensors")
    assert type(back) is nn.ParameterList and [tuple(p.shape) for p in back] == [(3, 2), (2,), (2,)]
    np.testing.assert_array_equal(back[0].numpy(), np.ones((3, 2)))
    with pytest.raises(fg.OutOfRangeError):
        m.ws[5] = fg.ones(1)
    with pytest.raises(fg.ArgumentError, match="public identifiers"):
        m.extra["_hidden"] = fg.ones(1)
    with pytest.raises(TypeError, match="expected a Tensor"):
        m.ws.append(3)
