"""Smaller layers PyTorch scripts use, each composed from ops that run on both devices:
the shrink and gated activations (`Softmin`, `GLU`, `Threshold`, `Hardshrink`,
`Softshrink`, `Tanhshrink`, `PReLU`), distances (`CosineSimilarity`, `PairwiseDistance`),
padding (`ZeroPad1d/2d`, `ConstantPad1d/2d`, `ReflectionPad1d/2d`, `ReplicationPad1d/2d`,
`CircularPad1d/2d`), resizing (`Upsample`, `UpsamplingNearest2d`, `UpsamplingBilinear2d`,
`PixelShuffle`, `PixelUnshuffle`), normalization per group or instance (`GroupNorm`,
`InstanceNorm1d/2d`), `AdaptiveAvgPool1d`, `Dropout1d`, and their functional forms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import _core
from .._core import ArgumentError, OutOfRangeError, ShapeError, Tensor
from ..autograd import no_grad
from . import spatial as S
from .layers import _Activation, _AlongDim, _size
from .module import Module, Parameter

# ---------------------------------------------------------------------------- functional


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """The cosine of the angle between x1 and x2 along `dim` (they broadcast), as
    `torch.nn.functional.cosine_similarity`: each normalized by max(its norm, eps), then
    their dot product, so a zero vector gives 0."""
    shape = tuple(np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape)))
    if not shape:
        raise ShapeError("cosine_similarity: expected tensors with at least one dim, got 0-d ones")
    d = dim + len(shape) if dim < 0 else dim
    if not 0 <= d < len(shape):
        raise OutOfRangeError(f"cosine_similarity: dim {dim} is out of range for shape {shape}")
    a, b = x1.expand(*shape), x2.expand(*shape)
    na = a.norm(2, d, keepdim=True).clamp(min=eps)
    nb = b.norm(2, d, keepdim=True).clamp(min=eps)
    return ((a / na) * (b / nb)).sum(d)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """The p-norm of x1 - x2 + eps along the last dim (they broadcast), as
    `torch.nn.functional.pairwise_distance`."""
    if x1.ndim == 0 and x2.ndim == 0:
        raise ShapeError("pairwise_distance: expected tensors with at least one dim, got 0-d ones")
    return (x1 - x2 + eps).norm(p, -1, keepdim=keepdim)


def glu(input: Tensor, dim: int = -1) -> Tensor:  # noqa: A002  (PyTorch's names)
    """a * sigmoid(b), a and b the two halves of `input` along `dim`, as
    `torch.nn.functional.glu`."""
    d = dim + input.ndim if dim < 0 else dim
    if input.ndim == 0 or not 0 <= d < input.ndim or input.shape[d] % 2:
        raise ShapeError(f"glu: dim {dim} of shape {tuple(input.shape)} must exist and have an even size")
    a, b = input.chunk(2, d)
    return a * b.sigmoid()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > threshold, else `value`, as `torch.nn.functional.threshold`."""
    del inplace  # computed out of place, as the activations
    return input.masked_fill(~(input > threshold), value)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """x where |x| > lambd, else 0, as `torch.nn.functional.hardshrink`."""
    return input.masked_fill(~(input.abs() > lambd), 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:  # noqa: A002
    """x - lambd above lambd, x + lambd below -lambd, else 0, as
    `torch.nn.functional.softshrink` (lambd >= 0)."""
    if lambd < 0:
        raise ArgumentError(f"softshrink: lambd must be >= 0, got {lambd}")
    return (input - lambd).relu() - (-input - lambd).relu()


def tanhshrink(input: Tensor) -> Tensor:  # noqa: A002
    """x - tanh(x), as `torch.nn.functional.tanhshrink`."""
    return input - input.tanh()


def prelu(input: Tensor, weight: Tensor) -> Tensor:  # noqa: A002
    """x where x >= 0, else weight * x, `weight` one slope or one per channel (dim 1), as
    `torch.nn.functional.prelu`."""
    w = weight
    if weight.numel() != 1:
        c = input.shape[1] if input.ndim >= 2 else 1
        if weight.ndim != 1 or weight.numel() != c:
            raise ShapeError(
                f"prelu: weight of shape {tuple(weight.shape)} does not fit the {c} channels of "
                f"input {tuple(input.shape)}"
            )
        w = weight.reshape(1, c, *([1] * (input.ndim - 2)))
    elif weight.ndim:
        w = weight.reshape(())
    return _core.where(input >= 0, input, w * input)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:  # noqa: A002
    """(*, C r^2, H, W) -> (*, C, H r, W r), as `torch.nn.functional.pixel_shuffle`."""
    r = int(upscale_factor)
    if input.ndim < 3 or r <= 0 or input.shape[-3] % (r * r):
        raise ShapeError(
            f"pixel_shuffle: expected (*, C * {r}^2, H, W) with {r} >= 1, got {tuple(input.shape)}"
        )
    *lead, c, h, w = input.shape
    oc = c // (r * r)
    x = input.reshape(*lead, oc, r, r, h, w)
    k = len(lead)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, oc, h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:  # noqa: A002
    """(*, C, H r, W r) -> (*, C r^2, H, W), as `torch.nn.functional.pixel_unshuffle`."""
    r = int(downscale_factor)
    if input.ndim < 3 or r <= 0 or input.shape[-1] % r or input.shape[-2] % r:
        raise ShapeError(
            f"pixel_unshuffle: expected (*, C, H * {r}, W * {r}) with {r} >= 1, got {tuple(input.shape)}"
        )
    *lead, c, hr, wr = input.shape
    h, w = hr // r, wr // r
    x = input.reshape(*lead, c, h, r, w, r)
    k = len(lead)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h, w)


