"""Attention layers as PyTorch's: `MultiheadAttention`, `TransformerEncoderLayer` and
`TransformerEncoder`, with PyTorch's parameter names (`in_proj_weight`, `out_proj.weight`,
`self_attn.*`, `linear1`, `norm1`, ...) and initialization, so a PyTorch state dict loads
unchanged. Composed from ops on both devices."""

from __future__ import annotations

import copy
import math

from .. import _core
from .._core import ArgumentError, ShapeError, Tensor
from . import init as _init
from .conv import LayerNorm
from .layers import Dropout, Linear, ModuleList, _size
from .module import Module, Parameter


def _mask_bias(mask: Tensor | None, like: Tensor) -> Tensor | None:
    """An attention mask as an additive bias: a bool mask's True (not allowed) -> -inf; a
    float mask as it is."""
    if mask is None:
        return None
    if mask.dtype == _core.dtype.bool:
        zero = _core.full([], 0.0, like.dtype).to(like.device)
        return zero.expand(*mask.shape).masked_fill(mask.to(like.device), float("-inf"))
    return mask.to(like.device, like.dtype)


def _pad_keys(bias: Tensor, count: int) -> Tensor:
    """An additive mask over keys, with `count` unmasked (zero) keys appended."""
    if not count:
        return bias
    return _core.cat([bias, _core.zeros([*bias.shape[:-1], count], bias.dtype).to(bias.device)], -1)


