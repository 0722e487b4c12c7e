"""Convolution, pooling, BatchNorm2d, Dropout2d, LayerNorm and Embedding layers, as
PyTorch's (`ferrograd.nn`): the modules around `ferrograd.nn.spatial`'s functional forms."""

from __future__ import annotations

from typing import Any

from .. import _core
from .._core import ShapeError, Tensor
from ..autograd import no_grad
from . import init as _init
from . import spatial as S
from .layers import BatchNorm1d, _size
from .module import Module, Parameter


def _ints(v: Any, n: int) -> tuple[int, ...]:
    return (int(v),) * n if isinstance(v, int) else tuple(int(i) for i in v)


def _check_channels(name: str, in_channels: int, out_channels: int, groups: int) -> None:
    """ValueError unless both channel counts are positive and `groups` divides them."""
    if in_channels <= 0 or out_channels <= 0:
        raise ValueError(f"{name}: channels must be positive, got ({in_channels}, {out_channels})")
    if groups <= 0 or in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{name}: groups {groups} must divide in_channels {in_channels} and out_channels {out_channels}"
        )


def _conv_parameters(m: Any, shape: list[int], out_channels: int, bias: bool) -> None:
    """A convolution's weight of `shape` and bias (out_channels,), PyTorch's default init
    (U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan-in from dim 1 and the kernel, for both)."""
    m.weight = Parameter(_core.zeros(shape, None))
    m.bias = Parameter(_core.zeros([out_channels], None)) if bias else None
    _init.torch_linear_default(m.weight, m.bias)


