"""`ferrograd.nn`: Module semantics, layers (against NumPy / PyTorch semantics), initializers
and the three model builders."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def t32(a) -> fg.Tensor:
    return fg.tensor(np.asarray(a, dtype=np.float32))


def t64(a, requires_grad: bool = False) -> fg.Tensor:
    return fg.tensor(np.asarray(a, dtype=np.float64), dtype=fg.float64, requires_grad=requires_grad)


def small_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4, 2))


# =============================================================================== Module


class TestModule:
    def test_named_parameters_names_and_order(self):
        m = small_net()
        names = [n for n, _ in m.named_parameters()]
        assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
        params = list(m.parameters())
        assert len(params) == 6
        assert all(p is q for p, (_, q) in zip(params, m.named_parameters()))
        assert all(p.requires_grad and p.is_leaf for p in params)

    def test_nested_names(self):
        m = nn.Sequential(nn.Residual(nn.Sequential(nn.Linear(2, 2), nn.ReLU())), nn.Linear(2, 1, bias=False))
        names = [n for n, _ in m.named_parameters()]
        assert names == ["0.body.0.weight", "0.body.0.bias", "1.weight"]

    def test_buffers_are_not_parameters(self):
        bn = nn.BatchNorm1d(5)
        assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
        assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
        assert bn.num_parameters() == 10

    def test_children(self):
        m = small_net()
        kids = list(m.children())
        assert [type(k).__name__ for k in kids] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
        assert [n for n, _ in m.named_children()] == ["0", "1", "2", "3", "4"]
        assert len(list(m.modules())) == 6
        assert kids[0] is m[0]
        assert len(m) == 5

    def test_custom_module_registration(self):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 3)
                self.scale = nn.Parameter(fg.ones(3))
                self.not_a_param = fg.ones(3)  # requires_grad False: plain attribute

            def forward(self, x):
                return self.fc(x) * self.scale

        net = Net()
        assert [n for n, _ in net.named_parameters()] == ["scale", "fc.weight", "fc.bias"]
        assert list(net.children()) == [net.fc]
        assert net(fg.randn(2, 4)).shape == (2, 3)

    def test_train_eval_propagate(self):
        m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.1), nn.BatchNorm1d(2)))
        assert all(x.training for x in m.modules())
        assert m.eval() is m
        assert not any(x.training for x in m.modules())
        assert m.train() is m
        assert all(x.training for x in m.modules())
        m.train(False)
        assert not any(x.training for x in m.modules())

    def test_zero_grad(self):
        m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
        m(fg.randn(5, 3)).sum().backward()
        assert all(p.grad is not None for p in m.parameters())
        m.zero_grad()
        assert all(p.grad is None for p in m.parameters())

    def test_deepcopy_and_pickle_of_models(self):
        """PyTorch's idioms: `best = copy.deepcopy(model.state_dict())` kept across training
        and loaded back; `copy.deepcopy(model)` (an EMA or frozen copy) with its own
        parameters, tied weights staying tied; a model pickles whole."""
        import copy
        import pickle

        fg.manual_seed(3)
        m = small_net()
        x = fg.randn(8, 3)
        m.eval()
        before = m(x).numpy()
        best = copy.deepcopy(m.state_dict())
        twin = copy.deepcopy(m)
        opt = fg.optim.SGD(m.parameters(), lr=0.5)
        m.train()
        for _ in range(3):
            opt.zero_grad()
            (m(x) ** 2).mean().backward()
            opt.step()
        m.eval()
        assert not np.allclose(m(x).numpy(), before)
        twin.eval()
        np.testing.assert_array_equal(twin(x).numpy(), before)  # untouched by m's training
        assert all(p.requires_grad and p.is_leaf for p in twin.parameters())
        assert not any(p is q for p, q in zip(m.parameters(), twin.parameters()))
        m.load_state_dict(best)
        np.testing.assert_array_equal(m(x).numpy(), before)
        back = pickle.loads(pickle.dumps(m))
        back.eval()
        np.testing.assert_array_equal(back(x).numpy(), before)

        class Tied(nn.Module):
            def __init__(self):
                super().__init__()
                self.enc = nn.Linear(4, 4)
                self.dec = nn.Linear(4, 4)
                self.dec.weight = self.enc.weight

        t2 = copy.deepcopy(Tied())
        assert t2.dec.weight is t2.enc.weight

    def test_state_dict_round_trip(self):
        fg.manual_seed(1)
        a = small_net()
        a.train()
        a(fg.randn(8, 3))  # moves the running stats away from their init
        fg.manual_seed(2)
        b = small_net()
        sd = a.state_dict()
        assert list(sd) == [  # PyTorch's order: each module's parameters, then its buffers
            "0.weight",
            "0.bias",
            "1.weight",
            "1.bias",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked",
            "4.weight",
            "4.bias",
        ]
        assert all(not v.requires_grad for v in sd.values())
        out = b.load_state_dict(sd)
        assert out == ([], [])
        for (k, v), (k2, v2) in zip(a.state_dict().items(), b.state_dict().items()):
            assert k == k2
            np.testing.assert_array_equal(v.numpy(), v2.numpy())
        x = fg.randn(6, 3)
        a.eval()
        b.eval()
        np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
        # loading copies: the parameters of b stay distinct objects that still train
        assert all(p.requires_grad and p.is_leaf for p in b.parameters())
        assert all(p is not q for p, q in zip(a.parameters(), b.parameters()))

    def test_load_state_dict_missing_key(self):
        m = small_net()
        sd = m.state_dict()
        del sd["4.bias"]
        with pytest.raises(KeyError, match=r"missing keys: 4\.bias"):
            small_net().load_state_dict(sd)

    def test_load_state_dict_unexpected_key(self):
        m = small_net()
        sd = m.state_dict()
        sd["9.weight"] = fg.zeros(2)
        with pytest.raises(KeyError, match=r"unexpected keys: 9\.weight"):
            small_net().load_state_dict(sd)

    def test_load_state_dict_shape_mismatch(self):
        sd = small_net().state_dict()
        sd["0.weight"] = fg.zeros(4, 5)
        with pytest.raises(
            fg.ShapeError, match=r"size mismatch for 0\.weight: expected \(4, 3\), got \(4, 5\)"
        ):
            small_net().load_state_dict(sd)
        with pytest.raises(fg.ShapeError, match="0.weight"):
            small_net().load_state_dict(sd, strict=False)

    def test_load_state_dict_non_strict(self):
        src = small_net()
        sd = src.state_dict()
        del sd["4.bias"]
        sd["extra"] = fg.zeros(1)
        dst = small_net()
        old_bias = dst[4].bias.numpy().copy()
        missing, unexpected = dst.load_state_dict(sd, strict=False)
        assert missing == ["4.bias"]
        assert unexpected == ["extra"]
        np.testing.assert_array_equal(dst[0].weight.numpy(), src[0].weight.numpy())
        np.testing.assert_array_equal(dst[4].bias.numpy(), old_bias)

    def test_repr(self):
        r = repr(small_net())
        assert r.startswith("Sequential(\n")
        assert "(0): Linear(in_features=3, out_features=4, bias=True)" in r
        assert "(1): BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" in r
        assert "(2): ReLU()" in r
        assert "(3): Dropout(p=0.5)" in r
        assert r.endswith("\n)")
        assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"

    def test_summary(self):
        m = small_net()
        printed = []
        text = m.summary(print_fn=printed.append)
        assert printed == [text]
        for needle in ("0 (Linear)", "1 (BatchNorm1d)", "2 (ReLU)", "3 (Dropout)", "4 (Linear)"):
            assert needle in text
        assert "(None, 4)" in text and "(None, 2)" in text
        assert f"Total params: {m.num_parameters():,}" in text
        assert m.num_parameters() == 16 + 8 + 10
        assert all(x.training for x in m.modules())  # mode restored
        big = fg.models.standard(784, 10)
        assert "Total params: 671,754" in big.summary(print_fn=None)

    def test_to_cpu(self):
        m = small_net()
        before = [p.numpy().copy() for p in m.parameters()]
        assert m.to("cpu") is m
        after = list(m.parameters())
        assert len(after) == len(before)
        for a, b in zip(before, after):
            np.testing.assert_array_equal(a, b.numpy())
            assert b.requires_grad and b.is_leaf
        m.eval()
        assert m(fg.randn(2, 3)).shape == (2, 2)

    def test_to_config_from_config(self):
        fg.manual_seed(3)
        m = nn.Sequential(
            nn.Linear(5, 8, init="he_normal"),
            nn.BatchNorm1d(8),
            nn.ELU(alpha=0.5),
            nn.Residual(nn.Sequential(nn.Linear(8, 4), nn.Tanh()), in_features=8, out_features=4),
            nn.AlphaDropout(0.1),
            nn.Linear(4, 3),
            nn.Softmax(dim=-1),
        )
        cfg = nn.to_config(m)
        cfg = json.loads(json.dumps(cfg))  # JSON-able
        assert cfg["class"] == "Sequential"
        r = nn.from_config(cfg)
        assert repr(r) == repr(m)
        assert [n for n, _ in r.named_parameters()] == [n for n, _ in m.named_parameters()]
        assert r.num_parameters() == m.num_parameters()
        assert r[2].alpha == 0.5 and r[4].p == 0.1 and r[6].dim == -1 and r[0].init == "he_normal"
        r.load_state_dict(m.state_dict())
        m.eval()
        r.eval()
        x = fg.randn(4, 5)
        np.testing.assert_array_equal(m(x).numpy(), r(x).numpy())

    def test_from_config_errors(self):
        with pytest.raises(ValueError, match="unknown layer class 'Nope'"):
            nn.from_config({"class": "Nope", "config": {}})
        with pytest.raises(ValueError, match="not a module config"):
            nn.from_config([1, 2])


# =============================================================================== Linear


class TestLinear:
    def test_forward_matches_numpy(self):
        lin = nn.Linear(5, 3)
        x = rng(1).standard_normal((4, 5)).astype(np.float32)
        w, b = lin.weight.numpy(), lin.bias.numpy()
        assert w.shape == (3, 5) and b.shape == (3,)
        np.testing.assert_allclose(lin(t32(x)).numpy(), x @ w.T + b, rtol=1e-5, atol=1e-6)

    def test_forward_batched_and_no_bias(self):
        lin = nn.Linear(5, 3, bias=False)
        assert lin.bias is None and len(list(lin.parameters())) == 1
        x = rng(2).standard_normal((2, 4, 5)).astype(np.float32)
        np.testing.assert_allclose(lin(t32(x)).numpy(), x @ lin.weight.numpy().T, rtol=1e-5, atol=1e-6)

    def test_gradients(self):
        lin = nn.Linear(4, 3)
        x = rng(3).standard_normal((6, 4)).astype(np.float32)
        g = rng(4).standard_normal((6, 3)).astype(np.float32)
        lin(t32(x)).backward(t32(g))
        np.testing.assert_allclose(lin.weight.grad.numpy(), g.T @ x, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(lin.bias.grad.numpy(), g.sum(0), rtol=1e-5, atol=1e-5)

    def test_default_init_range(self):
        fan_in = 400
        lin = nn.Linear(fan_in, 300)
        bound = 1 / math.sqrt(fan_in)
        w, b = lin.weight.numpy(), lin.bias.numpy()
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(w).max() > 0.99 * bound  # fills the whole range
        assert w.min() < -0.99 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)
        assert abs(w.mean()) < 0.01 * bound
        assert len(np.unique(b)) == 300

    def test_named_init(self):
        lin = nn.Linear(500, 400, init="he_normal")
        assert abs(lin.weight.numpy().std() - math.sqrt(2 / 500)) < 0.02 * math.sqrt(2 / 500)
        np.testing.assert_array_equal(lin.bias.numpy(), np.zeros(400, np.float32))
        with pytest.raises(ValueError, match="unknown init"):
            nn.Linear(2, 2, init="bogus")

    def test_errors(self):
        with pytest.raises(fg.ShapeError, match=r"Linear: expected input \(\.\.\., 3\)"):
            nn.Linear(3, 2)(fg.randn(4, 5))
        with pytest.raises(ValueError, match="positive"):
            nn.Linear(0, 2)


# =============================================================================== BatchNorm


def np_bn_train(x, w, b, eps=1e-5):
    mean = x.mean(0)
    var = x.var(0)  # biased
    return (x - mean) / np.sqrt(var + eps) * w + b


class TestBatchNorm:
    def test_training_forward_matches_numpy(self):
        bn = nn.BatchNorm1d(4)
        r = rng(5)
        w = r.uniform(0.5, 1.5, 4).astype(np.float32)
        b = r.standard_normal(4).astype(np.float32)
        with fg.no_grad():
            bn.weight.copy_(t32(w))
            bn.bias.copy_(t32(b))
        x = (r.standard_normal((16, 4)) * 3 + 2).astype(np.float32)
        y = bn(t32(x)).numpy()
        np.testing.assert_allclose(y, np_bn_train(x.astype(np.float64), w, b), rtol=1e-4, atol=1e-4)

    def test_eps_is_used(self):
        bn = nn.BatchNorm1d(2, eps=0.5)
        x = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]], np.float32)
        np.testing.assert_allclose(
            bn(t32(x)).numpy(), np_bn_train(x, 1.0, 0.0, eps=0.5), rtol=1e-5, atol=1e-6
        )

    def test_running_stats_update(self):
        bn = nn.BatchNorm1d(3, momentum=0.2)
        r = rng(6)
        rm, rv = np.zeros(3), np.ones(3)
        for i in range(3):
            x = (r.standard_normal((10, 3)) * (i + 1) + i).astype(np.float32)
            bn(t32(x))
            xd = x.astype(np.float64)
            rm = 0.8 * rm + 0.2 * xd.mean(0)
            rv = 0.8 * rv + 0.2 * xd.var(0, ddof=1)  # unbiased, as PyTorch
            np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-5, atol=1e-6)

    def test_eval_uses_running_stats(self):
        bn = nn.BatchNorm1d(3)
        r = rng(7)
        bn(t32(r.standard_normal((8, 3)) * 2 + 1))
        bn.eval()
        rm, rv = bn.running_mean.numpy().copy(), bn.running_var.numpy().copy()
        w = r.uniform(0.5, 1.5, 3).astype(np.float32)
        with fg.no_grad():
            bn.weight.copy_(t32(w))
        x = r.standard_normal((5, 3)).astype(np.float32)
        y = bn(t32(x)).numpy()
        np.testing.assert_allclose(y, (x - rm) / np.sqrt(rv + 1e-5) * w, rtol=1e-5, atol=1e-5)
        # eval does not update the running statistics
        np.testing.assert_array_equal(bn.running_mean.numpy(), rm)
        np.testing.assert_array_equal(bn.running_var.numpy(), rv)
        # and a single sample works in eval mode
        assert bn(t32(x[:1])).shape == (1, 3)

    def test_no_affine(self):
        bn = nn.BatchNorm1d(3, affine=False)
        assert list(bn.parameters()) == []
        x = rng(8).standard_normal((6, 3)).astype(np.float32)
        np.testing.assert_allclose(bn(t32(x)).numpy(), np_bn_train(x, 1.0, 0.0), rtol=1e-4, atol=1e-5)

    def test_shape_errors(self):
        with pytest.raises(fg.ShapeError, match=r"BatchNorm1d: expected input \(N, 3\)"):
            nn.BatchNorm1d(3)(fg.randn(4, 5))
        with pytest.raises(ValueError, match="more than 1 value"):
            nn.BatchNorm1d(3)(fg.randn(1, 3))

    def test_gradcheck(self):
        r = rng(9)
        x = t64(r.standard_normal((5, 3)) * 2, requires_grad=True)
        w = t64(r.uniform(0.5, 1.5, 3), requires_grad=True)
        b = t64(r.standard_normal(3), requires_grad=True)

        def fn(x, w, b):
            return fg._core.batch_norm(x, w, b, None, None, True, 0.1, 1e-5)

        assert gradcheck(fn, (x, w, b))

    def test_gradcheck_weighted_sum(self):
        r = rng(10)
        x = t64(r.standard_normal((4, 2)), requires_grad=True)
        w = t64(r.uniform(0.5, 1.5, 2), requires_grad=True)
        b = t64(r.standard_normal(2), requires_grad=True)
        c = t64(r.standard_normal((4, 2)))

        def fn(x, w, b):
            return (fg._core.batch_norm(x, w, b, None, None, True, 0.1, 1e-5) * c).sum()

        assert gradcheck(fn, (x, w, b))

    def test_fused_matches_composed(self):
        r = rng(11)
        xn = r.standard_normal((7, 4)) * 3 + 1
        wn, bn_ = r.uniform(0.5, 1.5, 4), r.standard_normal(4)
        gn = r.standard_normal((7, 4))
        eps = 1e-5

        xa, wa, ba = t64(xn, True), t64(wn, True), t64(bn_, True)
        fused = fg._core.batch_norm(xa, wa, ba, None, None, True, 0.1, eps)
        fused.backward(t64(gn))

        xb, wb, bb = t64(xn, True), t64(wn, True), t64(bn_, True)
        mean = xb.mean(0, keepdim=True)
        var = ((xb - mean) * (xb - mean)).mean(0, keepdim=True)
        composed = (xb - mean) / (var + eps).sqrt() * wb + bb
        composed.backward(t64(gn))

        np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(wa.grad.numpy(), wb.grad.numpy(), rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(ba.grad.numpy(), bb.grad.numpy(), rtol=1e-9, atol=1e-10)

    def test_module_backward_float32(self):
        bn = nn.BatchNorm1d(3)
        x = fg.tensor(rng(12).standard_normal((6, 3)).astype(np.float32), requires_grad=True)
        bn(x).sum().backward()
        # sum of a normalized output does not depend on x; d/dbias = N, d/dweight = sum(xhat) = 0
        np.testing.assert_allclose(x.grad.numpy(), np.zeros((6, 3)), atol=1e-5)
        np.testing.assert_allclose(bn.bias.grad.numpy(), np.full(3, 6.0), rtol=1e-6)
        np.testing.assert_allclose(bn.weight.grad.numpy(), np.zeros(3), atol=1e-5)


# =============================================================================== Dropout


class TestDropout:
    def test_eval_is_identity(self):
        d = nn.Dropout(0.5).eval()
        x = fg.randn(10, 10)
        np.testing.assert_array_equal(d(x).numpy(), x.numpy())

    @pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
    def test_train_fraction_and_scale(self, p):
        n = 100_000
        x = fg.ones(n)
        y = nn.Dropout(p)(x).numpy()
        dropped = (y == 0).mean()
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(dropped - p) < 5 * sigma
        kept = y[y != 0]
        np.testing.assert_allclose(kept, np.full(kept.shape, 1 / (1 - p), np.float32), rtol=1e-6)

    def test_kept_values_scaled(self):
        x = rng(13).standard_normal(1000).astype(np.float32) + 5.0  # no zeros in the input
        y = nn.Dropout(0.3)(t32(x)).numpy()
        keep = y != 0
        np.testing.assert_allclose(y[keep], x[keep] / 0.7, rtol=1e-6)

    def test_same_seed_same_mask(self):
        x = fg.ones(1000)
        d = nn.Dropout(0.5)
        fg.manual_seed(123)
        a = d(x).numpy()
        b = d(x).numpy()
        fg.manual_seed(123)
        c = d(x).numpy()
        np.testing.assert_array_equal(a, c)
        assert not np.array_equal(a, b)  # the generator advances

    def test_p0_and_p1(self):
        x = fg.randn(50)
        np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
        np.testing.assert_array_equal(nn.Dropout(1.0)(x).numpy(), np.zeros(50, np.float32))
        with pytest.raises(ValueError):
            nn.Dropout(1.5)

    def test_gradient_is_mask_times_scale(self):
        x = fg.tensor(rng(14).standard_normal((20, 30)).astype(np.float32) + 10.0, requires_grad=True)
        y = nn.Dropout(0.4)(x)
        g = rng(15).standard_normal((20, 30)).astype(np.float32)
        y.backward(t32(g))
        mask = (y.numpy() != 0).astype(np.float32)
        assert 0 < mask.mean() < 1
        np.testing.assert_allclose(x.grad.numpy(), g * mask / 0.6, rtol=1e-6, atol=1e-7)

    def test_functional(self):
        x = fg.randn(10)
        np.testing.assert_array_equal(fg._core.dropout(x, 0.5, False).numpy(), x.numpy())


class TestAlphaDropout:
    def test_eval_is_identity(self):
        d = nn.AlphaDropout(0.1).eval()
        x = fg.randn(100)
        np.testing.assert_array_equal(d(x).numpy(), x.numpy())

    @pytest.mark.parametrize("p", [0.05, 0.1, 0.2])
    def test_keeps_mean_and_variance(self, p):
        x = fg.randn(200_000)
        y = nn.AlphaDropout(p)(x).numpy().astype(np.float64)
        assert abs(y.mean()) < 0.02
        assert abs(y.var() - 1.0) < 0.03
        # a fraction p of the values sits at the common "dropped" value
        vals, counts = np.unique(y, return_counts=True)
        assert abs(counts.max() / y.size - p) < 0.01

    def test_dropped_value(self):
        p = 0.1
        alpha_p = -SELU_SCALE * SELU_ALPHA
        a = 1 / math.sqrt((1 - p) * (1 + p * alpha_p**2))
        b = -a * alpha_p * p
        x = rng(16).standard_normal(5000).astype(np.float32)
        y = nn.AlphaDropout(p)(t32(x)).numpy()
        dropped = np.isclose(y, a * alpha_p + b, atol=1e-6)
        assert 0.05 < dropped.mean() < 0.15
        np.testing.assert_allclose(y[~dropped], a * x[~dropped] + b, rtol=1e-5, atol=1e-6)

    def test_same_seed_same_output(self):
        x = fg.randn(1000)
        d = nn.AlphaDropout(0.1)
        fg.manual_seed(7)
        a = d(x).numpy()
        fg.manual_seed(7)
        b = d(x).numpy()
        np.testing.assert_array_equal(a, b)


# =============================================================================== activations


def np_selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * (np.exp(x) - 1))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


ACTIVATIONS = {
    "relu": (nn.ReLU(), lambda x: x.relu(), lambda a: np.maximum(a, 0)),
    "selu": (nn.SELU(), lambda x: x.selu(), np_selu),
    "elu": (nn.ELU(), lambda x: x.elu(1.0), lambda a: np.where(a > 0, a, np.exp(a) - 1)),
    "elu_alpha": (nn.ELU(0.3), lambda x: x.elu(0.3), lambda a: np.where(a > 0, a, 0.3 * (np.exp(a) - 1))),
    "sigmoid": (nn.Sigmoid(), lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
    "tanh": (nn.Tanh(), lambda x: x.tanh(), np.tanh),
    "softmax": (nn.Softmax(), lambda x: x.softmax(-1), np_softmax),
    "softmax_dim0": (nn.Softmax(dim=0), lambda x: x.softmax(0), lambda a: np_softmax(a, 0)),
    "identity": (nn.Identity(), lambda x: x, lambda a: a),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_modules(name):
    mod, fn, ref = ACTIVATIONS[name]
    xn = rng(17).standard_normal((5, 6)) * 2
    x = t64(xn)
    np.testing.assert_array_equal(mod(x).numpy(), fn(x).numpy())
    np.testing.assert_allclose(mod(x).numpy(), ref(xn), rtol=1e-10, atol=1e-12)
    assert list(mod.parameters()) == []


# =============================================================================== Residual


class TestResidual:
    def test_identity_shortcut(self):
        body = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
        res = nn.Residual(body)
        assert res.projection is None
        x = fg.randn(3, 4)
        np.testing.assert_allclose(res(x).numpy(), x.numpy() + body(x).numpy(), rtol=1e-6, atol=1e-6)

    def test_projection(self):
        body = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        res = nn.Residual(body, in_features=4, out_features=6)
        assert isinstance(res.projection, nn.Linear)
        assert res.projection.bias is None
        assert tuple(res.projection.weight.shape) == (6, 4)
        assert [n for n, _ in res.named_parameters()] == ["body.0.weight", "body.0.bias", "projection.weight"]
        xn = rng(18).standard_normal((3, 4)).astype(np.float32)
        x = t32(xn)
        expected = xn @ res.projection.weight.numpy().T + body(x).numpy()
        np.testing.assert_allclose(res(x).numpy(), expected, rtol=1e-5, atol=1e-5)

    def test_same_width_no_projection(self):
        res = nn.Residual(nn.Linear(4, 4), in_features=4, out_features=4)
        assert res.projection is None

    def test_shape_error(self):
        res = nn.Residual(nn.Linear(4, 6))
        with pytest.raises(fg.ShapeError, match=r"body output \(3, 6\) does not match the shortcut \(3, 4\)"):
            res(fg.randn(3, 4))
        with pytest.raises(fg.ShapeError, match="in_features and out_features"):
            res(fg.randn(3, 4))

    def test_gradient_flows_through_both_paths(self):
        lin = nn.Linear(3, 3)
        res = nn.Residual(lin)
        x = fg.tensor(rng(19).standard_normal((2, 3)).astype(np.float32), requires_grad=True)
        res(x).sum().backward()
        expected = np.ones((2, 3)) + np.ones((2, 3)) @ lin.weight.numpy()
        np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5, atol=1e-6)


# =============================================================================== init


FAN_IN, FAN_OUT = 400, 300


def _empty():
    return fg.zeros(FAN_OUT, FAN_IN)


@pytest.mark.parametrize(
    "name, std",
    [
        ("lecun_normal", math.sqrt(1 / FAN_IN)),
        ("he_normal", math.sqrt(2 / FAN_IN)),
        ("glorot_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ],
)
def test_normal_initializers(name, std):
    w = getattr(nn.init, name)(_empty()).numpy().astype(np.float64)
    assert abs(w.std() - std) < 0.02 * std
    assert abs(w.mean()) < 0.01 * std
    assert len(np.unique(w)) > 0.99 * w.size


@pytest.mark.parametrize(
    "name, bound",
    [("he_uniform", math.sqrt(6 / FAN_IN)), ("glorot_uniform", math.sqrt(6 / (FAN_IN + FAN_OUT)))],
)
def test_uniform_initializers(name, bound):
    w = getattr(nn.init, name)(_empty()).numpy().astype(np.float64)
    assert np.abs(w).max() <= bound * (1 + 1e-6)
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound / math.sqrt(3)
    assert abs(w.mean()) < 0.01 * bound


def test_zeros_ones_and_in_place():
    t = fg.randn(3, 4)
    assert nn.init.zeros(t) is t
    np.testing.assert_array_equal(t.numpy(), np.zeros((3, 4), np.float32))
    nn.init.ones(t)
    np.testing.assert_array_equal(t.numpy(), np.ones((3, 4), np.float32))


def test_init_on_parameter_stays_leaf():
    lin = nn.Linear(50, 40)
    nn.init.lecun_normal(lin.weight)
    assert lin.weight.requires_grad and lin.weight.is_leaf
    assert lin.weight.grad is None


def test_init_needs_two_dims():
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.init.he_normal(fg.zeros(5))


# =============================================================================== models


def _types(m):
    return [type(x).__name__ for x in m]


class TestModels:
    def test_standard_structure(self):
        m = fg.models.standard(784, 10)
        assert _types(m) == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
        assert m.num_parameters() == 671_754
        assert m[3].p == 0.2
        assert (m[0].in_features, m[0].out_features) == (784, 512)
        assert (m[-1].in_features, m[-1].out_features) == (512, 10)

    def test_standard_options(self):
        m = fg.models.standard(20, 3, width=16, depth=3, dropout=0.0, batchnorm=False)
        assert _types(m) == ["Linear", "ReLU"] * 3 + ["Linear"]
        assert m.num_parameters() == (20 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 3 + 3)
        m.eval()
        assert m(fg.randn(2, 20)).shape == (2, 3)

    @pytest.mark.parametrize("head, cls", [("softmax", "Softmax"), ("sigmoid", "Sigmoid")])
    def test_heads(self, head, cls):
        for m in (
            fg.models.standard(8, 3, width=4, head=head),
            fg.models.residual(8, 3, width=4, blocks=1, head=head),
            fg.models.self_normalizing(8, 3, width=4, depth=1, head=head),
        ):
            assert type(m[-1]).__name__ == cls
            assert type(m[-2]).__name__ == "Linear"
        plain = fg.models.standard(8, 3, width=4)
        assert type(plain[-1]).__name__ == "Linear"
        with pytest.raises(ValueError, match="head"):
            fg.models.standard(8, 3, head="relu")

    def test_softmax_head_outputs_probabilities(self):
        m = fg.models.standard(8, 3, width=4, head="softmax").eval()
        np.testing.assert_allclose(m(fg.randn(5, 8)).numpy().sum(1), np.ones(5), rtol=1e-5)

    def test_residual_structure(self):
        m = fg.models.residual(10, 4, width=8)
        assert _types(m) == ["Linear", "BatchNorm1d", "ReLU"] + ["Residual"] * 10 + ["Linear"]
        block = m[3]
        assert _types(block.body) == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2
        assert block.projection is None
        per_block = 2 * (8 * 8 + 8 + 16)
        assert m.num_parameters() == (10 * 8 + 8 + 16) + 10 * per_block + (8 * 4 + 4)
        m.eval()
        assert m(fg.randn(3, 10)).shape == (3, 4)

    def test_residual_depth_152(self):
        m = fg.models.residual(16, 4, width=8, depth=152, layers_per_block=3)
        blocks = [x for x in m if isinstance(x, nn.Residual)]
        assert len(blocks) == 50
        assert sum(isinstance(x, nn.Linear) for x in m.modules()) == 152
        assert _types(blocks[0].body) == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 3

    def test_residual_errors(self):
        with pytest.raises(ValueError, match="layers_per_block"):
            fg.models.residual(4, 2, layers_per_block=4)
        with pytest.raises(ValueError, match="depth 151"):
            fg.models.residual(4, 2, depth=151, layers_per_block=3)

    def test_self_normalizing_structure(self):
        m = fg.models.self_normalizing(20, 5, width=16, depth=3)
        assert _types(m) == ["Linear", "SELU", "AlphaDropout"] * 3 + ["Linear"]
        assert all(x.init == "lecun_normal" for x in m[:-1] if isinstance(x, nn.Linear))
        assert m[2].p == 0.05
        assert m.num_parameters() == (20 * 16 + 16) + 2 * (16 * 16 + 16) + (16 * 5 + 5)
        m2 = fg.models.self_normalizing(20, 5, width=16, depth=2, alpha_dropout=0.0)
        assert _types(m2) == ["Linear", "SELU"] * 2 + ["Linear"]

    def test_selu_self_normalizes_through_32_layers(self):
        fg.manual_seed(0)
        m = fg.models.self_normalizing(256, 10, width=256, depth=32).eval()
        x = fg.randn(2048, 256)
        stats = []
        with fg.no_grad():
            for layer in m:
                x = layer(x)
                if isinstance(layer, nn.SELU):
                    a = x.numpy().astype(np.float64)
                    stats.append((a.mean(), a.var()))
        assert len(stats) == 32
        for i, (mean, var) in enumerate(stats):
            assert abs(mean) < 0.1, f"SELU {i}: mean {mean:.3f}"
            assert abs(var - 1) < 0.15, f"SELU {i}: var {var:.3f}"


# ----------------------------------------------------------------------------- gradient utilities


def _params_with_grads(seed: int = 0, scale: float = 1.0):
    r = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 2)]
    ps, gs = [], []
    for s in shapes:
        p = fg.tensor(r.standard_normal(s).astype(np.float32), requires_grad=True)
        g = (r.standard_normal(s) * scale).astype(np.float32)
        p.grad = fg.tensor(g)
        ps.append(p)
        gs.append(g)
    return ps, gs


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0, "fro"])
def test_clip_grad_norm_scales_the_total_norm(norm_type):
    """The total norm is that of all gradients concatenated; above max_norm every gradient
    is scaled by max_norm / total (PyTorch's 1e-6 included), below it nothing changes."""
    p = 2.0 if norm_type == "fro" else norm_type
    ps, gs = _params_with_grads(scale=3.0)
    flat = np.concatenate([g.ravel() for g in gs]).astype(np.float64)
    want = np.linalg.norm(flat, ord=p) if p != math.inf else np.abs(flat).max()
    total = nn.utils.clip_grad_norm_(ps, 1.5, norm_type=norm_type)
    assert total.dim() == 0
    np.testing.assert_allclose(total.item(), want, rtol=1e-5)
    coef = 1.5 / (want + 1e-6)
    for prm, g in zip(ps, gs):
        np.testing.assert_allclose(prm.grad.numpy(), g * coef, rtol=1e-5)
    clipped = np.concatenate([prm.grad.numpy().ravel() for prm in ps]).astype(np.float64)
    got = np.linalg.norm(clipped, ord=p) if p != math.inf else np.abs(clipped).max()
    np.testing.assert_allclose(got, 1.5, rtol=1e-5)
    # already small enough: unchanged
    before = [prm.grad.numpy() for prm in ps]
    nn.utils.clip_grad_norm_(ps, 1e3, norm_type=norm_type)
    for prm, b in zip(ps, before):
        np.testing.assert_array_equal(prm.grad.numpy(), b)


def test_clip_grad_norm_edge_cases():
    """A single tensor, parameters without gradients, a non-finite norm (refused only when
    asked), and bad arguments."""
    ps, gs = _params_with_grads()
    ps[1].grad = None
    total = nn.utils.clip_grad_norm_(iter(ps), 0.5)
    want = np.linalg.norm(np.concatenate([gs[0].ravel(), gs[2].ravel()]))
    np.testing.assert_allclose(total.item(), want, rtol=1e-5)
    assert ps[1].grad is None
    one = fg.tensor([3.0, 4.0], requires_grad=True)
    one.grad = fg.tensor([3.0, 4.0])
    assert nn.utils.clip_grad_norm_(one, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(one.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    assert nn.utils.clip_grad_norm_([fg.zeros(2, requires_grad=True)], 1.0).item() == 0.0
    bad = fg.tensor([1.0, 2.0], requires_grad=True)
    bad.grad = fg.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="clip_grad_norm_: the total 2.0-norm of the gradients is inf"):
        nn.utils.clip_grad_norm_([bad], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="clip_grad_norm_: max_norm must be >= 0, got -1.0"):
        nn.utils.clip_grad_norm_([bad], -1.0)
    with pytest.raises(TypeError, match="expected tensors"):
        nn.utils.clip_grad_norm_([1.0], 1.0)


def test_clip_grad_value_clamps_in_place():
    ps, gs = _params_with_grads(scale=2.0)
    nn.utils.clip_grad_value_(ps, 0.5)
    for prm, g in zip(ps, gs):
        np.testing.assert_array_equal(prm.grad.numpy(), np.clip(g, -0.5, 0.5))
    with pytest.raises(ValueError, match="clip_grad_value_: clip_value must be >= 0"):
        nn.utils.clip_grad_value_(ps, -0.1)


def test_clipping_inside_a_training_step():
    """The PyTorch idiom (backward, clip, step) trains: the loss falls, the gradients were
    above the limit (so clipping acted) and every step's gradient norm is within it."""
    fg.manual_seed(0)
    r = np.random.default_rng(1)
    xa = r.standard_normal((64, 5)).astype(np.float32)
    x, y = fg.tensor(xa), fg.tensor((xa @ r.standard_normal((5, 1)) * 3).astype(np.float32))
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = fg.optim.SGD(model.parameters(), lr=0.3)
    losses, before = [], []
    for _ in range(60):
        loss = fg.losses.mse(model(x), y)
        opt.zero_grad()
        loss.backward()
        before.append(nn.utils.clip_grad_norm_(model.parameters(), 1.0).item())
        total = math.sqrt(sum(float((p.grad * p.grad).sum().item()) for p in model.parameters()))
        assert total <= 1.0 + 1e-4
        opt.step()
        losses.append(loss.item())
    assert max(before) > 2.0
    assert losses[-1] < 0.5 * losses[0]


def test_zero_grad_can_keep_zeroed_gradients():
    model = nn.Linear(3, 2)
    model(fg.ones(4, 3)).sum().backward()
    grads = [p.grad for p in model.parameters()]
    model.zero_grad(set_to_none=False)
    for p, g in zip(model.parameters(), grads):
        assert p.grad is not None and not p.grad.numpy().any()
        assert p.grad.shares_storage(g)  # zeroed in place
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    opt = fg.optim.SGD(model.parameters(), lr=0.1)
    model(fg.ones(4, 3)).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------- PyTorch names


def test_functional_api_matches_the_methods_and_numpy():
    """`ferrograd.nn.functional` (as `import torch.nn.functional as F`): activations, dropout,
    linear and the losses, against the tensor methods or NumPy."""
    import ferrograd.nn.functional as F

    r = np.random.default_rng(7)
    a = r.standard_normal((6, 4)).astype(np.float32)
    x = fg.tensor(a)
    for name in ["relu", "selu", "sigmoid", "tanh"]:
        np.testing.assert_array_equal(getattr(F, name)(x).numpy(), getattr(x, name)().numpy())
    np.testing.assert_array_equal(F.elu(x, 0.5).numpy(), x.elu(0.5).numpy())
    np.testing.assert_array_equal(F.leaky_relu(x, 0.2).numpy(), np.where(a > 0, a, np.float32(0.2) * a))
    np.testing.assert_array_equal(F.gelu(x, approximate="tanh").numpy(), x.gelu("tanh").numpy())
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy().sum(1), np.ones(6), rtol=1e-6)
    np.testing.assert_array_equal(F.log_softmax(x, 1).numpy(), x.log_softmax(1).numpy())
    w = fg.tensor(r.standard_normal((3, 4)).astype(np.float32))
    np.testing.assert_allclose(F.linear(x, w).numpy(), a @ w.numpy().T, rtol=1e-5)
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).numpy(), a)
    kept = F.dropout(fg.ones(10000), 0.25).numpy()
    assert set(np.unique(kept)) <= {0.0, np.float32(1 / 0.75)} and abs((kept > 0).mean() - 0.75) < 0.02
    y = fg.tensor(r.integers(0, 4, 6))
    logp = x.log_softmax(1)
    log_sm = a - np.log(np.exp(a).sum(1, keepdims=True))
    nll = -log_sm[np.arange(6), y.numpy()]
    np.testing.assert_allclose(F.nll_loss(logp, y).item(), nll.mean(), rtol=1e-5)
    np.testing.assert_allclose(F.nll_loss(logp, y, reduction="none").numpy(), nll, rtol=1e-5)
    np.testing.assert_allclose(F.cross_entropy(x, y).item(), nll.mean(), rtol=1e-5)
    np.testing.assert_allclose(nn.NLLLoss()(logp, y).item(), nll.mean(), rtol=1e-5)
    t = fg.tensor(r.uniform(0, 1, (6, 4)).astype(np.float32))
    np.testing.assert_allclose(F.mse_loss(x, t).item(), ((a - t.numpy()) ** 2).mean(), rtol=1e-5)
    np.testing.assert_allclose(F.l1_loss(x, t).item(), np.abs(a - t.numpy()).mean(), rtol=1e-5)
    np.testing.assert_allclose(
        nn.L1Loss(reduction="sum")(x, t).item(), np.abs(a - t.numpy()).sum(), rtol=1e-5
    )
    p = x.sigmoid()
    pv, tv = p.numpy().astype(np.float64), t.numpy()
    bce = -(tv * np.log(pv) + (1 - tv) * np.log(1 - pv))
    np.testing.assert_allclose(F.binary_cross_entropy(p, t).item(), bce.mean(), rtol=1e-4)
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, t).item(), bce.mean(), rtol=1e-4)
    assert F.one_hot(y, 4).shape == (6, 4)
    with pytest.raises(fg.ShapeError, match="nll_loss: expected log-probabilities"):
        F.nll_loss(logp, fg.tensor([0, 1]))
    # the gradients flow through the new compositions
    leaf = fg.tensor(a.astype(np.float64), dtype=fg.float64, requires_grad=True)
    assert gradcheck(lambda v: F.nll_loss(v.log_softmax(1), y), (leaf,))
    assert gradcheck(lambda v: F.l1_loss(v, fg.tensor(t.numpy().astype(np.float64))), (leaf,))
    prob = fg.tensor(r.uniform(0.1, 0.9, (6, 4)), dtype=fg.float64, requires_grad=True)
    assert gradcheck(lambda v: F.binary_cross_entropy(v, fg.tensor(t.numpy().astype(np.float64))), (prob,))