class MultiheadAttention(Module):
    """Multi-head attention, as `torch.nn.MultiheadAttention`: softmax(q k^T / sqrt(d)) v per
    head, queries, keys and values projected by `in_proj_weight` (or `q/k/v_proj_weight`
    when kdim/vdim differ from embed_dim) and the heads joined by `out_proj`. Input (L, N, E)
    ((N, L, E) with `batch_first`, or (L, E) unbatched); returns (output, weights averaged
    over heads, or per head, or None without `need_weights`). `add_bias_kv` appends the
    learned `bias_k`/`bias_v` (1, 1, E) as one more key and value, `add_zero_attn` a zero
    key and value per head (the masks padded to match, as PyTorch pads them)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
    ):
        super().__init__()
        e, h = _size("embed_dim", embed_dim), _size("num_heads", num_heads)
        if e % h:
            raise ArgumentError(f"MultiheadAttention: embed_dim {e} must be divisible by num_heads {h}")
        if not 0.0 <= dropout <= 1.0:
            raise ArgumentError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = e, h, e // h
        self.kdim = e if kdim is None else _size("kdim", kdim)
        self.vdim = e if vdim is None else _size("vdim", vdim)
        self.dropout, self.batch_first, self.has_bias = float(dropout), bool(batch_first), bool(bias)
        self._same_dims = self.kdim == e and self.vdim == e
        if self._same_dims:
            self.in_proj_weight = Parameter(_core.zeros([3 * e, e], None))
            _init.xavier_uniform_(self.in_proj_weight)
        else:
            self.q_proj_weight = Parameter(_core.zeros([e, e], None))
            self.k_proj_weight = Parameter(_core.zeros([e, self.kdim], None))
            self.v_proj_weight = Parameter(_core.zeros([e, self.vdim], None))
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                _init.xavier_uniform_(w)
        if bias:
            self.in_proj_bias = Parameter(_core.zeros([3 * e], None))
        self.add_zero_attn = bool(add_zero_attn)
        self.bias_k: Tensor | None = None
        self.bias_v: Tensor | None = None
        if add_bias_kv:  # registered here: PyTorch's state-dict order (own parameters first)
            self.bias_k = Parameter(_core.zeros([1, 1, e], None))
            self.bias_v = Parameter(_core.zeros([1, 1, e], None))
            _init.xavier_normal_(self.bias_k)
            _init.xavier_normal_(self.bias_v)
        self.out_proj = Linear(e, e, bias=bias)
        if self.out_proj.bias is not None:
            _init.zeros(self.out_proj.bias)

    def _projections(self) -> tuple[Tensor, Tensor, Tensor]:
        p = dict(self.named_parameters(recurse=False))
        if self._same_dims:
            w = p["in_proj_weight"]
            e = self.embed_dim
            return w.narrow(0, 0, e), w.narrow(0, e, e), w.narrow(0, 2 * e, e)
        return p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ):
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(
                f"MultiheadAttention: query, key and value must all be 3-D (or 2-D unbatched), got "
                f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        tgt, n, e = query.shape
        src = key.shape[0]
        if e != self.embed_dim or key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ShapeError(
                f"MultiheadAttention: expected feature sizes {self.embed_dim}, {self.kdim}, {self.vdim}, got "
                f"{e}, {key.shape[-1]}, {value.shape[-1]}"
            )
        wq, wk, wv = self._projections()
        b = dict(self.named_parameters(recurse=False)).get("in_proj_bias")
        bq, bk, bv = (
            (None, None, None) if b is None else (b.narrow(0, 0, e), b.narrow(0, e, e), b.narrow(0, 2 * e, e))
        )
        h, d = self.num_heads, self.head_dim

        def heads(x: Tensor, extra: Tensor | None = None, keys: bool = True) -> Tensor:
            # (length, N, E) -> (N, heads, length, d), with add_bias_kv's row and
            # add_zero_attn's zeros appended along the length of keys and values
            if extra is not None:
                x = _core.cat([x, extra.expand(1, n, e)], 0)
            x = x.reshape(x.shape[0], n, h, d).permute(1, 2, 0, 3)
            if keys and self.add_zero_attn:
                x = _core.cat([x, _core.zeros([n, h, 1, d], x.dtype).to(x.device)], 2)
            return x

        q = heads(_core.linear(query, wq, bq), keys=False)
        k = heads(_core.linear(key, wk, bk), self.bias_k)
        v = heads(_core.linear(value, wv, bv), self.bias_v)
        appended = k.shape[2] - src  # keys no mask names: never masked
        scores = q.matmul(k.transpose(-2, -1)) * (1.0 / math.sqrt(d))  # (N, heads, L, S)
        if is_causal and attn_mask is None:
            causal = _core.from_numpy(__import__("numpy").triu(__import__("numpy").ones((tgt, src), bool), 1))
            attn_mask = causal
        bias = _mask_bias(attn_mask, scores)
        if bias is not None:
            if bias.ndim == 3:
                bias = bias.reshape(n, h, tgt, src)
            scores = scores + _pad_keys(bias, appended)
        pad = _mask_bias(key_padding_mask, scores)
        if pad is not None:
            scores = scores + _pad_keys(pad, appended).reshape(n, 1, 1, src + appended)
        weights = scores.softmax(-1)
        attn = weights
        if self.dropout and self.training:
            attn = _core.dropout(weights, self.dropout, True)
        out = attn.matmul(v).permute(2, 0, 1, 3).reshape(tgt, n, e)  # (L, N, E)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        w_out = weights.mean(1) if average_attn_weights else weights
        return out, (w_out if batched else w_out.squeeze(0))

    def get_config(self) -> dict:
        return {
            "embed_dim": self.embed_dim,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
            "bias": self.has_bias,
            "add_bias_kv": self.bias_k is not None,
            "add_zero_attn": self.add_zero_attn,
            "kdim": self.kdim,
            "vdim": self.vdim,
            "batch_first": self.batch_first,
        }

    @classmethod
    def state_shapes(
        cls,
        embed_dim,
        num_heads,
        dropout=0.0,
        bias=True,
        add_bias_kv=False,
        add_zero_attn=False,
        kdim=None,
        vdim=None,
        batch_first=False,
    ) -> dict[str, tuple[int, ...]]:
        """in_proj_weight (3E, E) (or q/k/v_proj_weight), in_proj_bias (3E,), out_proj."""
        e = _size("embed_dim", embed_dim)
        kd, vd = e if kdim is None else kdim, e if vdim is None else vdim
        out: dict[str, tuple[int, ...]] = {}
        if kd == e and vd == e:
            out["in_proj_weight"] = (3 * e, e)
        else:
            out.update(q_proj_weight=(e, e), k_proj_weight=(e, kd), v_proj_weight=(e, vd))
        if bias:
            out["in_proj_bias"] = (3 * e,)
        if add_bias_kv:
            out.update(bias_k=(1, 1, e), bias_v=(1, 1, e))
        out.update({f"out_proj.{k}": s for k, s in Linear.state_shapes(e, e, bias=bias).items()})
        return out

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


_ACTIVATIONS = ("relu", "gelu")


class _TransformerLayer(Module):
    """What the encoder and decoder layers share: self-attention (and, in a decoder,
    attention over the memory), the feed-forward block, the norms and dropouts, registered
    in PyTorch's order so the state-dict names and order are its."""

    multihead_attn: MultiheadAttention  # decoders only
    norm3: LayerNorm  # decoders only
    dropout3: Dropout  # decoders only

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int,
        dropout: float,
        activation: str,
        layer_norm_eps: float,
        batch_first: bool,
        norm_first: bool,
        bias: bool,
        decoder: bool,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ArgumentError(
                f"{type(self).__name__}: activation must be 'relu' or 'gelu' (a callable has no config), "
                f"got {activation!r}"
            )
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias=bias, batch_first=batch_first)
        if decoder:
            self.multihead_attn = MultiheadAttention(
                d_model, nhead, dropout, bias=bias, batch_first=batch_first
            )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        if decoder:
            self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if decoder:
            self.dropout3 = Dropout(dropout)
        self.activation, self.norm_first, self.batch_first = activation, bool(norm_first), bool(batch_first)
        self._decoder = decoder
        self._cfg = {
            "d_model": d_model,
            "nhead": nhead,
            "dim_feedforward": dim_feedforward,
            "dropout": dropout,
            "activation": activation,
            "layer_norm_eps": layer_norm_eps,
            "batch_first": batch_first,
            "norm_first": norm_first,
            "bias": bias,
        }

    def _ff(self, x: Tensor) -> Tensor:
        hidden = self.linear1(x)
        hidden = hidden.relu() if self.activation == "relu" else hidden.gelu()
        last = self.dropout3 if self._decoder else self.dropout2
        return last(self.linear2(self.dropout(hidden)))

    def get_config(self) -> dict:
        return dict(self._cfg)

    @staticmethod
    def _layer_shapes(d_model, nhead, dim_feedforward, bias, decoder: bool) -> dict[str, tuple[int, ...]]:
        attn = MultiheadAttention.state_shapes(d_model, nhead, bias=bias)
        parts = {"self_attn": attn, **({"multihead_attn": attn} if decoder else {})}
        parts["linear1"] = Linear.state_shapes(d_model, dim_feedforward, bias=bias)
        parts["linear2"] = Linear.state_shapes(dim_feedforward, d_model, bias=bias)
        for i in range(3 if decoder else 2):
            parts[f"norm{i + 1}"] = LayerNorm.state_shapes(d_model, bias=bias)
        return {f"{p}.{k}": s for p, d in parts.items() for k, s in d.items()}


