"""RNN, LSTM, GRU and their cells against NumPy transcriptions of PyTorch's documented
equations (float64), with PyTorch's parameter names; gradients against finite
differences; the GPU against the CPU; configs and checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

import ferrograd as fg
from ferrograd import nn
from ferrograd.autograd import gradcheck


def _sig(v):
    return 1 / (1 + np.exp(-v))


def _step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, -1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        return _sig(o) * np.tanh(c), c
    if mode == "GRU":
        ir, iz, in_ = np.split(gi, 3, -1)
        hr, hz, hn = np.split(gh, 3, -1)
        r, z = _sig(ir + hr), _sig(iz + hz)
        n = np.tanh(in_ + r * hn)
        return (1 - z) * n + z * h, None
    pre = gi + gh
    return (np.tanh(pre) if mode == "RNN_TANH" else np.maximum(pre, 0)), None


def _reference(m, mode, x):
    """x (L, N, H_in): output (L, N, D H), h_n, c_n, from the module's own weights."""
    p = {k: v.detach().numpy().astype(np.float64) for k, v in m.state_dict().items()}
    dirs = 2 if m.bidirectional else 1
    layer_in, hs, cs = x, [], []
    for k in range(m.num_layers):
        outs = []
        for d in range(dirs):
            sfx = "_reverse" if d else ""
            w_ih, w_hh = p[f"weight_ih_l{k}{sfx}"], p[f"weight_hh_l{k}{sfx}"]
            b_ih = p.get(f"bias_ih_l{k}{sfx}", 0.0)
            b_hh = p.get(f"bias_hh_l{k}{sfx}", 0.0)
            w_hr = p.get(f"weight_hr_l{k}{sfx}")  # LSTM's projection: h = W_hr (o * tanh c)
            h = np.zeros((x.shape[1], m.hidden_size if w_hr is None else len(w_hr)))
            c = np.zeros((x.shape[1], m.hidden_size))
            seq = [None] * len(layer_in)
            for t in range(len(layer_in) - 1, -1, -1) if d else range(len(layer_in)):
                h, c2 = _step(mode, layer_in[t], h, c, w_ih, w_hh, b_ih, b_hh)
                if w_hr is not None:
                    h = h @ w_hr.T
                c = c2 if c2 is not None else c
                seq[t] = h
            hs.append(h)
            cs.append(c)
            outs.append(np.stack(seq))
        layer_in = np.concatenate(outs, -1)
    return layer_in, np.stack(hs), np.stack(cs)


CASES = [
    (lambda: nn.RNN(3, 4, num_layers=2), "RNN_TANH"),
    (lambda: nn.RNN(3, 4, nonlinearity="relu", bidirectional=True), "RNN_RELU"),
    (lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True), "LSTM"),
    (lambda: nn.LSTM(3, 4, bias=False), "LSTM"),
    (lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2), "LSTM"),
    (lambda: nn.GRU(3, 4, num_layers=2), "GRU"),
    (lambda: nn.GRU(3, 4, bidirectional=True), "GRU"),
]