def test_more_pytorch_layers():
    """Flatten, LeakyReLU, GELU, LogSoftmax and ModuleList behave as PyTorch's, save and load
    through their configs, and a Linear followed by LeakyReLU fuses like the others."""
    r = np.random.default_rng(8)
    a = r.standard_normal((2, 3, 4)).astype(np.float32)
    assert nn.Flatten()(fg.tensor(a)).shape == (2, 12)
    assert nn.Flatten(0, 1)(fg.tensor(a)).shape == (6, 4)
    x = fg.tensor(a[0])
    np.testing.assert_array_equal(
        nn.LeakyReLU(0.1)(x).numpy(), np.where(a[0] > 0, a[0], np.float32(0.1) * a[0])
    )
    np.testing.assert_array_equal(nn.GELU()(x).numpy(), x.gelu().numpy())
    np.testing.assert_array_equal(nn.LogSoftmax(dim=1)(x).numpy(), x.log_softmax(1).numpy())
    with pytest.raises(ValueError, match="GELU: approximate must be"):
        nn.GELU("fast")
    blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    blocks.append(nn.Linear(4, 2))
    assert len(blocks) == 4 and len(list(blocks.parameters())) == 8 and isinstance(blocks[1:], nn.ModuleList)
    with pytest.raises(NotImplementedError, match="ModuleList has no forward"):
        blocks(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = blocks

        def forward(self, v):
            for b in self.blocks:
                v = b(v)
            return v

    assert Net()(x).shape == (3, 2) and len(list(Net().parameters())) == 8
    seq = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 5), nn.LeakyReLU(0.2), nn.Linear(5, 3), nn.GELU(), nn.LogSoftmax(1)
    )
    back = nn.from_config(nn.to_config(seq))
    assert [type(m).__name__ for m in back] == [type(m).__name__ for m in seq]
    assert back[2].negative_slope == 0.2
    fused = seq(fg.tensor(a))
    unfused = seq[5](seq[4](seq[3](seq[2](seq[1](seq[0](fg.tensor(a)))))))
    np.testing.assert_allclose(fused.numpy(), unfused.numpy(), rtol=1e-6)