class TransformerEncoderLayer(_TransformerLayer):
    """Self-attention then a feed-forward block, each with a residual connection and layer
    norm (after each, or before with `norm_first`), as `torch.nn.TransformerEncoderLayer`;
    `activation` "relu" or "gelu"."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
    ):
        super().__init__(
            d_model,
            nhead,
            dim_feedforward,
            dropout,
            activation,
            layer_norm_eps,
            batch_first,
            norm_first,
            bias,
            False,
        )

    def _sa(self, x: Tensor, mask, pad, causal: bool) -> Tensor:
        y = self.self_attn(x, x, x, pad, need_weights=False, attn_mask=mask, is_causal=causal)[0]
        return self.dropout1(y)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff(x))

    @classmethod
    def state_shapes(
        cls,
        d_model,
        nhead,
        dim_feedforward=2048,
        dropout=0.1,
        activation="relu",
        layer_norm_eps=1e-5,
        batch_first=False,
        norm_first=False,
        bias=True,
    ) -> dict[str, tuple[int, ...]]:
        """self_attn.*, linear1.*, linear2.*, norm1.*, norm2.*, as PyTorch's."""
        return cls._layer_shapes(d_model, nhead, dim_feedforward, bias, False)


class TransformerEncoder(Module):
    """A stack of `num_layers` copies of `encoder_layer` (independent parameters, named
    `layers.0`, ...), then `norm` if given, as `torch.nn.TransformerEncoder`."""

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ):
        super().__init__()
        del enable_nested_tensor, mask_check  # PyTorch's fast-path switches
        if not isinstance(encoder_layer, Module):
            raise TypeError(
                f"TransformerEncoder: encoder_layer must be a Module, got {type(encoder_layer).__name__}"
            )
        self.num_layers = _size("num_layers", num_layers)
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(self.num_layers)])
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, mask, src_key_padding_mask, bool(is_causal))
        return self.norm(x) if self.norm is not None else x

    def get_config(self) -> dict:
        return {"encoder_layer": self.layers[0], "num_layers": self.num_layers, "norm": self.norm}

    @classmethod
    def state_shapes(
        cls, encoder_layer, num_layers, norm=None, **_: object
    ) -> dict[str, tuple[int, ...]] | None:
        """layers.{i}.* for each copy of the layer's shapes, norm.* when given."""
        if encoder_layer is None:
            return None
        out = {f"layers.{i}.{k}": s for i in range(int(num_layers)) for k, s in encoder_layer.items()}
        if norm is not None:
            out.update({f"norm.{k}": s for k, s in norm.items()})
        return out


