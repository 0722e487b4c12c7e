"""Recurrent layers as PyTorch's: `RNN` (tanh or relu), `LSTM`, `GRU` (stacked,
bidirectional, `batch_first`, dropout between layers) and the cells `RNNCell`,
`LSTMCell`, `GRUCell`, with PyTorch's parameter names, shapes, gate order (LSTM: input,
forget, cell, output; GRU: reset, update, new) and initialization U(-1/sqrt(H), 1/sqrt(H)),
so a PyTorch state dict loads unchanged.

Composed from ops on both devices: the input's product with every step's weights is one
matrix product over the whole sequence; then one small product per step for the hidden
state, in a Python loop over time (no fused recurrent kernel)."""

from __future__ import annotations

import math

from .. import _core
from .._core import ArgumentError, ShapeError, Tensor
from . import init as _init
from .layers import _size
from .module import Module, Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _linear(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    return _core.linear(x, w, b)


def _rnn_step(mode: str, gi: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor, b_hh: Tensor | None):
    """One step from the input's gate pre-activations `gi` (its product with weight_ih plus
    bias_ih): the new hidden state (and cell state for an LSTM)."""
    gh = _linear(h, w_hh, b_hh)
    if mode == "LSTM":
        assert c is not None
        i, f, g, o = (gi + gh).chunk(4, -1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c
    if mode == "GRU":
        ir, iz, in_ = gi.chunk(3, -1)
        hr, hz, hn = gh.chunk(3, -1)
        r, z = (ir + hr).sigmoid(), (iz + hz).sigmoid()
        n = (in_ + r * hn).tanh()
        return (1.0 - z) * n + z * h, None
    pre = gi + gh
    return (pre.tanh() if mode == "RNN_TANH" else pre.relu()), None


class _RNNBase(Module):
    """The stacked, optionally bidirectional recurrent layer shared by RNN, LSTM and GRU."""

    _mode = "RNN_TANH"
    proj_size = 0  # an LSTM's projection of h (0: none)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        super().__init__()
        name = type(self).__name__
        self.input_size, self.hidden_size = _size("input_size", input_size), _size("hidden_size", hidden_size)
        self.num_layers = _size("num_layers", num_layers)
        if not 0.0 <= dropout <= 1.0:
            raise ArgumentError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        for key, shape in self._shapes(
            self.input_size, self.hidden_size, self.num_layers, self.bias, self.bidirectional, self.proj_size
        ).items():
            setattr(self, key, Parameter(_core.zeros(list(shape), None)))
        self.reset_parameters()

    @classmethod
    def _shapes(
        cls, input_size, hidden_size, num_layers, bias, bidirectional, proj_size=0
    ) -> dict[str, tuple[int, ...]]:
        g = _GATES[cls._mode] * hidden_size
        h_out = proj_size or hidden_size  # the width of h (PyTorch's real_hidden_size)
        out: dict[str, tuple[int, ...]] = {}
        for k in range(num_layers):
            width = input_size if k == 0 else h_out * (2 if bidirectional else 1)
            for sfx in ("", "_reverse") if bidirectional else ("",):
                out[f"weight_ih_l{k}{sfx}"] = (g, width)
                out[f"weight_hh_l{k}{sfx}"] = (g, h_out)
                if bias:
                    out[f"bias_ih_l{k}{sfx}"] = (g,)
                    out[f"bias_hh_l{k}{sfx}"] = (g,)
                if proj_size:
                    out[f"weight_hr_l{k}{sfx}"] = (proj_size, hidden_size)
        return out

    def reset_parameters(self) -> None:
        """Every weight and bias drawn from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            _init.uniform_(p, -bound, bound)

    def _run(self, x: Tensor, state):
        """x (L, N, H_in); state: (h0, c0) stacked per layer and direction. Returns the
        output (L, N, D * H) and the final states."""
        mode, dirs = self._mode, 2 if self.bidirectional else 1
        h0, c0 = state
        hs, cs = [], []
        layer_in = x
        for k in range(self.num_layers):
            outs = []
            for d in range(dirs):
                sfx = "_reverse" if d else ""
                w_ih, w_hh = getattr(self, f"weight_ih_l{k}{sfx}"), getattr(self, f"weight_hh_l{k}{sfx}")
                b_ih = getattr(self, f"bias_ih_l{k}{sfx}") if self.bias else None
                b_hh = getattr(self, f"bias_hh_l{k}{sfx}") if self.bias else None
                w_hr = getattr(self, f"weight_hr_l{k}{sfx}") if self.proj_size else None
                steps, n = layer_in.shape[0], layer_in.shape[1]
                gi_all = _linear(layer_in.reshape(steps * n, -1), w_ih, b_ih).reshape(steps, n, -1)
                h = h0[k * dirs + d]
                c = c0[k * dirs + d] if c0 is not None else None
                seq: list[Tensor] = [h] * steps  # each entry replaced below
                order = range(steps - 1, -1, -1) if d else range(steps)
                for t in order:
                    h, c = _rnn_step(mode, gi_all[t], h, c, w_hh, b_hh)
                    if w_hr is not None:
                        h = _linear(h, w_hr, None)
                    seq[t] = h
                hs.append(h)
                if c is not None:
                    cs.append(c)
                width = self.proj_size or self.hidden_size
                outs.append(_core.stack(seq, 0) if steps else layer_in.new_zeros(0, n, width))
            layer_in = outs[0] if dirs == 1 else _core.cat(outs, 2)
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_in = _core.dropout(layer_in, self.dropout, True)
        return layer_in, _core.stack(hs, 0), (_core.stack(cs, 0) if cs else None)

    def _zeros_state(self, n: int, like: Tensor, size: int) -> Tensor:
        d = 2 if self.bidirectional else 1
        return _core.zeros([self.num_layers * d, n, size], like.dtype).to(like.device)

    def _prepare(self, input: Tensor, hx):  # noqa: A002
        name = type(self).__name__
        if not isinstance(input, Tensor) or input.ndim not in (2, 3) or input.shape[-1] != self.input_size:
            got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
            order = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
            raise ShapeError(
                f"{name}: expected input {order} or (L, H_in) with H_in = {self.input_size}, got {got}"
            )
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)
        return x, batched

    def _state_in(self, h: Tensor | None, n: int, x: Tensor, batched: bool, what: str) -> Tensor:
        # h's width is the projection's where an LSTM has one; the cell state's is hidden_size
        size = (self.proj_size or self.hidden_size) if what != "c_0" else self.hidden_size
        if h is None:
            return self._zeros_state(n, x, size)
        h = h if batched else h.unsqueeze(1)
        want = (self.num_layers * (2 if self.bidirectional else 1), n, size)
        if tuple(h.shape) != want:
            raise ShapeError(f"{type(self).__name__}: {what} must have shape {want}, got {tuple(h.shape)}")
        return h

    def _out(self, y: Tensor, batched: bool) -> Tensor:
        if not batched:
            return y.squeeze(1)
        return y.transpose(0, 1) if self.batch_first else y

    def get_config(self) -> dict:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bias": self.bias,
            "batch_first": self.batch_first,
            "dropout": self.dropout,
            "bidirectional": self.bidirectional,
        }

    @classmethod
    def state_shapes(
        cls,
        input_size,
        hidden_size,
        num_layers=1,
        bias=True,
        batch_first=False,
        dropout=0.0,
        bidirectional=False,
        nonlinearity="tanh",
    ) -> dict[str, tuple[int, ...]]:
        """PyTorch's weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} (and
        `_reverse` with `bidirectional`)."""
        return cls._shapes(
            _size("input_size", input_size),
            _size("hidden_size", hidden_size),
            _size("num_layers", num_layers),
            bias,
            bidirectional,
        )

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s


class RNN(_RNNBase):
    """An Elman RNN, h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh) (or relu with
    `nonlinearity="relu"`), as `torch.nn.RNN`: returns (output, h_n)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.__dict__["_mode"] = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None):  # noqa: A002
        x, batched = self._prepare(input, hx)
        h0 = self._state_in(hx, x.shape[1], x, batched, "hx")
        y, h, _ = self._run(x, (h0, None))
        return self._out(y, batched), (h if batched else h.squeeze(1))

    def get_config(self) -> dict:
        return {**super().get_config(), "nonlinearity": self.nonlinearity}