def _conv_shapes(
    in_channels, out_channels, groups, kernel_size, dims: int, bias: bool, transposed: bool
) -> dict[str, tuple[int, ...]]:
    """weight (out, in / groups, *kernel), or (in, out / groups, *kernel) when `transposed`,
    and with `bias`, bias (out,): each size checked as a saved config's must be."""
    i, o = _size("in_channels", in_channels), _size("out_channels", out_channels)
    g = _size("groups", groups)
    k = tuple(_size("kernel_size", v) for v in _ints(kernel_size, dims))
    first, second = (i, o) if transposed else (o, i)
    return {"weight": (first, second // g, *k), **({"bias": (o,)} if bias else {})}


def _conv_repr(m: Any, extras: list[tuple[str, Any, Any]]) -> str:
    """in, out, kernel and stride, then each (name, value, default) that is not its default."""
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, stride={m.stride}"
    for name, value, default in extras:
        if value != default:
            s += f", {name}={value}"
    return s + (", bias=False" if m.bias is None else "")


class _ConvNd(Module):
    """The shared part of Conv1d and Conv2d: weight (out, in / groups, *kernel), bias (out,),
    PyTorch's default init (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both)."""

    _dims = 2
    _spatial = "H, W"  # the input's dims after the channels, for messages
    weight: Tensor
    bias: Tensor | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        name, n = type(self).__name__, self._dims
        _check_channels(name, in_channels, out_channels, groups)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(
                f"{name}: padding_mode must be zeros, reflect, replicate or circular, got {padding_mode!r}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _ints(kernel_size, n)
        self.stride, self.dilation = _ints(stride, n), _ints(dilation, n)
        self.padding = padding if isinstance(padding, str) else _ints(padding, n)
        if isinstance(self.padding, str) and self.padding not in ("valid", "same"):
            raise ValueError(f"{name}: padding must be ints, 'valid' or 'same', got {padding!r}")
        self.padding_mode = padding_mode
        _conv_parameters(self, [out_channels, in_channels // groups, *self.kernel_size], out_channels, bias)

    def _padded(self, x: Tensor) -> tuple[Tensor, Any]:
        """The input and the padding left to the convolution (non-zero modes pad here)."""
        if self.padding_mode == "zeros" or isinstance(self.padding, str):
            return x, self.padding
        amounts = []
        for p in reversed(self.padding):
            amounts += [p, p]
        return S.pad(x, amounts, mode=self.padding_mode), 0

    @staticmethod
    def _conv(x, weight, bias, stride, padding, dilation, groups) -> Tensor:
        raise NotImplementedError  # each subclass names its functional form

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim == self._dims + 1 and x.shape[0] == self.in_channels:  # one sample, as PyTorch takes it
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.ndim != self._dims + 2 or x.shape[1] != self.in_channels:
            c, dims, got = self.in_channels, self._spatial, tuple(x.shape)
            raise ShapeError(
                f"{type(self).__name__}: expected input (N, {c}, {dims}) or ({c}, {dims}), got shape {got}"
            )
        x, p = self._padded(x)
        return self._conv(x, self.weight, self.bias, self.stride, p, self.dilation, self.groups)

    def get_config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "bias": self.bias is not None,
            "padding_mode": self.padding_mode,
        }

    @classmethod
    def state_shapes(
        cls,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
    ) -> dict[str, tuple[int, ...]]:
        """weight (out, in / groups, *kernel) and, with `bias`, bias (out,)."""
        return _conv_shapes(in_channels, out_channels, groups, kernel_size, cls._dims, bias, False)

    def extra_repr(self) -> str:
        padding = 0 if self.padding == (0,) * self._dims else self.padding
        return _conv_repr(
            self,
            [
                ("padding", padding, 0),
                ("dilation", self.dilation, (1,) * self._dims),
                ("groups", self.groups, 1),
            ],
        )


class Conv2d(_ConvNd):
    """2-D convolution of (N, C_in, H, W), as `torch.nn.Conv2d`: kernel, stride, padding (ints
    or "valid"/"same"), dilation, groups (depthwise: groups = in_channels), bias, and
    padding_mode ("zeros", "reflect", "replicate", "circular")."""

    _dims = 2
    _conv = staticmethod(S.conv2d)


class Conv1d(_ConvNd):
    """1-D convolution of (N, C_in, L), as `torch.nn.Conv1d`."""

    _dims = 1
    _spatial = "L"
    _conv = staticmethod(S.conv1d)


class Conv3d(_ConvNd):
    """3-D convolution of (N, C_in, D, H, W), as `torch.nn.Conv3d` (see `functional.conv3d`):
    kernel, stride, padding (ints or "valid"/"same"), dilation, groups, bias, and
    padding_mode ("zeros", "reflect", "replicate", "circular")."""

    _dims = 3
    _spatial = "D, H, W"
    _conv = staticmethod(S.conv3d)


class ConvTranspose2d(Module):
    """The transposed 2-D convolution of (N, C_in, H, W), as `torch.nn.ConvTranspose2d`: the
    gradient of a Conv2d with respect to its input, so a learned upsampling. Weight (in,
    out / groups, KH, KW), bias (out,), PyTorch's default init; stride, padding (zeros),
    output_padding (which of the sizes a strided Conv2d maps to one size to produce),
    groups, dilation. ``forward(x, output_size)`` picks output_padding to reach that size,
    as PyTorch's. Output H = (H - 1) stride - 2 padding + dilation (KH - 1) +
    output_padding + 1."""

    weight: Tensor
    bias: Tensor | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        _check_channels("ConvTranspose2d", in_channels, out_channels, groups)
        if padding_mode != "zeros":  # PyTorch's ConvTranspose2d takes only zeros too
            raise ValueError(f"ConvTranspose2d: only padding_mode 'zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _ints(kernel_size, 2)
        self.stride, self.padding = _ints(stride, 2), _ints(padding, 2)
        self.output_padding, self.dilation = _ints(output_padding, 2), _ints(dilation, 2)
        if any(o >= max(s, d) for o, s, d in zip(self.output_padding, self.stride, self.dilation)):
            raise ValueError(
                f"ConvTranspose2d: output_padding {self.output_padding} must be smaller than stride "
                f"{self.stride} or dilation {self.dilation}"
            )
        self.padding_mode = padding_mode
        _conv_parameters(self, [in_channels, out_channels // groups, *self.kernel_size], out_channels, bias)

    def _output_padding(self, x: Tensor, output_size) -> tuple[int, ...]:
        """The output_padding that makes the output `output_size` ((H, W), or with N and C
        in front), as PyTorch's; ValueError where no valid padding reaches it."""
        if output_size is None:
            return self.output_padding
        size = [int(v) for v in output_size][-2:]
        if len(size) != 2:
            raise ValueError(f"ConvTranspose2d: output_size must end with (H, W), got {output_size!r}")
        pads = []
        for d in range(2):
            least = (
                (x.shape[2 + d] - 1) * self.stride[d]
                - 2 * self.padding[d]
                + self.dilation[d] * (self.kernel_size[d] - 1)
                + 1
            )
            extra = size[d] - least
            if not 0 <= extra < max(self.stride[d], self.dilation[d]):
                top = least + max(self.stride[d], self.dilation[d]) - 1
                raise ValueError(
                    f"ConvTranspose2d: output_size {tuple(size)} is not reachable from input "
                    f"{tuple(x.shape)}: dim {d} must be in [{least}, {top}]"
                )
            pads.append(extra)
        return tuple(pads)

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        if x.ndim == 3 and x.shape[0] == self.in_channels:  # one sample
            size = None if output_size is None else [1, *list(output_size)]
            return self.forward(x.unsqueeze(0), size).squeeze(0)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"ConvTranspose2d: expected input (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}"
            )
        op = self._output_padding(x, output_size)
        return S.conv_transpose2d(
            x, self.weight, self.bias, self.stride, self.padding, op, self.groups, self.dilation
        )

    def get_config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "output_padding": list(self.output_padding),
            "groups": self.groups,
            "bias": self.bias is not None,
            "dilation": list(self.dilation),
            "padding_mode": self.padding_mode,
        }

    @classmethod
    def state_shapes(
        cls,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups=1,
        bias=True,
        dilation=1,
        padding_mode="zeros",
    ) -> dict[str, tuple[int, ...]]:
        """weight (in, out / groups, *kernel) and, with `bias`, bias (out,)."""
        return _conv_shapes(in_channels, out_channels, groups, kernel_size, 2, bias, True)

    def extra_repr(self) -> str:
        return _conv_repr(
            self,
            [
                ("padding", self.padding, (0, 0)),
                ("output_padding", self.output_padding, (0, 0)),
                ("dilation", self.dilation, (1, 1)),
                ("groups", self.groups, 1),
            ],
        )


class _Pool(Module):
    _dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False, **extra):
        super().__init__()
        n = self._dims
        self.kernel_size = _ints(kernel_size, n)
        self.stride = self.kernel_size if stride is None else _ints(stride, n)
        self.padding, self.dilation, self.ceil_mode = _ints(padding, n), _ints(dilation, n), ceil_mode
        for k, v in extra.items():
            setattr(self, k, v)

    def get_config(self) -> dict:
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "ceil_mode": self.ceil_mode,
        }

    @classmethod
    def state_shapes(cls, **config) -> dict[str, tuple[int, ...]]:
        """None: pooling has no state."""
        return {}

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool):
    """The maximum of each window of (N, C, H, W), as `torch.nn.MaxPool2d` (stride defaults
    to the kernel size); with `return_indices`, (values, flat input indices)."""

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        dilation=1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.return_indices = bool(return_indices)

    def forward(self, x: Tensor):
        return S.max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )

    def get_config(self) -> dict:
        return {**super().get_config(), "return_indices": self.return_indices}


class MaxPool1d(MaxPool2d):
    """The maximum of each window of (N, C, L), as `torch.nn.MaxPool1d`."""

    _dims = 1

    def forward(self, x: Tensor):
        return S.max_pool1d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices
        )