class TransformerDecoderLayer(_TransformerLayer):
    """Self-attention, attention over the encoder's `memory`, then a feed-forward block,
    each with a residual connection and layer norm (after each, or before with
    `norm_first`), as `torch.nn.TransformerDecoderLayer`."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
    ):
        super().__init__(
            d_model,
            nhead,
            dim_feedforward,
            dropout,
            activation,
            layer_norm_eps,
            batch_first,
            norm_first,
            bias,
            True,
        )

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        def sa(x: Tensor) -> Tensor:
            y = self.self_attn(
                x, x, x, tgt_key_padding_mask, need_weights=False, attn_mask=tgt_mask, is_causal=tgt_is_causal
            )[0]
            return self.dropout1(y)

        def mha(x: Tensor) -> Tensor:
            y = self.multihead_attn(
                x,
                memory,
                memory,
                memory_key_padding_mask,
                need_weights=False,
                attn_mask=memory_mask,
                is_causal=memory_is_causal,
            )[0]
            return self.dropout2(y)

        x = tgt
        if self.norm_first:
            x = x + sa(self.norm1(x))
            x = x + mha(self.norm2(x))
            return x + self._ff(self.norm3(x))
        x = self.norm1(x + sa(x))
        x = self.norm2(x + mha(x))
        return self.norm3(x + self._ff(x))

    @classmethod
    def state_shapes(
        cls,
        d_model,
        nhead,
        dim_feedforward=2048,
        dropout=0.1,
        activation="relu",
        layer_norm_eps=1e-5,
        batch_first=False,
        norm_first=False,
        bias=True,
    ) -> dict[str, tuple[int, ...]]:
        """self_attn.*, multihead_attn.*, linear1/2.*, norm1/2/3.*, as PyTorch's."""
        return cls._layer_shapes(d_model, nhead, dim_feedforward, bias, True)


