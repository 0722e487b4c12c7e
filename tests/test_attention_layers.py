"""MultiheadAttention and the Transformer encoder against NumPy transcriptions of PyTorch's
documented computation (float64), with PyTorch's parameter names; masks, layouts,
gradients, GPU = CPU, configs and checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _mha_np(m, q, k, v, bias=None):
    """(L, N, E) inputs; returns (output (L, N, E), weights averaged over heads (N, L, S))."""
    p = {n: t.numpy() for n, t in m.state_dict().items()}
    e, h = m.embed_dim, m.num_heads
    d = e // h
    wq, wk, wv = np.split(p["in_proj_weight"], 3)
    bq, bk, bv = np.split(p["in_proj_bias"], 3)

    def heads(x, w, b, extra=None, keys=True):
        y = x @ w.T + b
        if extra is not None:  # add_bias_kv: one more key/value row, the learned bias
            y = np.concatenate([y, np.broadcast_to(extra, (1, *y.shape[1:]))], 0)
        y = y.reshape(y.shape[0], x.shape[1], h, d).transpose(1, 2, 0, 3)
        if keys and m.add_zero_attn:  # one more zero key/value per head
            y = np.concatenate([y, np.zeros((*y.shape[:2], 1, d))], 2)
        return y

    qh = heads(q, wq, bq, keys=False)
    kh, vh = heads(k, wk, bk, p.get("bias_k")), heads(v, wv, bv, p.get("bias_v"))
    s = qh @ kh.transpose(0, 1, 3, 2) / np.sqrt(d)
    if bias is not None:
        extra = s.shape[-1] - bias.shape[-1]  # the appended keys are never masked
        full = np.broadcast_to(bias, (*s.shape[:-1], bias.shape[-1]))
        s = s + np.concatenate([full, np.zeros((*s.shape[:-1], extra))], -1)
    w = _softmax(s)
    o = (w @ vh).transpose(2, 0, 1, 3).reshape(q.shape[0], q.shape[1], e)
    return o @ p["out_proj.weight"].T + p["out_proj.bias"], w.mean(1)


def test_multihead_attention_against_numpy():
    fg.manual_seed(0)
    m = nn.MultiheadAttention(8, 2).double()
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((5, 2, 8)), rng.standard_normal((7, 2, 8)), rng.standard_normal((7, 2, 8))
    out, w = m(fg.tensor(q), fg.tensor(k), fg.tensor(v))
    want_o, want_w = _mha_np(m, q, k, v)
    np.testing.assert_allclose(out.numpy(), want_o, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-10, atol=1e-12)
    # masks: bool attn_mask (True: not allowed) and key_padding_mask
    am = np.triu(np.ones((5, 7), bool), 3)
    kp = np.zeros((2, 7), bool)
    kp[1, 6] = True
    bias = np.where(am, -np.inf, 0.0)[None, None] + np.where(kp, -np.inf, 0.0)[:, None, None, :]
    out, w = m(
        fg.tensor(q), fg.tensor(k), fg.tensor(v), key_padding_mask=fg.tensor(kp), attn_mask=fg.tensor(am)
    )
    want_o, want_w = _mha_np(m, q, k, v, bias)
    np.testing.assert_allclose(out.numpy(), want_o, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-10, atol=1e-12)
    # a float mask is added; is_causal is the upper-triangle mask
    fm = np.random.default_rng(2).standard_normal((5, 7))
    out, _ = m(fg.tensor(q), fg.tensor(k), fg.tensor(v), attn_mask=fg.tensor(fm))
    np.testing.assert_allclose(out.numpy(), _mha_np(m, q, k, v, fm)[0], rtol=1e-10, atol=1e-12)
    qq = fg.tensor(q)
    causal = m(qq, qq, qq, is_causal=True, need_weights=False)
    assert causal[1] is None
    tri = np.where(np.triu(np.ones((5, 5), bool), 1), -np.inf, 0.0)
    np.testing.assert_allclose(causal[0].numpy(), _mha_np(m, q, q, q, tri)[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bias_kv,zero_attn", [(True, False), (False, True), (True, True)])
def test_bias_kv_and_zero_attn_against_numpy(bias_kv, zero_attn):
    fg.manual_seed(0)
    m = nn.MultiheadAttention(8, 2, add_bias_kv=bias_kv, add_zero_attn=zero_attn).double()
    names = [n for n, _ in m.named_parameters()]
    if bias_kv:  # PyTorch's order: own parameters, then out_proj's
        assert names == [
            "in_proj_weight",
            "in_proj_bias",
            "bias_k",
            "bias_v",
            "out_proj.weight",
            "out_proj.bias",
        ]
        assert m.bias_k.shape == (1, 1, 8) and m.bias_k.abs().sum().item() > 0
    rng = np.random.default_rng(4)
    q, k, v = rng.standard_normal((5, 2, 8)), rng.standard_normal((7, 2, 8)), rng.standard_normal((7, 2, 8))
    am = np.triu(np.ones((5, 7), bool), 2)
    kp = np.zeros((2, 7), bool)
    kp[0, 5:] = True
    bias = np.where(am, -np.inf, 0.0)[None, None] + np.where(kp, -np.inf, 0.0)[:, None, None, :]
    out, w = m(
        fg.tensor(q), fg.tensor(k), fg.tensor(v), key_padding_mask=fg.tensor(kp), attn_mask=fg.tensor(am)
    )
    want_o, want_w = _mha_np(m, q, k, v, bias)
    np.testing.assert_allclose(out.numpy(), want_o, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), want_w, rtol=1e-10, atol=1e-12)
    assert w.shape == (2, 5, 7 + bias_kv + zero_attn)
    qt = fg.tensor(q[:2, :1], requires_grad=True)
    assert gradcheck(lambda t: m(t, t, t)[0], [qt])
    cfg = json.loads(json.dumps(nn.to_config(m)))
    assert {n: tuple(t.shape) for n, t in nn.from_config(cfg).state_dict().items()} == {
        n: tuple(t.shape) for n, t in m.state_dict().items()
    }


def test_layouts_and_per_head_weights():
    fg.manual_seed(0)
    m = nn.MultiheadAttention(6, 3, batch_first=True).double()
    x = np.random.default_rng(3).standard_normal((2, 4, 6))
    out, w = m(fg.tensor(x), fg.tensor(x), fg.tensor(x), average_attn_weights=False)
    assert out.shape == (2, 4, 6) and w.shape == (2, 3, 4, 4)
    m.batch_first = False
    out1, w1 = m(fg.tensor(x[0]), fg.tensor(x[0]), fg.tensor(x[0]))  # unbatched (L, E)
    np.testing.assert_allclose(out1.numpy(), out.numpy()[0], rtol=1e-10)
    np.testing.assert_allclose(w1.numpy(), w.numpy()[0].mean(0), rtol=1e-10)
    kv = nn.MultiheadAttention(6, 2, kdim=4, vdim=5)
    assert {k: tuple(t.shape) for k, t in kv.state_dict().items()} == {
        "q_proj_weight": (6, 6), "k_proj_weight": (6, 4), "v_proj_weight": (6, 5), "in_proj_bias": (18,),
        "out_proj.weight": (6, 6), "out_proj.bias": (6,),
    }  # fmt: skip
    assert kv(fg.randn(3, 1, 6), fg.randn(5, 1, 4), fg.randn(5, 1, 5))[0].shape == (3, 1, 6)
    with pytest.raises(fg.ArgumentError, match="divisible"):
        nn.MultiheadAttention(7, 2)


def test_encoder_layer_against_numpy():
    fg.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0).double()
    x = np.random.default_rng(4).standard_normal((5, 2, 8))
    p = {n: t.numpy() for n, t in layer.state_dict().items()}

    def ln(a, w, b):
        mu, var = a.mean(-1, keepdims=True), a.var(-1, keepdims=True)
        return (a - mu) / np.sqrt(var + 1e-5) * w + b

    attn = _mha_np(layer.self_attn, x, x, x)[0]
    h = ln(x + attn, p["norm1.weight"], p["norm1.bias"])
    ff = (
        np.maximum(h @ p["linear1.weight"].T + p["linear1.bias"], 0) @ p["linear2.weight"].T
        + p["linear2.bias"]
    )
    want = ln(h + ff, p["norm2.weight"], p["norm2.bias"])
    np.testing.assert_allclose(layer(fg.tensor(x)).numpy(), want, rtol=1e-10, atol=1e-12)


def test_gradients_and_gpu(device):
    fg.manual_seed(0)
    m = nn.MultiheadAttention(4, 2).double()
    x = fg.tensor(np.random.default_rng(5).standard_normal((3, 1, 4)), requires_grad=True)
    assert gradcheck(lambda t: m(t, t, t)[0], [x])
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2)
    xs = fg.tensor(np.random.default_rng(6).standard_normal((2, 5, 8)).astype(np.float32))
    want = enc(xs).numpy()
    got = enc.to(device)(xs.to(device))
    assert got.device == device
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-4, atol=1e-5)


def test_encoder_copies_config_and_checkpoint(tmp_path):
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    enc = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(8))
    ws = [enc.layers[i].linear1.weight for i in range(3)]
    assert ws[0] is not ws[1] and ws[0] is not layer.linear1.weight  # independent copies
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters())) + 2
    cfg = json.loads(json.dumps(nn.to_config(enc)))
    assert nn.to_config(nn.from_config(cfg)) == cfg
    fg.save(enc, tmp_path / "enc.safetensors")
    back = fg.load(tmp_path / "enc.safetensors")
    back.eval()
    enc.eval()
    x = fg.randn(4, 2, 8)
    np.testing.assert_array_equal(back(x).numpy(), enc(x).numpy())


def test_decoder_layer_against_numpy_and_transformer():
    fg.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).double()
    rng = np.random.default_rng(7)
    tgt, mem = rng.standard_normal((4, 2, 8)), rng.standard_normal((5, 2, 8))
    p = {n: t.numpy() for n, t in layer.state_dict().items()}

    def ln(a, i):
        mu, var = a.mean(-1, keepdims=True), a.var(-1, keepdims=True)
        return (a - mu) / np.sqrt(var + 1e-5) * p[f"norm{i}.weight"] + p[f"norm{i}.bias"]

    causal = np.where(np.triu(np.ones((4, 4), bool), 1), -np.inf, 0.0)
    x = ln(tgt + _mha_np(layer.self_attn, tgt, tgt, tgt, causal)[0], 1)
    x = ln(x + _mha_np(layer.multihead_attn, x, mem, mem)[0], 2)
    ff = (
        np.maximum(x @ p["linear1.weight"].T + p["linear1.bias"], 0) @ p["linear2.weight"].T
        + p["linear2.bias"]
    )
    want = ln(x + ff, 3)
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=fg.float64)
    np.testing.assert_allclose(layer(fg.tensor(tgt), fg.tensor(mem), tgt_mask=mask).numpy(), want, rtol=1e-10)
    np.testing.assert_allclose(
        layer(fg.tensor(tgt), fg.tensor(mem), tgt_is_causal=True).numpy(), want, rtol=1e-10
    )
    model = nn.Transformer(8, 2, 2, 1, 16, dropout=0.0, batch_first=True)
    names = list(model.state_dict())
    assert "encoder.layers.1.self_attn.in_proj_weight" in names and "decoder.norm.weight" in names
    assert "decoder.layers.0.multihead_attn.out_proj.weight" in names
    out = model(
        fg.randn(2, 5, 8), fg.randn(2, 3, 8), tgt_mask=nn.Transformer.generate_square_subsequent_mask(3)
    )
    assert out.shape == (2, 3, 8)
    cfg = json.loads(json.dumps(nn.to_config(model)))
    assert nn.to_config(nn.from_config(cfg)) == cfg
    xs = fg.tensor(rng.standard_normal((2, 1, 8)), requires_grad=True)
    small = nn.TransformerDecoderLayer(8, 2, 8, dropout=0.0).double()
    assert gradcheck(lambda a: small(a, fg.tensor(mem[:3, :1])), [xs])