def test_lr_scheduler_module_has_pytorchs_name():
    from ferrograd.optim.lr_scheduler import CosineAnnealingLR, StepLR

    assert fg.optim.lr_scheduler.StepLR is StepLR is fg.optim.StepLR
    opt = fg.optim.SGD([fg.zeros(2, requires_grad=True)], lr=0.1)
    sched = CosineAnnealingLR(opt, T_max=4)
    for _ in range(4):
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)


def test_module_pytorch_methods():
    """cpu/cuda/float/double, buffers, named_modules, add_module, register_parameter and
    apply, as PyTorch's."""
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU())
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "0", "1", "2"]
    assert len(list(net.buffers())) == 3 and next(net.buffers()).shape == (4,)
    seen = []
    assert net.apply(lambda m: seen.append(type(m).__name__)) is net
    assert seen == ["Linear", "BatchNorm1d", "ReLU", "Sequential"]
    net.double()
    assert all(p.dtype == fg.float64 for p in net.parameters()) and next(net.buffers()).dtype == fg.float64
    assert net[1].num_batches_tracked.dtype == fg.int64  # a counter is not cast
    assert net(fg.ones(2, 3, dtype=fg.float64)).dtype == fg.float64
    net.float()
    assert all(p.dtype == fg.float32 for p in net.parameters())
    assert net.cpu() is net
    with pytest.raises(ValueError, match="cuda: ferrograd drives one GPU; got device 1"):
        net.cuda(1)

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_parameter("g", fg.ones(3))
            self.add_module("inner", nn.Linear(3, 3))

        def forward(self, x):
            return self.inner(x) * self.g

    s = Scale()
    assert [n for n, _ in s.named_parameters()] == ["g", "inner.weight", "inner.bias"]
    assert s.g.requires_grad and s.g.is_leaf
    with pytest.raises(TypeError, match="add_module: expected a Module"):
        s.add_module("x", 3)