@pytest.mark.parametrize("make, mode", CASES)
def test_against_numpy(make, mode):
    fg.manual_seed(0)
    m = make().double()
    x = np.random.default_rng(1).standard_normal((5, 2, 3))
    out = m(fg.tensor(x))
    y, h = out[0].numpy(), out[1]
    want_y, want_h, want_c = _reference(m, mode, x)
    np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-12)
    if mode == "LSTM":
        np.testing.assert_allclose(h[0].numpy(), want_h, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h[1].numpy(), want_c, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(h.numpy(), want_h, rtol=1e-10, atol=1e-12)


def test_layout_options_and_initial_state():
    fg.manual_seed(0)
    m = nn.LSTM(3, 4, batch_first=True).double()
    x = np.random.default_rng(2).standard_normal((2, 5, 3))
    y, (h, c) = m(fg.tensor(x))
    y2, (h2, c2) = nn.LSTM.forward(m, fg.tensor(x[0]))  # unbatched (L, H_in)
    np.testing.assert_allclose(y2.numpy(), y.numpy()[0], rtol=1e-12)
    np.testing.assert_allclose(h2.numpy(), h.numpy()[:, 0], rtol=1e-12)
    # a sequence in two halves, the state carried over, equals the whole
    ya, state = m(fg.tensor(x[:, :2]))
    yb, (hb, cb) = m(fg.tensor(x[:, 2:]), state)
    np.testing.assert_allclose(np.concatenate([ya.numpy(), yb.numpy()], 1), y.numpy(), rtol=1e-12)
    np.testing.assert_allclose(cb.numpy(), c.numpy(), rtol=1e-12)
    with pytest.raises(fg.ShapeError, match="h_0 must have shape"):
        m(fg.tensor(x), (fg.zeros(2, 2, 4, dtype=fg.float64), fg.zeros(1, 2, 4, dtype=fg.float64)))
    with pytest.raises(fg.ShapeError, match=r"expected input \(N, L, H_in\)"):
        m(fg.zeros(2, 5, 7, dtype=fg.float64))
    with pytest.raises(fg.ArgumentError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)


def test_lstm_projection_shapes_and_state():
    """PyTorch's LSTMP: weight_hr per layer and direction, h of the projection's width."""
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert list(shapes)[:5] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0"]
    assert shapes["weight_hh_l0"] == (20, 2) and shapes["weight_hr_l1_reverse"] == (2, 5)
    assert shapes["weight_ih_l1"] == (20, 4)
    y, (h, c) = m(fg.randn(6, 3, 3))
    assert y.shape == (6, 3, 4) and h.shape == (4, 3, 2) and c.shape == (4, 3, 5)
    y2, _ = m(fg.randn(6, 3, 3), (fg.zeros(4, 3, 2), fg.zeros(4, 3, 5)))
    with pytest.raises(fg.ShapeError, match="h_0 must have shape"):
        m(fg.randn(6, 3, 3), (fg.zeros(4, 3, 5), fg.zeros(4, 3, 5)))
    assert "proj_size=2" in repr(m)
    cfg = json.loads(json.dumps(nn.to_config(m)))
    assert {k: tuple(v.shape) for k, v in nn.from_config(cfg).state_dict().items()} == shapes


def test_parameter_names_and_init_are_pytorchs():
    m = nn.GRU(3, 5, num_layers=2, bidirectional=True)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes["weight_ih_l0"] == (15, 3) and shapes["weight_hh_l0_reverse"] == (15, 5)
    assert shapes["weight_ih_l1"] == (15, 10) and shapes["bias_hh_l1_reverse"] == (15,)
    assert len(shapes) == 16
    bound = 1 / np.sqrt(5)
    assert all(np.abs(p.numpy()).max() <= bound for p in m.parameters())


def test_gradients():
    fg.manual_seed(0)
    for m in (
        nn.LSTM(2, 3, bidirectional=True).double(),
        nn.LSTM(2, 3, proj_size=2).double(),
        nn.GRU(2, 3).double(),
        nn.RNN(2, 3).double(),
    ):
        x = fg.tensor(np.random.default_rng(3).standard_normal((3, 1, 2)), requires_grad=True)
        assert gradcheck(lambda t, m=m: m(t)[0], [x])
        w = m.weight_hh_l0
        y = m(x)[0]
        (y * y).sum().backward()
        assert w.grad is not None and w.grad.shape == w.shape


def test_cells_against_numpy():
    fg.manual_seed(0)
    x = np.random.default_rng(4).standard_normal((3, 2))
    for cell, mode in (
        (nn.RNNCell(2, 4, nonlinearity="relu"), "RNN_RELU"),
        (nn.LSTMCell(2, 4), "LSTM"),
        (nn.GRUCell(2, 4), "GRU"),
    ):
        cell = cell.double()
        p = {k: v.numpy() for k, v in cell.state_dict().items()}
        h0 = np.random.default_rng(5).standard_normal((3, 4))
        if mode == "LSTM":
            c0 = np.ones((3, 4))
            h, c = cell(fg.tensor(x), (fg.tensor(h0), fg.tensor(c0)))
            wh, wc = _step(mode, x, h0, c0, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
            np.testing.assert_allclose(c.numpy(), wc, rtol=1e-12)
        else:
            h = cell(fg.tensor(x), fg.tensor(h0))
            wh, _ = _step(mode, x, h0, None, p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        np.testing.assert_allclose(h.numpy(), wh, rtol=1e-12)
    assert nn.GRUCell(2, 4)(fg.ones(2)).shape == (4,)  # unbatched


def test_gpu_matches_cpu(device):
    fg.manual_seed(0)
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = fg.tensor(np.random.default_rng(6).standard_normal((2, 5, 3)).astype(np.float32))
    want, (hw, _) = m(x)
    m.to(device)
    got, (hg, _) = m(x.to(device))
    assert got.device == device
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hg.cpu().numpy(), hw.numpy(), rtol=1e-5, atol=1e-6)


def test_config_and_checkpoint(tmp_path):
    m = nn.Sequential(nn.GRU(3, 4, num_layers=2))
    cfg = json.loads(json.dumps(nn.to_config(m)))
    assert nn.to_config(nn.from_config(cfg)) == cfg
    fg.save(m[0], tmp_path / "gru.safetensors")
    back = fg.load(tmp_path / "gru.safetensors")
    x = fg.randn(5, 2, 3)
    np.testing.assert_array_equal(back(x)[0].numpy(), m[0](x)[0].numpy())