class LSTM(_RNNBase):
    """Long short-term memory, as `torch.nn.LSTM` (gates input, forget, cell, output):
    `forward(input, (h_0, c_0))` returns (output, (h_n, c_n)). With `proj_size` > 0 the
    hidden state is projected to that width after each step (h_t = W_hr (o_t * tanh(c_t)),
    PyTorch's LSTMP): h_0, h_n and the output have width proj_size, c_0 and c_n
    hidden_size, and each layer and direction gets `weight_hr_l{k}` (proj_size,
    hidden_size)."""

    _mode = "LSTM"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
    ):
        if not isinstance(proj_size, int) or proj_size < 0:
            raise ArgumentError(f"LSTM: proj_size must be a non-negative int, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ArgumentError(
                f"LSTM: proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}"
            )
        self.__dict__["proj_size"] = proj_size
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):  # noqa: A002
        x, batched = self._prepare(input, hx)
        h_in, c_in = (None, None) if hx is None else hx
        h0 = self._state_in(h_in, x.shape[1], x, batched, "h_0")
        c0 = self._state_in(c_in, x.shape[1], x, batched, "c_0")
        y, h, c = self._run(x, (h0, c0))
        assert c is not None
        if not batched:
            h, c = h.squeeze(1), c.squeeze(1)
        return self._out(y, batched), (h, c)

    def get_config(self) -> dict:
        return {**super().get_config(), "proj_size": self.proj_size}

    @classmethod
    def state_shapes(cls, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                     bidirectional=False, proj_size=0, nonlinearity="tanh"):  # fmt: skip
        """As RNN's, with four gates' rows (and `weight_hr_l{k}` with a projection)."""
        return cls._shapes(
            _size("input_size", input_size),
            _size("hidden_size", hidden_size),
            _size("num_layers", num_layers),
            bias,
            bidirectional,
            int(proj_size),
        )