def test_forward_hooks_as_pytorch():
    """register_forward_pre_hook / register_forward_hook: PyTorch's signatures and return
    rules; a hooked layer of a Sequential runs on its own, and removing the last hook puts
    the fused path back (the same numbers either way)."""
    fg.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.SELU())
    x = fg.randn(5, 3)
    fused = net(x).numpy()
    seen = []
    h1 = net[1].register_forward_hook(lambda m, args, out: seen.append((m, args[0].numpy(), out.numpy())))
    assert net[1].has_forward_hooks and not net[0].has_forward_hooks
    np.testing.assert_allclose(net(x).numpy(), fused, rtol=1e-6, atol=1e-6)
    ((m, inp, out),) = seen
    assert m is net[1]
    np.testing.assert_allclose(inp, net[0](x).numpy(), rtol=1e-6)  # the Linear's own output
    np.testing.assert_allclose(out, np.maximum(inp, 0))
    h1.remove()
    h1.remove()  # a second remove does nothing
    assert not net[1].has_forward_hooks
    net(x)
    assert len(seen) == 1
    # a pre-hook replaces the input (a tuple or one value), a hook replaces the output
    lin = nn.Linear(3, 2)
    with lin.register_forward_pre_hook(lambda m, args: args[0] * 0):
        np.testing.assert_allclose(lin(x).numpy(), np.broadcast_to(lin.bias.numpy(), (5, 2)), rtol=1e-6)
        with lin.register_forward_hook(lambda m, args, out: out + 1):
            np.testing.assert_allclose(
                lin(x).numpy(), np.broadcast_to(lin.bias.numpy() + 1, (5, 2)), rtol=1e-6
            )
    assert not lin.has_forward_hooks
    with pytest.raises(TypeError, match="forward hook must be callable"):
        lin.register_forward_hook(3)