def group_norm(
    input: Tensor,  # noqa: A002
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalizes (N, C, *) over each group of C / num_groups channels and the other dims,
    with the biased variance, then the per-channel `weight` and `bias`, as
    `torch.nn.functional.group_norm`."""
    if input.ndim < 2 or num_groups < 1 or input.shape[1] % num_groups:
        raise ShapeError(
            f"group_norm: expected (N, C, *) with C divisible by num_groups={num_groups}, "
            f"got {tuple(input.shape)}"
        )
    n, c = input.shape[0], input.shape[1]
    g = input.reshape(n, num_groups, -1)
    mean = g.mean(-1, keepdim=True)
    d = g - mean
    var = (d * d).mean(-1, keepdim=True)
    y = (d * (var + eps).rsqrt()).reshape(*input.shape)
    view = [1, c] + [1] * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(*view)
    if bias is not None:
        y = y + bias.reshape(*view)
    return y


def instance_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalizes each sample's channels of (N, C, *) over the other dims, as
    `torch.nn.functional.instance_norm`: with `use_input_stats` each instance's statistics
    (the running ones, when given, move toward their mean over the batch), else the running
    statistics; then the per-channel `weight` and `bias`."""
    if input.ndim < 3:
        raise ShapeError(f"instance_norm: expected (N, C, *) input, got shape {tuple(input.shape)}")
    n, c = input.shape[0], input.shape[1]
    rm = None if running_mean is None else running_mean.repeat(n)
    rv = None if running_var is None else running_var.repeat(n)
    flat = input.reshape(1, n * c, *input.shape[2:])
    y = S.batch_norm(flat, rm, rv, None, None, use_input_stats, momentum, eps).reshape(*input.shape)
    if use_input_stats and running_mean is not None and rm is not None:
        with no_grad():
            running_mean.copy_(rm.reshape(n, c).mean(0))
    if use_input_stats and running_var is not None and rv is not None:
        with no_grad():
            running_var.copy_(rv.reshape(n, c).mean(0))
    view = [1, c] + [1] * (input.ndim - 2)
    if weight is not None:
        y = y * weight.reshape(*view)
    if bias is not None:
        y = y + bias.reshape(*view)
    return y


def adaptive_avg_pool1d(input: Tensor, output_size: int) -> Tensor:  # noqa: A002
    """Averages (N, C, L) or (C, L) over `output_size` windows [floor(i L / n), ceil((i + 1)
    L / n)), as `torch.nn.functional.adaptive_avg_pool1d`."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"adaptive_avg_pool1d: expected (N, C, L) or (C, L), got {tuple(input.shape)}")
    out_size = output_size if isinstance(output_size, int) else tuple(output_size)[0]
    return S.adaptive_avg_pool2d(input.unsqueeze(-2), (1, out_size)).squeeze(-2)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zeroes whole channels of (N, C, L) or (C, L) with probability p (the rest scaled by
    1 / (1 - p)) when training, as `torch.nn.functional.dropout1d`."""
    del inplace
    if input.ndim not in (2, 3):
        raise ShapeError(f"dropout1d: expected (N, C, L) or (C, L), got {tuple(input.shape)}")
    return S.dropout2d(input.unsqueeze(-1), p, training).squeeze(-1)


# ---------------------------------------------------------------------------- activations


class Softmin(_AlongDim):
    """softmax(-x) along `dim`."""

    def forward(self, x: Tensor) -> Tensor:
        return (-x).softmax(self._dim(x))


class GLU(_Activation):
    """a * sigmoid(b) over the two halves of dim `dim`."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = int(dim)

    def forward(self, x: Tensor) -> Tensor:
        return glu(x, self.dim)

    def get_config(self) -> dict:
        return {"dim": self.dim}

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Threshold(_Activation):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__(inplace)
        self.threshold, self.value = float(threshold), float(value)

    def forward(self, x: Tensor) -> Tensor:
        return threshold(x, self.threshold, self.value)

    def get_config(self) -> dict:
        return {"threshold": self.threshold, "value": self.value}

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}"


class Hardshrink(_Activation):
    """x where |x| > lambd, else 0."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = float(lambd)

    def forward(self, x: Tensor) -> Tensor:
        return hardshrink(x, self.lambd)

    def get_config(self) -> dict:
        return {"lambd": self.lambd}

    def extra_repr(self) -> str:
        return str(self.lambd)


class Softshrink(Hardshrink):
    """x -+ lambd outside [-lambd, lambd], else 0."""

    def __init__(self, lambd: float = 0.5):
        if lambd < 0:
            raise ArgumentError(f"Softshrink: lambd must be >= 0, got {lambd}")
        super().__init__(lambd)

    def forward(self, x: Tensor) -> Tensor:
        return softshrink(x, self.lambd)


class Tanhshrink(_Activation):
    """x - tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return tanhshrink(x)


class PReLU(Module):
    """x where x >= 0, else a * x, with a learned slope `a` (one, or one per channel of dim
    1), initialized to `init`, as `torch.nn.PReLU`."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25):
        super().__init__()
        # not `self.num_parameters`: Module.num_parameters() counts a model's parameters
        self.slopes, self.init = _size("num_parameters", num_parameters), float(init)
        self.weight = Parameter(_core.full([self.slopes], self.init, None))

    def forward(self, x: Tensor) -> Tensor:
        return prelu(x, self.weight)

    def get_config(self) -> dict:
        return {"num_parameters": self.slopes, "init": self.init}

    @classmethod
    def state_shapes(cls, num_parameters=1, init=0.25) -> dict[str, tuple[int, ...]]:
        """weight (num_parameters,)."""
        return {"weight": (_size("num_parameters", num_parameters),)}

    def extra_repr(self) -> str:
        return f"num_parameters={self.slopes}"


# ---------------------------------------------------------------------------- distances


class CosineSimilarity(_Activation):
    """The cosine similarity of two inputs along `dim` (see `functional.cosine_similarity`)."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        super().__init__()
        self.dim, self.eps = int(dim), float(eps)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return cosine_similarity(x1, x2, self.dim, self.eps)

    def get_config(self) -> dict:
        return {"dim": self.dim, "eps": self.eps}


class PairwiseDistance(_Activation):
    """The p-norm of x1 - x2 + eps along the last dim (see `functional.pairwise_distance`)."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        super().__init__()
        self.norm, self.eps, self.keepdim = float(p), float(eps), bool(keepdim)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)

    def get_config(self) -> dict:
        return {"p": self.norm, "eps": self.eps, "keepdim": self.keepdim}