class TransformerDecoder(Module):
    """A stack of `num_layers` copies of `decoder_layer` (`layers.0`, ...), then `norm` if
    given, as `torch.nn.TransformerDecoder`."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None):
        super().__init__()
        if not isinstance(decoder_layer, Module):
            got = type(decoder_layer).__name__
            raise TypeError(f"TransformerDecoder: decoder_layer must be a Module, got {got}")
        self.num_layers = _size("num_layers", num_layers)
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(self.num_layers)])
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(
                x,
                memory,
                tgt_mask,
                memory_mask,
                tgt_key_padding_mask,
                memory_key_padding_mask,
                bool(tgt_is_causal),
                memory_is_causal,
            )
        return self.norm(x) if self.norm is not None else x

    def get_config(self) -> dict:
        return {"decoder_layer": self.layers[0], "num_layers": self.num_layers, "norm": self.norm}

    @classmethod
    def state_shapes(cls, decoder_layer, num_layers, norm=None) -> dict[str, tuple[int, ...]] | None:
        """layers.{i}.* for each copy of the layer's shapes, norm.* when given."""
        return TransformerEncoder.state_shapes(decoder_layer, num_layers, norm)


class Transformer(Module):
    """An encoder-decoder Transformer, as `torch.nn.Transformer`: `encoder` (layers and a
    final LayerNorm) and `decoder` likewise; every weight matrix Xavier-uniform initialized,
    as PyTorch's. `generate_square_subsequent_mask(n)` gives the causal float mask.
    `custom_encoder`/`custom_decoder` are not supported."""

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str = "relu",
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        if custom_encoder is not None or custom_decoder is not None:
            raise NotImplementedError("Transformer: custom_encoder and custom_decoder are not supported")
        shared = dict(
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            batch_first=batch_first,
            norm_first=norm_first,
            bias=bias,
        )
        enc = TransformerEncoderLayer(d_model, nhead, **shared)  # type: ignore[arg-type]
        dec = TransformerDecoderLayer(d_model, nhead, **shared)  # type: ignore[arg-type]
        self.encoder = TransformerEncoder(
            enc, num_encoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        )
        self.decoder = TransformerDecoder(
            dec, num_decoder_layers, LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        )
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
        self._cfg = {
            "d_model": d_model,
            "nhead": nhead,
            "num_encoder_layers": num_encoder_layers,
            "num_decoder_layers": num_decoder_layers,
            **shared,
        }
        for p in self.parameters():
            if p.ndim > 1:
                _init.xavier_uniform_(p)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        memory = self.encoder(src, src_mask, src_key_padding_mask, src_is_causal)
        return self.decoder(
            tgt,
            memory,
            tgt_mask,
            memory_mask,
            tgt_key_padding_mask,
            memory_key_padding_mask,
            tgt_is_causal,
            memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """(sz, sz) float mask: -inf above the diagonal, 0 elsewhere."""
        import numpy as np  # noqa: PLC0415

        m = _core.from_numpy(np.triu(np.full((sz, sz), -np.inf, np.float32), 1))
        m = m if dtype is None else m.to(dtype)
        return m if device is None else m.to(device)

    def get_config(self) -> dict:
        return dict(self._cfg)

    @classmethod
    def state_shapes(
        cls,
        d_model=512,
        nhead=8,
        num_encoder_layers=6,
        num_decoder_layers=6,
        dim_feedforward=2048,
        dropout=0.1,
        activation="relu",
        layer_norm_eps=1e-5,
        batch_first=False,
        norm_first=False,
        bias=True,
        **_: object,
    ) -> dict[str, tuple[int, ...]]:
        """encoder.* and decoder.*, as PyTorch's."""
        enc = TransformerEncoderLayer.state_shapes(d_model, nhead, dim_feedforward, bias=bias)
        dec = TransformerDecoderLayer.state_shapes(d_model, nhead, dim_feedforward, bias=bias)
        norm = LayerNorm.state_shapes(d_model, bias=bias)
        out = {
            f"encoder.{k}": s
            for k, s in (TransformerEncoder.state_shapes(enc, num_encoder_layers, norm) or {}).items()
        }
        out.update(
            {
                f"decoder.{k}": s
                for k, s in (TransformerEncoder.state_shapes(dec, num_decoder_layers, norm) or {}).items()
            }
        )
        return out