class GRU(_RNNBase):
    """Gated recurrent unit, as `torch.nn.GRU` (gates reset, update, new; n = tanh(W_in x +
    b_in + r (W_hn h + b_hn))): returns (output, h_n)."""

    _mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None):  # noqa: A002
        x, batched = self._prepare(input, hx)
        h0 = self._state_in(hx, x.shape[1], x, batched, "hx")
        y, h, _ = self._run(x, (h0, None))
        return self._out(y, batched), (h if batched else h.squeeze(1))


# ---------------------------------------------------------------------------- cells


class _CellBase(Module):
    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = _size("input_size", input_size), _size("hidden_size", hidden_size)
        self.bias = bool(bias)
        for key, shape in self._cell_shapes(self.input_size, self.hidden_size, self.bias).items():
            setattr(self, key, Parameter(_core.zeros(list(shape), None)))
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            _init.uniform_(p, -bound, bound)

    @classmethod
    def _cell_shapes(cls, input_size, hidden_size, bias) -> dict[str, tuple[int, ...]]:
        g = _GATES[cls._mode] * hidden_size
        out: dict[str, tuple[int, ...]] = {"weight_ih": (g, input_size), "weight_hh": (g, hidden_size)}
        if bias:
            out.update(bias_ih=(g,), bias_hh=(g,))
        return out

    def _step(self, x: Tensor, h: Tensor | None, c: Tensor | None):
        name = type(self).__name__
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ShapeError(
                f"{name}: expected input (N, {self.input_size}) or ({self.input_size},), got {tuple(x.shape)}"
            )
        batched = x.ndim == 2
        xb = x if batched else x.unsqueeze(0)
        zeros = _core.zeros([xb.shape[0], self.hidden_size], xb.dtype).to(xb.device)
        hb = zeros if h is None else (h if batched else h.unsqueeze(0))
        cb = None if self._mode != "LSTM" else (zeros if c is None else (c if batched else c.unsqueeze(0)))
        p = dict(self.named_parameters())
        gi = _linear(xb, p["weight_ih"], p.get("bias_ih"))
        h2, c2 = _rnn_step(self._mode, gi, hb, cb, p["weight_hh"], p.get("bias_hh"))
        if not batched:
            h2 = h2.squeeze(0)
            c2 = c2.squeeze(0) if c2 is not None else None
        return h2, c2

    def get_config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias}

    @classmethod
    def state_shapes(
        cls, input_size, hidden_size, bias=True, nonlinearity="tanh"
    ) -> dict[str, tuple[int, ...]]:
        """weight_ih, weight_hh (and bias_ih, bias_hh)."""
        return cls._cell_shapes(_size("input_size", input_size), _size("hidden_size", hidden_size), bias)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """One step of an Elman RNN (tanh or relu), as `torch.nn.RNNCell`."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.__dict__["_mode"] = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        return self._step(input, hx, None)[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "nonlinearity": self.nonlinearity}


class LSTMCell(_CellBase):
    """One LSTM step, as `torch.nn.LSTMCell`: returns (h', c')."""

    _mode = "LSTM"

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):  # noqa: A002
        h, c = (None, None) if hx is None else hx
        h2, c2 = self._step(input, h, c)
        return h2, c2


class GRUCell(_CellBase):
    """One GRU step, as `torch.nn.GRUCell`."""

    _mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        return self._step(input, hx, None)[0]