# ---------------------------------------------------------------------------- padding


class _Pad(_Activation):
    """Pads the last `_dims` dims: `padding` an int (every side) or 2 x `_dims` ints
    (left, right, then top, bottom), as PyTorch's padding layers."""

    _dims = 1
    _mode = "constant"

    def __init__(self, padding: int | Sequence[int], value: float = 0.0):
        super().__init__()
        n = 2 * self._dims
        if isinstance(padding, int):
            pads = (padding,) * n
        else:
            pads = tuple(int(p) for p in padding)
        if len(pads) != n:
            raise ArgumentError(f"{type(self).__name__}: padding must be an int or {n} ints, got {padding!r}")
        self.padding, self.value = pads, float(value)

    def forward(self, x: Tensor) -> Tensor:
        return S.pad(x, self.padding, self._mode, self.value)

    def get_config(self) -> dict:
        cfg: dict = {"padding": list(self.padding)}
        if self._mode == "constant" and type(self).__name__.startswith("Constant"):
            cfg["value"] = self.value
        return cfg

    def extra_repr(self) -> str:
        return f"{self.padding}" + (f", value={self.value}" if self.value else "")


class ZeroPad1d(_Pad):
    """Pads the last dim with zeros."""

    def __init__(self, padding: int | Sequence[int]):
        super().__init__(padding)