class MaxUnpool2d(Module):
    """MaxPool2d's partial inverse, as `torch.nn.MaxUnpool2d`: `forward(x, indices,
    output_size=None)` places each value at its index in a zero tensor."""

    _dims = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        n = self._dims
        self.kernel_size = _ints(kernel_size, n)
        self.stride = self.kernel_size if stride is None else _ints(stride, n)
        self.padding = _ints(padding, n)

    def forward(self, x: Tensor, indices: Tensor, output_size=None) -> Tensor:
        if self._dims == 1:
            return S.max_unpool1d(
                x, indices, self.kernel_size[0], self.stride[0], self.padding[0], output_size
            )
        return S.max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding, output_size)

    def get_config(self) -> dict:
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
        }

    @classmethod
    def state_shapes(cls, **config) -> dict[str, tuple[int, ...]]:
        """None: unpooling has no state."""
        return {}

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(MaxUnpool2d):
    """`MaxUnpool2d` over (N, C, L), as `torch.nn.MaxUnpool1d`."""

    _dims = 1


class AvgPool2d(_Pool):
    """The mean of each window of (N, C, H, W), as `torch.nn.AvgPool2d`."""

    count_include_pad: bool

    def __init__(
        self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True
    ):
        super().__init__(kernel_size, stride, padding, 1, ceil_mode, count_include_pad=count_include_pad)

    def forward(self, x: Tensor) -> Tensor:
        return S.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.pop("dilation")
        return {**cfg, "count_include_pad": self.count_include_pad}


