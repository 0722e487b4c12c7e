"""PyTorch's names and idioms in a training script: sorting, repeat, `to` forms, devices,
module containers, init signatures, schedules, loading with map_location. Each result is
checked against NumPy or the formula PyTorch documents; gradients against float64 finite
differences."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck

rng = np.random.default_rng(7)


def f64(*shape, seed=0):
    """Distinct float64 values (no ties, so sorting is differentiable everywhere)."""
    r = np.random.default_rng(seed)
    return fg.tensor(
        r.permutation(np.prod(shape)).reshape(shape) * 0.37 + r.random(shape) * 0.01, requires_grad=True
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape,dim", [((7,), 0), ((4, 6), 1), ((4, 6), 0), ((3, 5, 4), 1), ((3, 5, 4), -1)])
def test_sort_argsort_topk_match_numpy_stably(dtype, shape, dim):
    a = rng.integers(-3, 4, shape).astype(dtype)  # many ties: stability shows
    t = fg.tensor(a)
    values, indices = t.sort(dim)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(a, axis=dim, kind="stable"))
    np.testing.assert_array_equal(values.numpy(), np.sort(a, axis=dim, kind="stable"))
    down = t.sort(dim, descending=True)
    want_down = np.argsort(-a, axis=dim, kind="stable")  # stable descending: ties keep order
    np.testing.assert_array_equal(down.indices.numpy(), want_down)
    np.testing.assert_array_equal(fg.argsort(t, dim, descending=True).numpy(), want_down)
    k = min(3, shape[dim])
    top = fg.topk(t, k, dim)
    np.testing.assert_array_equal(top.indices.numpy(), np.take(want_down, range(k), axis=dim))
    np.testing.assert_array_equal(top.values.numpy(), np.take_along_axis(a, top.indices.numpy(), axis=dim))
    low = t.topk(k, dim, largest=False)
    np.testing.assert_array_equal(
        low.indices.numpy(), np.take(np.argsort(a, axis=dim, kind="stable"), range(k), axis=dim)
    )
    assert values.dtype == t.dtype and indices.dtype == fg.int64


def test_sort_puts_nan_above_every_number_and_checks_its_arguments():
    t = fg.tensor([2.0, float("nan"), -1.0, float("inf")])
    assert t.argsort().tolist() == [2, 0, 3, 1]
    assert t.argsort(descending=True).tolist() == [1, 3, 0, 2]
    assert fg.tensor([2**60 + 1, 2**60, -5]).argsort().tolist() == [2, 1, 0]  # int64 exactly
    with pytest.raises(IndexError, match="topk: k = 5"):
        fg.tensor([1.0, 2.0]).topk(5)
    with pytest.raises(IndexError, match="out of bounds"):
        fg.tensor([[1.0, 2.0]]).take_along_dim(fg.tensor([[0, 2]]), 1)
    with pytest.raises(ValueError, match="do not match"):
        fg.tensor([[1.0, 2.0]]).take_along_dim(fg.tensor([[0], [1]]), 1)
    assert fg.tensor(3.0).sort().values.item() == 3.0


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_sort_topk_and_take_along_dim_gradients(dim):
    x = f64(3, 4, 5, seed=dim + 3)
    assert gradcheck(lambda t: t.sort(dim, descending=True).values * fg.arange(5.0, dtype=fg.float64), (x,))
    assert gradcheck(lambda t: t.topk(2, dim).values, (x,))
    idx = fg.tensor(np.random.default_rng(1).integers(0, x.shape[dim], (3, 4, 5)))
    assert gradcheck(lambda t: t.take_along_dim(idx, dim), (x,))  # repeats sum their gradients


def test_repeat_tiles_as_numpy_and_sums_its_gradient():
    a = rng.standard_normal((2, 3))
    t = fg.tensor(a)
    np.testing.assert_array_equal(t.repeat(2, 3).numpy(), np.tile(a, (2, 3)))
    np.testing.assert_array_equal(t.repeat((3, 1, 2)).numpy(), np.tile(a, (3, 1, 2)))
    np.testing.assert_array_equal(t.T.repeat(1, 2).numpy(), np.tile(a.T, (1, 2)))
    assert t.repeat(0, 1).shape == (0, 3)
    assert gradcheck(lambda x: x.repeat(2, 1, 3), (f64(2, 3),))
    with pytest.raises(ValueError, match="at least one per dim"):
        t.repeat(2)


def test_to_forms_type_and_devices():
    x = fg.tensor([1, 2, 3])
    assert x.to("cpu", fg.float32).dtype == fg.float32
    assert x.to(dtype=fg.float64).dtype == fg.float64
    assert x.to(fg.tensor([1.5])).dtype == fg.float32
    assert x.to(device="cpu") is not None and x.to("cpu", non_blocking=True).dtype == fg.int64
    c = x.to("cpu", copy=True)
    assert c.tolist() == x.tolist()
    with pytest.raises(TypeError, match="at most 2 positional"):
        x.to("cpu", fg.float32, "cpu")
    with pytest.raises(TypeError, match="expected a dtype, a device name or a tensor"):
        x.to(3)
    assert x.type() == "ferrograd.LongTensor" and x.type(fg.float32).dtype == fg.float32
    d = fg.device("cpu")
    assert isinstance(d, str) and d == "cpu" and d.type == "cpu" and d.index is None
    assert repr(d) == "device(type='cpu')" and fg.zeros(2, device=d).device == d
    with pytest.raises((ValueError, fg.DeviceError)):
        fg.device("tpu")


def test_module_level_helpers():
    assert fg.linspace(0, 1, 5).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert fg.linspace(-1, 1, 3, dtype=fg.float64).dtype == fg.float64 and fg.linspace(0, 1, 0).shape == (0,)
    assert fg.empty(2, 3).shape == (2, 3) and fg.empty_like(fg.ones(4)).shape == (4,)
    assert fg.is_tensor(fg.ones(1)) and not fg.is_tensor(np.ones(1))
    assert fg.numel(fg.ones(2, 5)) == 10
    assert fg.allclose(fg.tensor([1.0, 2.0]), fg.tensor([1.0, 2.0 + 1e-7]))
    assert not fg.allclose(fg.tensor([1.0]), fg.tensor([1.1]))
    assert fg.equal(fg.tensor([1, 2]), fg.tensor([1, 2])) and not fg.equal(
        fg.tensor([1, 2]), fg.tensor([1, 3])
    )
    assert not fg.equal(fg.tensor([1, 2]), fg.tensor([[1, 2]]))
    assert fg.clip(fg.tensor([-2.0, 0.5, 3.0]), -1, 1).tolist() == [-1.0, 0.5, 1.0]
    from ferrograd.utils.data import DataLoader, TensorDataset

    assert len(DataLoader(TensorDataset(fg.ones(10, 2), fg.zeros(10)), batch_size=4)) == 3
    fg.cuda.manual_seed(5)
    a = fg.rand(3).tolist()
    fg.manual_seed(5)
    assert fg.rand(3).tolist() == a


def test_parameters_is_an_iterator_and_containers_name_their_modules(tmp_path):
    m = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 3)), ("act", nn.ReLU()), ("out", nn.Linear(3, 2))]))
    assert next(m.parameters()) is m.fc.weight and m[2] is m.out
    assert list(m.state_dict())[:2] == ["fc.weight", "fc.bias"]
    x = fg.randn(5, 4)
    fg.save(m, tmp_path / "m.safetensors")
    back = fg.load(tmp_path / "m.safetensors")
    assert list(back.state_dict()) == list(m.state_dict())
    np.testing.assert_array_equal(back(x).numpy(), m(x).numpy())
    d = nn.ModuleDict({"enc": nn.Linear(4, 3), "dec": nn.Linear(3, 4)})
    d["head"] = nn.Linear(4, 1)
    assert list(d) == ["enc", "dec", "head"] and "dec" in d and len(d) == 3
    assert [n for n, _ in d.named_parameters()][:2] == ["enc.weight", "enc.bias"]
    assert d["dec"](d["enc"](x)).shape == (5, 4)
    del d["head"]
    assert list(d.keys()) == ["enc", "dec"] and len(list(d.parameters())) == 4
    d.update({"extra": nn.Linear(1, 1)})
    assert list(dict(d.items())) == ["enc", "dec", "extra"]
    with pytest.raises(TypeError, match="expected a Module"):
        d["bad"] = 3


def test_load_map_location_and_weights_only(tmp_path):
    m = nn.Linear(3, 2)
    fg.save({"model": m.state_dict(), "epoch": 3}, tmp_path / "c.safetensors")
    ck = fg.load(tmp_path / "c.safetensors", map_location="cpu", weights_only=True)
    assert ck["epoch"] == 3 and ck["model"]["weight"].device == "cpu"
    with pytest.raises(TypeError, match="map_location must be a device name"):
        fg.load(tmp_path / "c.safetensors", map_location={"cuda:0": "cpu"})


def test_init_signatures_and_gains():
    assert nn.init.calculate_gain("relu") == math.sqrt(2.0) and nn.init.calculate_gain("tanh") == 5.0 / 3.0
    assert nn.init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2.0 / 1.04)
    assert nn.init.calculate_gain("selu") == 0.75 and nn.init.calculate_gain("sigmoid") == 1.0
    w = fg.empty(400, 500)
    fg.manual_seed(0)
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2.0 / 400)) < 0.02 * math.sqrt(2.0 / 400)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # PyTorch's Linear default
    b = math.sqrt(6.0 / ((1 + 5) * 500))
    assert w.numpy().max() <= b and w.numpy().min() >= -b and w.numpy().max() > 0.99 * b
    nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"))
    b = 5.0 / 3.0 * math.sqrt(6.0 / 900)
    assert w.numpy().max() <= b and w.numpy().max() > 0.99 * b
    nn.init.constant_(w, 0.5)
    assert set(w.numpy().ravel().tolist()) == {0.5}
    with pytest.raises(ValueError, match="mode"):
        nn.init.kaiming_normal_(w, mode="fan_avg")


def test_one_cycle_lr_follows_the_documented_schedule():
    p = fg.zeros(2, requires_grad=True)
    opt = fg.optim.SGD([p], lr=0.1, momentum=0.9)
    s = fg.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    lrs, moms = [opt.param_groups[0]["lr"]], [opt.param_groups[0]["momentum"]]
    for _ in range(9):
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
    # warm-up over steps 0..2 (pct_start 0.3 of 10), cosine from 1/25 to 1
    assert lrs[0] == pytest.approx(0.04) and lrs[1] == pytest.approx(0.52) and lrs[2] == pytest.approx(1.0)
    # then cosine down to 0.04 / 1e4 at the last step (9)
    assert lrs[9] == pytest.approx(4e-6) and all(a > b for a, b in zip(lrs[2:], lrs[3:]))
    assert (
        moms[0] == pytest.approx(0.95) and moms[2] == pytest.approx(0.85) and moms[9] == pytest.approx(0.95)
    )
    assert s.get_last_lr() == [lrs[9]]
    s.step()
    with pytest.raises(ValueError, match="total_steps"):
        s.step()
    adam = fg.optim.Adam([p], lr=0.1)
    fg.optim.lr_scheduler.OneCycleLR(adam, max_lr=0.01, epochs=2, steps_per_epoch=5, three_phase=True)
    assert adam.param_groups[0]["betas"][0] == pytest.approx(0.95) and adam.param_groups[0][
        "lr"
    ] == pytest.approx(0.0004)
    with pytest.raises(ValueError, match="cycle_momentum"):
        fg.optim.lr_scheduler.OneCycleLR(fg.optim.SGD([p], lr=0.1), max_lr=1.0, total_steps=5)


def test_gather_as_pytorch_and_its_gradient():
    """`log_probs.gather(1, y.unsqueeze(1))`: index sizes may be smaller than the input's
    outside `dim`; negative-free indices; the gradient scatters back (repeats add up)."""
    a = rng.standard_normal((4, 5))
    idx = rng.integers(0, 5, (3, 2))
    got = fg.tensor(a).gather(1, fg.tensor(idx)).numpy()
    np.testing.assert_array_equal(got, np.take_along_axis(a[:3], idx, axis=1))
    y = np.array([2, 0, 4, 1])
    np.testing.assert_array_equal(
        fg.gather(fg.tensor(a), 1, fg.tensor(y).unsqueeze(1)).numpy()[:, 0], a[range(4), y]
    )
    idx0 = rng.integers(0, 4, (6, 5))
    np.testing.assert_array_equal(
        fg.tensor(a).gather(0, fg.tensor(idx0)).numpy(), np.take_along_axis(a, idx0, 0)
    )
    assert gradcheck(lambda t: t.gather(1, fg.tensor(idx)), (f64(4, 5, seed=2),))
    assert gradcheck(lambda t: t.gather(0, fg.tensor(idx0)), (f64(4, 5, seed=4),))
    with pytest.raises(ValueError, match="larger than the input"):
        fg.tensor(a).gather(1, fg.tensor(rng.integers(0, 5, (5, 2))))
    with pytest.raises(ValueError, match="as many dims"):
        fg.tensor(a).gather(1, fg.tensor([0, 1]))


def test_masked_fill_in_place():
    x = fg.tensor([1.0, -2.0, 3.0, -0.5])
    assert x.masked_fill_(x < 0, 0.0) is x and x.tolist() == [1.0, 0.0, 3.0, 0.0]


def test_index_assignment_format_and_small_names():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    t = fg.tensor(a)
    t[0] = 1.0
    t[:, 1] = fg.tensor([7.0, 8.0, 9.0])
    t[t > 10] = -1.0
    t[[2, 0]] = fg.tensor([[5.0, 5.0, 5.0, 5.0], [6.0, 6.0, 6.0, 6.0]])
    t[1, ::2] = 0.0
    want = a.copy()
    want[0] = 1.0
    want[:, 1] = [7.0, 8.0, 9.0]
    want[want > 10] = -1.0
    want[[2, 0]] = [[5.0] * 4, [6.0] * 4]
    want[1, ::2] = 0.0
    np.testing.assert_array_equal(t.numpy(), want)
    w = fg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in place"):
        w[0] = 1.0
    with fg.no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0, 0.0]
    assert f"{fg.tensor(1.23456):.2f}" == "1.23" and f"{fg.tensor([2.5]):>6.1f}" == "   2.5"
    assert format(fg.tensor([1.0, 2.0])) == repr(fg.tensor([1.0, 2.0]))
    assert t.ndimension() == 2 and t.is_cuda is False
    with fg.inference_mode():
        assert not (fg.ones(2, requires_grad=True) * 2).requires_grad
    assert nn.ReLU(inplace=True)(fg.tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    from ferrograd.nn import functional as F

    x = fg.tensor([-1.0, 2.0])
    assert F.relu(x, inplace=True).tolist() == [0.0, 2.0] and x.tolist() == [-1.0, 2.0]
    assert nn.Dropout(0.5, inplace=True).eval()(x).tolist() == [-1.0, 2.0]


def test_weighted_and_ignoring_cross_entropy_as_pytorch_documents():
    from ferrograd.nn import functional as F

    z = rng.standard_normal((6, 4))
    y = np.array([0, 3, -100, 1, 3, 2])
    w = np.array([0.5, 2.0, 1.0, 3.0])
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    keep = y != -100
    ys = np.where(keep, y, 0)
    terms = -logp[range(6), ys] * w[ys] * keep
    want_mean = terms.sum() / (w[ys] * keep).sum()
    zt, yt, wt = fg.tensor(z), fg.tensor(y), fg.tensor(w)
    np.testing.assert_allclose(F.cross_entropy(zt, yt, wt).item(), want_mean, rtol=1e-12)
    np.testing.assert_allclose(nn.CrossEntropyLoss(weight=wt, reduction="sum")(zt, yt).item(), terms.sum())
    np.testing.assert_allclose(F.cross_entropy(zt, yt, reduction="none").numpy(), -logp[range(6), ys] * keep)
    np.testing.assert_allclose(nn.NLLLoss(wt)(fg.tensor(logp), yt).item(), want_mean, rtol=1e-12)
    # without ignored labels or weights it is the fused loss
    y2 = fg.tensor(np.array([0, 3, 2, 1, 3, 2]))
    np.testing.assert_allclose(F.cross_entropy(zt, y2).item(), -logp[range(6), y2.numpy()].mean(), rtol=1e-12)
    assert gradcheck(lambda v: F.cross_entropy(v, yt, wt), (f64(6, 4, seed=9),))
    assert nn.CrossEntropyLoss("sum").reduction == "sum"  # the earlier positional order still works


def test_huber_smooth_l1_and_bce_losses():
    from ferrograd.nn import functional as F

    p, t = rng.standard_normal(20) * 2, rng.standard_normal(20)
    d = np.abs(p - t)
    huber = np.where(d < 1.5, 0.5 * d**2, 1.5 * (d - 0.75))
    np.testing.assert_allclose(
        nn.HuberLoss(delta=1.5)(fg.tensor(p), fg.tensor(t)).item(), huber.mean(), rtol=1e-12
    )
    smooth = np.where(d < 0.5, 0.5 * d**2 / 0.5, d - 0.25)
    np.testing.assert_allclose(
        nn.SmoothL1Loss(reduction="sum", beta=0.5)(fg.tensor(p), fg.tensor(t)).item(),
        smooth.sum(),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        F.smooth_l1_loss(fg.tensor(p), fg.tensor(t), beta=0.0).item(), d.mean(), rtol=1e-12
    )
    assert gradcheck(lambda v: F.huber_loss(v, fg.tensor(t), delta=1.5), (f64(20, seed=5),))
    q, y = rng.random(8) * 0.9 + 0.05, (rng.random(8) > 0.5).astype(np.float64)
    bce = -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean()
    np.testing.assert_allclose(nn.BCELoss()(fg.tensor(q), fg.tensor(y)).item(), bce, rtol=1e-12)


def test_more_schedules_and_param_groups():
    p, q = fg.zeros(2, requires_grad=True), fg.zeros(2, requires_grad=True)
    opt = fg.optim.SGD([p], lr=1.0)
    s = fg.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    seen = []
    for _ in range(5):
        s.step()
        seen.append(opt.param_groups[0]["lr"])
    assert seen == [1.0, 0.5, 0.5, 0.25, 0.25]
    opt = fg.optim.SGD([p], lr=1.0)
    s = fg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    s.step()
    s.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.81)
    opt = fg.optim.SGD([p], lr=2.0)
    s = fg.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 / (e + 1))
    assert opt.param_groups[0]["lr"] == 2.0
    s.step()
    assert opt.param_groups[0]["lr"] == 1.0 and "lr_lambdas" not in s.state_dict()
    opt.add_param_group({"params": [q], "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["momentum"] == 0.0
    (p.sum() + q.sum()).backward()
    opt.step()
    assert q.tolist() == [-0.5, -0.5] and p.tolist() == [-1.0, -1.0]
    with pytest.raises(ValueError, match="more than one group"):
        opt.add_param_group({"params": [p]})