class ZeroPad2d(ZeroPad1d):
    """Pads the last two dims with zeros."""

    _dims = 2


class ConstantPad1d(_Pad):
    """Pads the last dim with `value`."""

    def __init__(self, padding: int | Sequence[int], value: float):
        super().__init__(padding, value)


class ConstantPad2d(ConstantPad1d):
    """Pads the last two dims with `value`."""

    _dims = 2


class ReflectionPad1d(ZeroPad1d):
    """Pads the last dim with its reflection (the edge not repeated)."""

    _mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    """Pads the last two dims with their reflection."""

    _dims = 2


class ReplicationPad1d(ZeroPad1d):
    """Pads the last dim by repeating its edge values."""

    _mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    """Pads the last two dims by repeating their edges."""

    _dims = 2


class CircularPad1d(ZeroPad1d):
    """Pads the last dim by wrapping around."""

    _mode = "circular"


class CircularPad2d(CircularPad1d):
    """Pads the last two dims by wrapping around."""

    _dims = 2


# ---------------------------------------------------------------------------- resizing


class Upsample(_Activation):
    """Resizes (N, C, H, W) to `size` or by `scale_factor`, as `torch.nn.Upsample`
    (`functional.interpolate`'s modes)."""

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ArgumentError(f"{type(self).__name__}: give exactly one of size and scale_factor")
        self.size = size if size is None or isinstance(size, int) else tuple(int(s) for s in size)
        self.scale_factor = (
            scale_factor
            if scale_factor is None or isinstance(scale_factor, (int, float))
            else tuple(float(s) for s in scale_factor)
        )
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return S.interpolate(
            x, self.size, self.scale_factor, self.mode, self.align_corners, self.recompute_scale_factor
        )

    def get_config(self) -> dict:
        return {
            "size": list(self.size) if isinstance(self.size, tuple) else self.size,
            "scale_factor": list(self.scale_factor)
            if isinstance(self.scale_factor, tuple)
            else self.scale_factor,
            "mode": self.mode,
            "align_corners": self.align_corners,
            "recompute_scale_factor": self.recompute_scale_factor,
        }

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode='{self.mode}'"