class AvgPool1d(AvgPool2d):
    """The mean of each window of (N, C, L), as `torch.nn.AvgPool1d`."""

    _dims = 1

    def forward(self, x: Tensor) -> Tensor:
        return S.avg_pool1d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad
        )


class AdaptiveAvgPool2d(Module):
    """Averages (N, C, H, W) down to `output_size`, as `torch.nn.AdaptiveAvgPool2d`."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return S.adaptive_avg_pool2d(x, self.output_size)

    def get_config(self) -> dict:
        o = self.output_size
        return {"output_size": o if isinstance(o, int) or o is None else list(o)}

    @classmethod
    def state_shapes(cls, **config) -> dict[str, tuple[int, ...]]:
        """None: pooling has no state."""
        return {}

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class BatchNorm2d(BatchNorm1d):
    """Batch normalization of (N, C, H, W) per channel over N, H and W, as
    `torch.nn.BatchNorm2d` (the same parameters, buffers and momentum as BatchNorm1d)."""

    _input_ranks = (4,)


class BatchNorm3d(BatchNorm1d):
    """Batch normalization of (N, C, D, H, W) per channel over N, D, H and W, as
    `torch.nn.BatchNorm3d` (the same parameters, buffers and momentum as BatchNorm1d)."""

    _input_ranks = (5,)


class Dropout2d(Module):
    """Zeroes whole channels with probability p during training, as `torch.nn.Dropout2d`."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        return S.dropout2d(x, self.p, self.training)

    def get_config(self) -> dict:
        return {"p": self.p, "inplace": self.inplace}

    @classmethod
    def state_shapes(cls, **config) -> dict[str, tuple[int, ...]]:
        """None: dropout has no state."""
        return {}

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm(Module):
    """Normalization over the last dims (`normalized_shape`) of each sample, as
    `torch.nn.LayerNorm`: (x - mean) / sqrt(var + eps) with the biased variance, then an
    elementwise weight and bias of that shape (with `elementwise_affine`; `bias=False`
    drops the bias)."""

    def __init__(
        self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True
    ):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        if not shape or any(not isinstance(d, int) or d <= 0 for d in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got {normalized_shape!r}")
        self.normalized_shape, self.eps, self.elementwise_affine = shape, eps, elementwise_affine
        self.weight = Parameter(_core.full(list(shape), 1.0, None)) if elementwise_affine else None
        self.bias = Parameter(_core.zeros(list(shape), None)) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return S.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def get_config(self) -> dict:
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
            "bias": self.bias is not None,
        }

    @classmethod
    def state_shapes(cls, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        """weight and bias of `normalized_shape` (with `elementwise_affine`)."""
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        shape = tuple(_size("normalized_shape", d) for d in shape)
        out = {"weight": shape} if elementwise_affine else {}
        return {**out, **({"bias": shape} if elementwise_affine and bias else {})}

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class Embedding(Module):
    """A lookup table of `num_embeddings` vectors of size `embedding_dim`, as
    `torch.nn.Embedding`: int64 indices of any shape give vectors of shape (*, dim). Init
    N(0, 1); the `padding_idx` row is zero and gets no gradient."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        n, d = _size("num_embeddings", num_embeddings), _size("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -n <= padding_idx < n:
                raise ValueError(f"Embedding: padding_idx must be in [-{n}, {n}), got {padding_idx}")
            padding_idx %= n
        self.num_embeddings, self.embedding_dim, self.padding_idx = n, d, padding_idx
        self.weight = Parameter(_core.randn([n, d], None))
        if padding_idx is not None:
            with_no_grad_zero_row(self.weight, padding_idx)

    def forward(self, idx: Tensor) -> Tensor:
        return S.embedding(idx, self.weight, self.padding_idx)

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding whose table is a copy of the 2-D `embeddings` (rows: the vectors),
        trained unless `freeze`, as `torch.nn.Embedding.from_pretrained`. The `padding_idx`
        row keeps its values and gets no gradient. `max_norm`, `scale_grad_by_freq` and
        `sparse` are not supported (NotImplementedError when set)."""
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            got = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else type(embeddings).__name__
            raise ShapeError(f"Embedding.from_pretrained: expected a 2-D tensor of vectors, got {got}")
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError(
                "Embedding.from_pretrained: max_norm, scale_grad_by_freq and sparse are not supported"
            )
        del norm_type  # only used with max_norm
        n, d = embeddings.shape
        m = cls(n, d, padding_idx)
        m.weight = Parameter(embeddings.detach().clone())  # its dtype and device
        m.weight.requires_grad_(not freeze)
        return m

    def get_config(self) -> dict:
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "padding_idx": self.padding_idx,
        }

    @classmethod
    def state_shapes(cls, num_embeddings, embedding_dim, padding_idx=None):
        """weight (num_embeddings, embedding_dim)."""
        return {"weight": (_size("num_embeddings", num_embeddings), _size("embedding_dim", embedding_dim))}

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class EmbeddingBag(Module):
    """Bags of embedding rows reduced to one vector each, as `torch.nn.EmbeddingBag`:
    `forward(input, offsets=None, per_sample_weights=None)` with a (B, L) input or a 1-D
    input and offsets, mode "sum", "mean" (the default) or "max" (see
    `functional.embedding_bag`). Init N(0, 1); the `padding_idx` row is zero, left out of
    its bags and gets no gradient. `max_norm`, `scale_grad_by_freq` and `sparse` are not
    supported (NotImplementedError when set)."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Tensor | None = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ):
        super().__init__()
        n, d = _size("num_embeddings", num_embeddings), _size("embedding_dim", embedding_dim)
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError(
                "EmbeddingBag: max_norm, scale_grad_by_freq and sparse are not supported"
            )
        del norm_type  # only used with max_norm
        if padding_idx is not None:
            if not -n <= padding_idx < n:
                raise ValueError(f"EmbeddingBag: padding_idx must be in [-{n}, {n}), got {padding_idx}")
            padding_idx %= n
        self.num_embeddings, self.embedding_dim, self.padding_idx = n, d, padding_idx
        self.mode, self.include_last_offset = mode, include_last_offset
        if _weight is not None:
            if tuple(_weight.shape) != (n, d):
                raise ShapeError(
                    f"EmbeddingBag: _weight must have shape ({n}, {d}), got {tuple(_weight.shape)}"
                )
            self.weight = Parameter(_weight.detach().clone())
        else:
            self.weight = Parameter(_core.randn([n, d], None))
            if padding_idx is not None:
                with_no_grad_zero_row(self.weight, padding_idx)

    def forward(
        self, input: Tensor, offsets: Tensor | None = None, per_sample_weights: Tensor | None = None
    ) -> Tensor:  # noqa: A002
        return S.embedding_bag(
            input,
            self.weight,
            offsets,
            mode=self.mode,
            per_sample_weights=per_sample_weights,
            include_last_offset=self.include_last_offset,
            padding_idx=self.padding_idx,
        )

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
    ) -> EmbeddingBag:
        """An EmbeddingBag whose table is a copy of the 2-D `embeddings`, trained unless
        `freeze`, as `torch.nn.EmbeddingBag.from_pretrained`."""
        if not isinstance(embeddings, Tensor) or embeddings.ndim != 2:
            got = tuple(embeddings.shape) if isinstance(embeddings, Tensor) else type(embeddings).__name__
            raise ShapeError(f"EmbeddingBag.from_pretrained: expected a 2-D tensor of vectors, got {got}")
        n, d = embeddings.shape
        m = cls(
            n,
            d,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            mode,
            sparse,
            embeddings,
            include_last_offset,
            padding_idx,
        )
        m.weight.requires_grad_(not freeze)
        return m

    def get_config(self) -> dict:
        return {
            "num_embeddings": self.num_embeddings,
            "embedding_dim": self.embedding_dim,
            "mode": self.mode,
            "include_last_offset": self.include_last_offset,
            "padding_idx": self.padding_idx,
        }

    @classmethod
    def state_shapes(
        cls, num_embeddings, embedding_dim, mode="mean", include_last_offset=False, padding_idx=None
    ):
        """weight (num_embeddings, embedding_dim)."""
        return {"weight": (_size("num_embeddings", num_embeddings), _size("embedding_dim", embedding_dim))}

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


def with_no_grad_zero_row(w: Tensor, row: int) -> None:
    """Zeroes row `row` of `w` in place, outside the graph."""
    with no_grad():
        w[row] = 0.0