class UpsamplingNearest2d(Upsample):
    """`Upsample` with mode "nearest"."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "nearest")

    def get_config(self) -> dict:
        cfg = super().get_config()
        return {"size": cfg["size"], "scale_factor": cfg["scale_factor"]}


class UpsamplingBilinear2d(Upsample):
    """`Upsample` with mode "bilinear" and align_corners=True (PyTorch's choice here)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, "bilinear", True)

    def get_config(self) -> dict:
        cfg = super().get_config()
        return {"size": cfg["size"], "scale_factor": cfg["scale_factor"]}


class PixelShuffle(_Activation):
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = _size("upscale_factor", upscale_factor)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_shuffle(x, self.upscale_factor)

    def get_config(self) -> dict:
        return {"upscale_factor": self.upscale_factor}

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(_Activation):
    """(*, C, H r, W r) -> (*, C r^2, H, W)."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = _size("downscale_factor", downscale_factor)

    def forward(self, x: Tensor) -> Tensor:
        return pixel_unshuffle(x, self.downscale_factor)

    def get_config(self) -> dict:
        return {"downscale_factor": self.downscale_factor}

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


# ---------------------------------------------------------------------------- normalization


class GroupNorm(Module):
    """Normalization over groups of channels, as `torch.nn.GroupNorm`: (N, C, *) input, C
    split into `num_groups` groups, per-channel weight 1 and bias 0 with `affine`."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True):
        super().__init__()
        g, c = _size("num_groups", num_groups), _size("num_channels", num_channels)
        if c % g:
            raise ArgumentError(f"GroupNorm: num_channels {c} must be divisible by num_groups {g}")
        self.num_groups, self.num_channels, self.eps, self.affine = g, c, float(eps), bool(affine)
        self.weight = Parameter(_core.full([c], 1.0, None)) if affine else None
        self.bias = Parameter(_core.zeros([c], None)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ShapeError(
                f"GroupNorm: expected input (N, {self.num_channels}, *), got shape {tuple(x.shape)}"
            )
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def get_config(self) -> dict:
        return {
            "num_groups": self.num_groups,
            "num_channels": self.num_channels,
            "eps": self.eps,
            "affine": self.affine,
        }

    @classmethod
    def state_shapes(cls, num_groups, num_channels, eps=1e-5, affine=True) -> dict[str, tuple[int, ...]]:
        """weight and bias (num_channels,) with `affine`."""
        c = (_size("num_channels", num_channels),)
        return {"weight": c, "bias": c} if affine else {}

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm1d(Module):
    """Normalization of each sample's channels over length, as `torch.nn.InstanceNorm1d`:
    (N, C, L) or (C, L); `affine` adds per-channel weight and bias (off by default);
    `track_running_stats` keeps running statistics, used in evaluation."""

    _rank = 3
    running_mean: Tensor | None
    running_var: Tensor | None
    num_batches_tracked: Tensor | None

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
    ):
        super().__init__()
        c = _size("num_features", num_features)
        self.num_features, self.eps, self.momentum = c, float(eps), float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = Parameter(_core.full([c], 1.0, None)) if affine else None
        self.bias = Parameter(_core.zeros([c], None)) if affine else None
        if self.track_running_stats:
            self.register_buffer("running_mean", _core.zeros([c], None))
            self.register_buffer("running_var", _core.full([c], 1.0, None))
            self.register_buffer("num_batches_tracked", _core.zeros([], _core.dtype.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    _optional_state = ("num_batches_tracked",)

    def forward(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim == self._rank - 1:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.ndim != self._rank or x.shape[1] != self.num_features:
            dims = "L" if self._rank == 3 else "H, W"
            raise ShapeError(
                f"{name}: expected input (N, {self.num_features}, {dims}), got shape {tuple(x.shape)}"
            )
        use_input = self.training or not self.track_running_stats
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
        rm = self.running_mean if self.track_running_stats else None
        rv = self.running_var if self.track_running_stats else None
        return instance_norm(x, rm, rv, self.weight, self.bias, use_input, self.momentum, self.eps)

    def get_config(self) -> dict:
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
        }

    @classmethod
    def state_shapes(
        cls, num_features, eps=1e-5, momentum=0.1, affine=False, track_running_stats=False
    ) -> dict[str, tuple[int, ...]]:
        """weight and bias with `affine`; running_mean, running_var (num_features,) and the
        0-d num_batches_tracked with `track_running_stats`."""
        c = (_size("num_features", num_features),)
        out: dict[str, tuple[int, ...]] = {"weight": c, "bias": c} if affine else {}
        if track_running_stats:
            out.update(running_mean=c, running_var=c, num_batches_tracked=())
        return out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class InstanceNorm2d(InstanceNorm1d):
    """`InstanceNorm1d` over (N, C, H, W) or (C, H, W), as `torch.nn.InstanceNorm2d`."""

    _rank = 4


class AdaptiveAvgPool1d(_Activation):
    """Averages (N, C, L) over `output_size` windows."""

    def __init__(self, output_size: int):
        super().__init__()
        self.output_size = _size("output_size", output_size)

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool1d(x, self.output_size)

    def get_config(self) -> dict:
        return {"output_size": self.output_size}

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Dropout1d(_Activation):
    """Zeroes whole channels of (N, C, L) with probability p during training."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ArgumentError(f"Dropout1d: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout1d(x, self.p, self.training)

    def get_config(self) -> dict:
        return {"p": self.p}

    def extra_repr(self) -> str:
        return f"p={self.p}"


# ---------------------------------------------------------------------------- parameter containers


def _as_parameter(what: str, v) -> Tensor:
    if not isinstance(v, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(v).__name__}")
    # a tensor that requires grad stays the very object (tied weights stay tied)
    return v if v.is_leaf and v.requires_grad else Parameter(v)


class ParameterList(Module):
    """A list of parameters registered on the module (named "0", "1", ...), as
    `torch.nn.ParameterList`; tensors become parameters. A config records their shapes
    (`shapes=` builds zeros of those shapes, which a checkpoint then fills)."""

    def __init__(self, values=None, *, shapes: Sequence[Sequence[int]] | None = None):
        super().__init__()
        if values is not None and shapes is not None:
            raise ArgumentError("ParameterList: give values or shapes, not both")
        if shapes is not None:
            values = [_core.zeros([int(d) for d in s], None) for s in shapes]
        for v in values or []:
            self.append(v)

    def append(self, value: Tensor) -> ParameterList:
        """Adds `value` (as a parameter) at the end; returns the list."""
        setattr(self, str(len(self._parameters)), _as_parameter("ParameterList", value))
        return self

    def extend(self, values) -> ParameterList:
        """Adds each of `values`; returns the list."""
        for v in values:
            self.append(v)
        return self

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(list(self._parameters.values()))

    def __getitem__(self, i):
        ps = list(self._parameters.values())
        return ParameterList(ps[i]) if isinstance(i, slice) else ps[i]

    def __setitem__(self, i: int, value: Tensor) -> None:
        n = len(self)
        if not -n <= i < n:
            raise OutOfRangeError(f"ParameterList: index {i} is out of range for {n} parameters")
        # in place in the registry, so the list keeps its order (setattr would move it last)
        self._parameters[str(i % n)] = _as_parameter("ParameterList", value)

    def forward(self, *args, **kwargs):
        """A container: use its parameters in your own forward."""
        raise NotImplementedError("ParameterList has no forward; use its parameters in your module's forward")

    def get_config(self) -> dict:
        return {"shapes": [list(p.shape) for p in self]}

    @classmethod
    def state_shapes(cls, values=None, shapes=None) -> dict[str, tuple[int, ...]] | None:
        """ "0", "1", ...: the recorded shapes."""
        if shapes is None:
            return None if values else {}
        return {str(i): tuple(int(d) for d in s) for i, s in enumerate(shapes)}

    def extra_repr(self) -> str:
        return ", ".join(f"({i}): Parameter of shape {tuple(p.shape)}" for i, p in enumerate(self))


class ParameterDict(Module):
    """Parameters registered by name, as `torch.nn.ParameterDict`; tensors become
    parameters. A config records their shapes (`shapes=`: zeros of those shapes)."""

    def __init__(self, parameters=None, *, shapes: dict | None = None):
        super().__init__()
        if parameters is not None and shapes is not None:
            raise ArgumentError("ParameterDict: give parameters or shapes, not both")
        if shapes is not None:
            parameters = {k: _core.zeros([int(d) for d in s], None) for k, s in shapes.items()}
        items = parameters.items() if isinstance(parameters, dict) else (parameters or [])
        for k, v in items:
            self[k] = v

    def __setitem__(self, key: str, value: Tensor) -> None:
        if not isinstance(key, str) or not key.isidentifier() or key.startswith("_"):
            raise ArgumentError(f"ParameterDict: keys must be public identifiers, got {key!r:.40}")
        setattr(self, key, _as_parameter("ParameterDict", value))

    def __getitem__(self, key: str) -> Tensor:
        return self._parameters[key]

    def __delitem__(self, key: str) -> None:
        del self._parameters[key]
        self.__dict__.pop(key, None)

    def __contains__(self, key) -> bool:
        return key in self._parameters

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(list(self._parameters))

    def keys(self):
        """The names, in insertion order."""
        return self._parameters.keys()

    def values(self):
        """The parameters, in insertion order."""
        return self._parameters.values()

    def items(self):
        """(name, parameter) pairs, in insertion order."""
        return self._parameters.items()

    def forward(self, *args, **kwargs):
        """A container: use its parameters in your own forward."""
        raise NotImplementedError("ParameterDict has no forward; use its parameters in your module's forward")

    def get_config(self) -> dict:
        return {"shapes": {k: list(p.shape) for k, p in self.items()}}

    @classmethod
    def state_shapes(cls, parameters=None, shapes=None) -> dict[str, tuple[int, ...]] | None:
        """Each name: its recorded shape."""
        if shapes is None:
            return None if parameters else {}
        return {str(k): tuple(int(d) for d in s) for k, s in shapes.items()}
