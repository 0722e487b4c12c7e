"""Convolution, pooling and padding over images (N, C, H, W) and sequences (N, C, L), as
`torch.nn.functional`'s: re-exported by `ferrograd.nn.functional`.

Everything here lowers to one engine op and the ones it already has: `_core.unfold2d` lays
each sliding window out as a row of a matrix (im2col; its backward, `fold2d`, sums a
gradient back), so a convolution is that matrix times the weight matrix (the engine's
gemm, on either device) and a pooling is a reduction along its rows. 1-D forms run as 2-D
ones over (N, C, 1, L).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _core
from .._core import ArgumentError, DTypeError, OutOfRangeError, ShapeError, Tensor

_IntPair = int | Sequence[int]


def _pair(op: str, name: str, v: _IntPair, n: int = 2) -> tuple[int, ...]:
    t = (v,) * n if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != n or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in t):
        raise ArgumentError(f"{op}: {name} must be an int or {n} ints, got {v!r}")
    return tuple(int(i) for i in t)


def _check4(op: str, x: Tensor, what: str = "input") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ShapeError(f"{op}: expected a 4-D {what} (N, C, H, W), got shape {tuple(x.shape)}")


def _same_padding(op: str, k: tuple[int, ...], d: tuple[int, ...], s: tuple[int, ...]):
    """PyTorch's padding="same" (stride 1 only): total d (k - 1) per dim, the extra one on
    the right/bottom. Returns (symmetric part, extra right/bottom part)."""
    if any(v != 1 for v in s):
        raise ArgumentError(f"{op}: padding='same' is not supported for strided convolutions, got stride {s}")
    total = [di * (ki - 1) for ki, di in zip(k, d)]
    return tuple(t // 2 for t in total), tuple(t - t // 2 * 2 for t in total)


def _unbatched(rank: int):
    """Lets an op on batched input of `rank` dims also take one sample (rank - 1 dims, as
    PyTorch's convolutions and pools do): run as a batch of one, the batch dim dropped."""

    def wrap(fn):
        @functools.wraps(fn)
        def op(input, *args, **kwargs):  # noqa: A002
            if isinstance(input, Tensor) and input.ndim == rank - 1:
                out = fn(input.unsqueeze(0), *args, **kwargs)
                return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)
            return fn(input, *args, **kwargs)

        return op

    return wrap


@_unbatched(4)
def conv2d(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _IntPair = 1,
    padding: _IntPair | str = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation of (N, C_in, H, W) with weight (C_out, C_in / groups, KH, KW),
    as `torch.nn.functional.conv2d`: stride, zero padding (ints, or "valid"/"same"),
    dilation, groups (depthwise when groups = C_in), optional bias (C_out,)."""
    op = "conv2d"
    _check4(op, input)
    _check4(op, weight, "weight")
    n, c, _, _ = input.shape
    oc, cg, kh, kw = weight.shape
    if not isinstance(groups, int) or groups < 1 or c % groups or oc % groups:
        raise ArgumentError(
            f"{op}: groups must be a positive int dividing in_channels {c} and out_channels {oc}, "
            f"got {groups}"
        )
    if cg * groups != c:
        raise ShapeError(
            f"{op}: input has {c} channels but weight {tuple(weight.shape)} expects {cg} x groups {groups} = "
            f"{cg * groups}"
        )
    if bias is not None and tuple(bias.shape) != (oc,):
        raise ShapeError(f"{op}: bias must have shape ({oc},), got {tuple(bias.shape)}")
    s, d = _pair(op, "stride", stride), _pair(op, "dilation", dilation)
    p: tuple[int, ...]
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0)
        elif padding == "same":
            p, extra = _same_padding(op, (kh, kw), d, s)
            if any(extra):
                input = pad(input, (0, extra[1], 0, extra[0]))
        else:
            raise ArgumentError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        p = _pair(op, "padding", padding)
    og = oc // groups
    outs = []
    for g in range(groups):
        xg = input if groups == 1 else input[:, g * cg : (g + 1) * cg]
        wg = weight if groups == 1 else weight[g * og : (g + 1) * og]
        bg = None if bias is None else (bias if groups == 1 else bias[g * og : (g + 1) * og])
        # (N, OG, OH, OW): the windows times the weight, one engine op (image by image on
        # the CPU, an implicit gemm on the GPU)
        y, _ = _core.conv2d(xg, wg, bg, (kh, kw), s, p, d)
        outs.append(y)
    return outs[0] if groups == 1 else _core.cat(outs, 1)


@_unbatched(3)
def conv1d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation of (N, C_in, L) with weight (C_out, C_in / groups, K), as
    `torch.nn.functional.conv1d` (a conv2d over (N, C, 1, L))."""
    op = "conv1d"
    if not isinstance(input, Tensor) or input.ndim != 3:
        raise ShapeError(f"{op}: expected a 3-D input (N, C, L), got {getattr(input, 'shape', input)!r}")
    if not isinstance(weight, Tensor) or weight.ndim != 3:
        raise ShapeError(f"{op}: expected a 3-D weight (C_out, C_in / groups, K)")
    pd = padding if isinstance(padding, str) else (0, _pair(op, "padding", padding, 1)[0])
    y = conv2d(
        input.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, _pair(op, "stride", stride, 1)[0]),
        pd,
        (1, _pair(op, "dilation", dilation, 1)[0]),
        groups,
    )
    return y.squeeze(2)


@_unbatched(5)
def conv3d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] | str = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """3-D cross-correlation of (N, C_in, D, H, W) with weight (C_out, C_in / groups, KD, KH,
    KW), as `torch.nn.functional.conv3d`: stride, zero padding (ints, or "valid"/"same"),
    dilation, groups, optional bias (C_out,). One conv2d per kernel depth tap, over every
    output depth at once (the depths folded into the batch), summed: the engine's
    convolution does the work on either device and autograd differentiates the sum."""
    op = "conv3d"
    for x, what in ((input, "input"), (weight, "weight")):
        if not isinstance(x, Tensor) or x.ndim != 5:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"{op}: expected a 5-D {what}, got {got}")
    oc, _, kd, _, _ = weight.shape
    if bias is not None and tuple(bias.shape) != (oc,):
        raise ShapeError(f"{op}: bias must have shape ({oc},), got {tuple(bias.shape)}")
    s, d = _pair(op, "stride", stride, 3), _pair(op, "dilation", dilation, 3)
    p: tuple[int, ...]
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0, 0)
        elif padding == "same":
            p, extra = _same_padding(op, tuple(weight.shape[2:]), d, s)
            if any(extra):
                input = pad(input, (0, extra[2], 0, extra[1], 0, extra[0]))
        else:
            raise ArgumentError(f"{op}: padding must be an int, 3 ints, 'valid' or 'same', got {padding!r}")
    else:
        p = _pair(op, "padding", padding, 3)
    if p[0]:
        input = pad(input, (0, 0, 0, 0, p[0], p[0]))
    n, c, depth, h, w = input.shape
    od = (depth - d[0] * (kd - 1) - 1) // s[0] + 1
    if od < 1:
        span = d[0] * (kd - 1) + 1
        raise ShapeError(f"{op}: the input depth {depth} (padded) is below the dilated kernel depth {span}")
    out: Tensor | None = None
    for k in range(kd):
        start = k * d[0]
        taps = input[:, :, start : start + s[0] * (od - 1) + 1 : s[0]]  # (N, C, OD, H, W)
        planes = taps.permute(0, 2, 1, 3, 4).reshape(n * od, c, h, w)
        y = conv2d(planes, weight[:, :, k], None, s[1:], p[1:], d[1:], groups)
        out = y if out is None else out + y
    assert out is not None
    oh, ow = out.shape[2], out.shape[3]
    out = out.reshape(n, od, oc, oh, ow).permute(0, 2, 1, 3, 4)
    if bias is not None:
        out = out + bias.reshape(1, oc, 1, 1, 1)
    return out.contiguous()


@_unbatched(4)
def conv_transpose2d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    output_padding: _IntPair = 0,
    groups: int = 1,
    dilation: _IntPair = 1,
) -> Tensor:
    """The transposed convolution (the gradient of conv2d with respect to its input), as
    `torch.nn.functional.conv_transpose2d`: input (N, C_in, H, W), weight (C_in, C_out /
    groups, KH, KW); output H_out = (H - 1) stride - 2 padding + dilation (KH - 1) +
    output_padding + 1."""
    op = "conv_transpose2d"
    _check4(op, input)
    _check4(op, weight, "weight")
    n, c, h, w = input.shape
    ci, og, kh, kw = weight.shape
    if ci != c or groups < 1 or c % groups:
        raise ShapeError(f"{op}: input has {c} channels, weight {tuple(weight.shape)} (groups {groups})")
    s, p, d = _pair(op, "stride", stride), _pair(op, "padding", padding), _pair(op, "dilation", dilation)
    op_ = _pair(op, "output_padding", output_padding)
    if any(o >= max(si, di) for o, si, di in zip(op_, s, d)):
        raise ArgumentError(f"{op}: output_padding {op_} must be smaller than stride {s} or dilation {d}")
    ho = (h - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op_[0] + 1
    wo = (w - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op_[1] + 1
    # every contribution lands in the full extent (h - 1) s + d (k - 1) + 1 (no padding);
    # the output is its window [p, p + out): cropped by the padding, and zero past the last
    # contribution where output_padding reaches beyond it
    fh, fw = (h - 1) * s[0] + d[0] * (kh - 1) + 1, (w - 1) * s[1] + d[1] * (kw - 1) + 1
    cg = c // groups
    outs = []
    for g in range(groups):
        xg = input if groups == 1 else input[:, g * cg : (g + 1) * cg]
        wg = weight if groups == 1 else weight[g * cg : (g + 1) * cg]
        # each input position's contribution to the output windows, summed back by fold2d
        rows = xg.permute(0, 2, 3, 1).reshape(n * h * w, cg)
        cols = rows.matmul(wg.reshape(cg, og * kh * kw))
        outs.append(_core.fold2d(cols, [n, og, fh, fw], (kh, kw), s, (0, 0), d))
    y = outs[0] if groups == 1 else _core.cat(outs, 1)
    pad_h, pad_w = max(p[0] + ho - fh, 0), max(p[1] + wo - fw, 0)
    if pad_h or pad_w:
        y = pad(y, (0, pad_w, 0, pad_h))
    y = y[:, :, p[0] : p[0] + ho, p[1] : p[1] + wo]
    if bias is not None:
        y = y + bias.reshape(1, -1, 1, 1)
    return y


def _pool_geometry(op, input, kernel_size, stride, padding, dilation):
    """Kernel, stride (the kernel size by default), padding and dilation as pairs, checked."""
    _check4(op, input)
    k = _pair(op, "kernel_size", kernel_size)
    s = (
        k
        if stride is None or (isinstance(stride, (list, tuple)) and not stride)
        else _pair(op, "stride", stride)
    )
    p, d = _pair(op, "padding", padding), _pair(op, "dilation", dilation)
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise ArgumentError(f"{op}: padding {p} must be at most half the kernel size {k}")
    return k, s, p, d


def _pool_windows(op, input, kernel_size, stride, padding, dilation, ceil_mode, pad_value, outside):
    """(N * C * OH * OW, KH * KW) windows of each channel on its own, and (OH, OW)."""
    k, s, p, d = _pool_geometry(op, input, kernel_size, stride, padding, dilation)
    n, c, h, w = input.shape
    flat = input.contiguous().reshape(n * c, 1, h, w)
    cols, (oh, ow) = _core.unfold2d(flat, k, s, p, d, ceil_mode, pad_value, outside)
    return cols, (n, c, oh, ow), (k, s, p, d)


@_unbatched(4)
def max_pool2d(
    input: Tensor,  # noqa: A002
    kernel_size: _IntPair,
    stride: _IntPair | None = None,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """The maximum of each window (stride defaults to the kernel size; padding is -inf), as
    `torch.nn.functional.max_pool2d`; the gradient goes to each window's first maximum.
    With `return_indices`, also where each maximum is: its flat index h * W + w in its
    (N, C) plane of the input (int64), as PyTorch's (what `max_unpool2d` takes)."""
    k, s, p, d = _pool_geometry("max_pool2d", input, kernel_size, stride, padding, dilation)
    # one engine op each way (the window's argmax kept for the backward)
    out = _core.max_pool2d(input, k, s, p, d, ceil_mode)
    if not return_indices:
        return out
    return out, _max_pool_indices(input, k, s, p, d, ceil_mode, tuple(out.shape[2:]))


def _max_pool_indices(input: Tensor, k, s, p, d, ceil_mode: bool, out_hw) -> Tensor:
    """The flat input position (h W + w) of each window's first maximum (a NaN wins)."""
    n, c, h, w = input.shape
    flat = input.detach().contiguous().reshape(n * c, 1, h, w)
    cols, (oh, ow) = _core.unfold2d(flat, k, s, p, d, ceil_mode, -math.inf, -math.inf)
    a = cols.cpu().numpy()
    nan = np.isnan(a)
    j = np.where(nan.any(1), nan.argmax(1), a.argmax(1)) if a.shape[1] else np.zeros(a.shape[0], np.int64)
    j = j.reshape(n * c, oh, ow)
    row = np.arange(oh)[:, None] * s[0] - p[0] + (j // k[1]) * d[0]
    col = np.arange(ow)[None, :] * s[1] - p[1] + (j % k[1]) * d[1]
    return _core.from_numpy(np.ascontiguousarray((row * w + col).reshape(n, c, oh, ow).astype(np.int64)))


def max_unpool2d(
    input: Tensor,  # noqa: A002
    indices: Tensor,
    kernel_size: _IntPair,
    stride: _IntPair | None = None,
    padding: _IntPair = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """max_pool2d's partial inverse, as `torch.nn.functional.max_unpool2d`: each value
    placed at its index (from `max_pool2d(return_indices=True)`) in a zero tensor of the
    pooled input's size ((H - 1) stride - 2 padding + kernel, or `output_size`)."""
    op = "max_unpool2d"
    batched = input.ndim == 4
    x, idx = (input, indices) if batched else (input.unsqueeze(0), indices.unsqueeze(0))
    _check4(op, x)
    if tuple(idx.shape) != tuple(x.shape):
        raise ShapeError(
            f"{op}: indices of shape {tuple(indices.shape)} must match input {tuple(input.shape)}"
        )
    k = _pair(op, "kernel_size", kernel_size)
    st = k if stride is None else _pair(op, "stride", stride)
    pd = _pair(op, "padding", padding)
    n, c, h, w = x.shape
    if output_size is not None:
        oh, ow = (int(v) for v in list(output_size)[-2:])
    else:
        oh, ow = (h - 1) * st[0] - 2 * pd[0] + k[0], (w - 1) * st[1] - 2 * pd[1] + k[1]
    iv = idx.cpu().numpy()
    if iv.size and (iv.min() < 0 or iv.max() >= oh * ow):
        raise OutOfRangeError(f"{op}: an index is out of range for an output of {oh} x {ow}")
    zeros = _core.zeros([n, c, oh * ow], x.dtype).to(x.device)
    out = zeros.scatter(2, idx.reshape(n, c, h * w), x.reshape(n, c, h * w)).reshape(n, c, oh, ow)
    return out if batched else out.squeeze(0)


def max_unpool1d(
    input: Tensor,  # noqa: A002
    indices: Tensor,
    kernel_size: int,
    stride: int | None = None,
    padding: int = 0,
    output_size: Sequence[int] | None = None,
) -> Tensor:
    """`max_unpool2d` over (N, C, L) (indices into L, from `max_pool1d(return_indices=True)`)."""
    k = _pair("max_unpool1d", "kernel_size", kernel_size, 1)[0]
    s = k if stride is None else _pair("max_unpool1d", "stride", stride, 1)[0]
    p = _pair("max_unpool1d", "padding", padding, 1)[0]
    size = None if output_size is None else [1, int(list(output_size)[-1])]
    return max_unpool2d(input.unsqueeze(-2), indices.unsqueeze(-2), (1, k), (1, s), (0, p), size).squeeze(-2)


@_unbatched(4)
def avg_pool2d(
    input: Tensor,  # noqa: A002
    kernel_size: _IntPair,
    stride: _IntPair | None = None,
    padding: _IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """The mean of each window, as `torch.nn.functional.avg_pool2d`: zero padding counted in
    the divisor unless `count_include_pad=False`; windows that `ceil_mode` adds past the
    padding count only what they cover."""
    op = "avg_pool2d"
    cols, (n, c, oh, ow), (k, s, p, d) = _pool_windows(
        op, input, kernel_size, stride, padding, 1, ceil_mode, 0.0, 0.0
    )
    total = cols.sum(1)
    if divisor_override is not None:
        return (total / float(divisor_override)).reshape(n, c, oh, ow)
    if not ceil_mode and (count_include_pad or not any(p)):
        return (total / float(k[0] * k[1])).reshape(n, c, oh, ow)
    # the divisor per window: the entries it covers inside the padded (or plain) input
    h, w = input.shape[2], input.shape[3]
    ones = _core.full([1, 1, h, w], 1.0, input.dtype).to(input.device)
    counts, _ = _core.unfold2d(ones, k, s, p, d, ceil_mode, 1.0 if count_include_pad else 0.0, 0.0)
    div = counts.sum(1).reshape(1, 1, oh, ow)
    return total.reshape(n, c, oh, ow) / div


@_unbatched(3)
def max_pool1d(
    input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):  # noqa: A002
    """`max_pool2d` over (N, C, L)."""
    s = None if stride is None else (1, _pair("max_pool1d", "stride", stride, 1)[0])
    k = _pair("max_pool1d", "kernel_size", kernel_size, 1)[0]
    p = _pair("max_pool1d", "padding", padding, 1)[0]
    dl = _pair("max_pool1d", "dilation", dilation, 1)[0]
    y = max_pool2d(input.unsqueeze(2), (1, k), s if s else (1, k), (0, p), (1, dl), ceil_mode, return_indices)
    if return_indices:
        return y[0].squeeze(2), y[1].squeeze(2)
    return y.squeeze(2)


@_unbatched(3)
def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):  # noqa: A002
    """`avg_pool2d` over (N, C, L)."""
    k = _pair("avg_pool1d", "kernel_size", kernel_size, 1)[0]
    s = k if stride is None else _pair("avg_pool1d", "stride", stride, 1)[0]
    p = _pair("avg_pool1d", "padding", padding, 1)[0]
    y = avg_pool2d(input.unsqueeze(2), (1, k), (1, s), (0, p), ceil_mode, count_include_pad)
    return y.squeeze(2)


@_unbatched(4)
def adaptive_avg_pool2d(input: Tensor, output_size: _IntPair) -> Tensor:  # noqa: A002
    """Averages over the windows that split H and W into `output_size` parts (None keeps a
    dim), as `torch.nn.functional.adaptive_avg_pool2d`: window i of n over a dim of size L is
    [floor(i L / n), ceil((i + 1) L / n))."""
    op = "adaptive_avg_pool2d"
    _check4(op, input)
    n, c, h, w = input.shape
    size = (output_size,) * 2 if isinstance(output_size, int) or output_size is None else tuple(output_size)
    oh, ow = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
    if oh < 1 or ow < 1:
        raise ArgumentError(f"{op}: output_size must be positive, got {output_size!r}")
    if h % oh == 0 and w % ow == 0:  # equal windows: one pooling
        return avg_pool2d(input, (h // oh, w // ow), (h // oh, w // ow))
    rows = []
    for i in range(oh):
        y0, y1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        cells = []
        for j in range(ow):
            x0, x1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            cells.append(input[:, :, y0:y1, x0:x1].mean((2, 3)))
        rows.append(_core.stack(cells, 2))
    return _core.stack(rows, 2)


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:  # noqa: A002
    """Pads the last len(pad) / 2 dims, as `torch.nn.functional.pad`: `pad` is (left, right)
    for the last dim, then (top, bottom) for the one before, ...; modes "constant" (with
    `value`; negative pads crop), "reflect", "replicate", "circular"."""
    op = "pad"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    pad = list(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or not all(isinstance(v, (int, np.integer)) for v in pad):
        raise ArgumentError(f"{op}: pad must be an even number (at most 2 x ndim) of ints, got {pad!r}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ArgumentError(f"{op}: mode must be constant, reflect, replicate or circular, got {mode!r}")
    x = input
    for i in range(len(pad) // 2):
        dim = x.ndim - 1 - i
        lo, hi = int(pad[2 * i]), int(pad[2 * i + 1])
        if lo == 0 and hi == 0:
            continue
        size = x.shape[dim]
        if mode == "constant":
            if lo < 0:
                x = x.narrow(dim, -lo, x.shape[dim] + lo)
                lo = 0
            if hi < 0:
                x = x.narrow(dim, 0, x.shape[dim] + hi)
                hi = 0
            parts = []
            for width in (lo, hi):
                shape = list(x.shape)
                shape[dim] = width
                parts.append(_core.full(shape, float(value), x.dtype).to(x.device) if width else None)
            x = _core.cat([t for t in (parts[0], x, parts[1]) if t is not None], dim)
            continue
        if lo < 0 or hi < 0:
            raise ArgumentError(f"{op}: negative padding is only for mode='constant', got {pad}")
        if mode == "reflect" and (lo >= size or hi >= size):
            raise ArgumentError(
                f"{op}: reflect padding ({lo}, {hi}) must be smaller than the dim's size {size}"
            )
        if mode == "circular" and (lo > size or hi > size):
            raise ArgumentError(f"{op}: circular padding ({lo}, {hi}) must be at most the dim's size {size}")
        if size == 0:
            raise ArgumentError(f"{op}: cannot {mode}-pad an empty dim")
        j = np.arange(-lo, size + hi)
        if mode == "reflect":
            period = 2 * (size - 1) if size > 1 else 1
            j = np.abs(np.mod(j, period))
            j = np.where(j >= size, period - j, j)
        elif mode == "replicate":
            j = np.clip(j, 0, size - 1)
        else:
            j = np.mod(j, size)
        x = x.index_select(dim, _core.from_numpy(j.astype(np.int64)))
    return x


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:  # noqa: A002
    """Zeroes whole channels of (N, C, H, W) (or (N, C, L)) with probability p and scales the
    rest by 1 / (1 - p), as `torch.nn.functional.dropout2d`; the identity when not training."""
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"dropout2d: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if input.ndim not in (3, 4):
        raise ShapeError(f"dropout2d: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    if p == 1.0:
        return input * 0.0
    shape = [input.shape[0], input.shape[1]] + [1] * (input.ndim - 2)
    keep = (_core.rand(shape, input.dtype) >= p).to(input.device)
    return input * keep * (1.0 / (1.0 - p))


def interpolate(
    input: Tensor,  # noqa: A002
    size: _IntPair | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
) -> Tensor:
    """Resizes (N, C, H, W), as `torch.nn.functional.interpolate`: mode "nearest" (source
    index floor(i * in / out)), "bilinear" (half-pixel centres unless `align_corners`) or
    "bicubic" (Keys' cubic convolution, A = -0.75, as PyTorch's); "nearest-exact" (the
    nearest source centre, floor((i + 0.5) in / out)) and "area" (adaptive average pooling).
    With `scale_factor`, positions map through 1 / scale_factor, as PyTorch documents
    (through in / out with `recompute_scale_factor=True`). (N, C, L) takes "nearest" or
    "linear", as a row of height one."""
    op = "interpolate"
    if isinstance(input, Tensor) and input.ndim == 3:
        if mode not in ("nearest", "linear", "nearest-exact", "area"):
            raise ArgumentError(
                f"{op}: 3-D input (N, C, L) takes mode 'nearest', 'linear', 'nearest-exact' or "
                f"'area', got {mode!r}"
            )
        sz = None if size is None else (1, _pair(op, "size", size, 1)[0])
        row_scale = None
        if scale_factor is not None:
            one = scale_factor if isinstance(scale_factor, (int, float)) else tuple(scale_factor)[0]
            row_scale = (1.0, float(one))
        two = "bilinear" if mode == "linear" else mode
        y = interpolate(input.unsqueeze(2), sz, row_scale, two, align_corners, recompute_scale_factor)
        return y.squeeze(2)
    if mode == "linear":
        raise ArgumentError(f"{op}: mode 'linear' needs 3-D input (N, C, L); use 'bilinear' for (N, C, H, W)")
    _check4(op, input)
    h, w = input.shape[2], input.shape[3]
    if (size is None) == (scale_factor is None):
        raise ArgumentError(f"{op}: give exactly one of size and scale_factor")
    ratio: tuple[float | None, float | None] = (None, None)  # out -> in; None: in / out
    if size is not None:
        oh, ow = _pair(op, "size", size)
    else:
        sf = (scale_factor,) * 2 if isinstance(scale_factor, (int, float)) else tuple(scale_factor)  # type: ignore[arg-type]
        oh, ow = int(math.floor(h * sf[0])), int(math.floor(w * sf[1]))
        if not recompute_scale_factor:
            # PyTorch's kernels keep a dim whose size does not change as it is, and nearest
            # halves the index where the size exactly doubles, whatever the factor
            def r(out: int, size: int, f: float) -> float | None:
                return None if out == size or (mode == "nearest" and out == 2 * size) else 1.0 / f

            ratio = (r(oh, h, sf[0]), r(ow, w, sf[1]))

    def nearest(out: int, size: int, r: float | None) -> np.ndarray:
        if r is None:
            return np.minimum((np.arange(out) * size) // max(out, 1), size - 1)
        # in float32, as PyTorch's kernel computes it
        src = np.floor(np.arange(out, dtype=np.float32) * np.float32(r))
        return np.minimum(src.astype(np.int64), size - 1)

    def nearest_exact(out: int, size: int, r: float | None) -> np.ndarray:
        # PyTorch's "nearest-exact": the source pixel whose centre is nearest, in float32
        scale = np.float32(size / out if r is None else r)
        src = np.floor((np.arange(out, dtype=np.float32) + np.float32(0.5)) * scale)
        return np.minimum(src.astype(np.int64), size - 1)

    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ArgumentError(f"{op}: align_corners goes with linear modes only")
    if mode == "area":
        return adaptive_avg_pool2d(input, (oh, ow))
    if mode in ("nearest", "nearest-exact"):
        pick = nearest if mode == "nearest" else nearest_exact
        iy, ix = pick(oh, h, ratio[0]), pick(ow, w, ratio[1])
        y = input.index_select(2, _core.from_numpy(iy.astype(np.int64)))
        return y.index_select(3, _core.from_numpy(ix.astype(np.int64)))
    if mode == "bicubic":
        return _bicubic(input, (oh, ow), ratio, bool(align_corners))
    if mode != "bilinear":
        raise ArgumentError(
            f"{op}: mode must be 'nearest', 'nearest-exact', 'bilinear', 'bicubic' or 'area', got {mode!r}"
        )

    def taps(out: int, size: int, r: float | None):
        if align_corners:
            src = np.arange(out) * ((size - 1) / (out - 1) if out > 1 else 0.0)
        else:
            src = np.maximum((np.arange(out) + 0.5) * (size / out if r is None else r) - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.int64), size - 1)
        hi = np.minimum(lo + 1, size - 1)
        frac = (src - lo).astype(np.float64)
        return lo, hi, frac

    y0, y1, fy = taps(oh, h, ratio[0])
    x0, x1, fx = taps(ow, w, ratio[1])

    def weights(f, shape):
        return _core.from_numpy(f.reshape(shape)).to(input.device, input.dtype)

    def rows(idx):
        return input.index_select(2, _core.from_numpy(idx))

    top, bottom = rows(y0), rows(y1)
    wy = weights(fy, (1, 1, oh, 1))
    mid = top + (bottom - top) * wy
    left = mid.index_select(3, _core.from_numpy(x0))
    right = mid.index_select(3, _core.from_numpy(x1))
    return left + (right - left) * weights(fx, (1, 1, 1, ow))


def _cubic_taps(out: int, size: int, r: float | None, align_corners: bool):
    """PyTorch's bicubic sampling along one dim: for each output position, the four source
    indices floor(src) - 1 .. floor(src) + 2 (clamped to the edge) and their weights from
    the cubic convolution kernel with A = -0.75 (Keys); src unclamped, unlike bilinear."""
    if align_corners:
        src = np.arange(out) * ((size - 1) / (out - 1) if out > 1 else 0.0)
    else:
        src = (np.arange(out) + 0.5) * (size / out if r is None else r) - 0.5
    base = np.floor(src).astype(np.int64)
    t = src - base
    a = -0.75

    def near(v):  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v):  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a

    weights = [far(t + 1), near(t), near(1 - t), far(2 - t)]
    idx = [np.clip(base + k, 0, size - 1) for k in (-1, 0, 1, 2)]
    return idx, weights


def _bicubic(input: Tensor, out: tuple[int, int], ratio, align_corners: bool) -> Tensor:
    """`interpolate(mode="bicubic")`: separable cubic convolution, rows then columns."""
    (oh, ow), (h, w) = out, (input.shape[2], input.shape[3])

    def along(x: Tensor, dim: int, idx, weights, n: int) -> Tensor:
        shape = [1, 1, 1, 1]
        shape[dim] = n
        terms = [
            x.index_select(dim, _core.from_numpy(i))
            * _core.from_numpy(wt.reshape(shape)).to(x.device, x.dtype)
            for i, wt in zip(idx, weights)
        ]
        return terms[0] + terms[1] + terms[2] + terms[3]

    iy, wy = _cubic_taps(oh, h, ratio[0], align_corners)
    ix, wx = _cubic_taps(ow, w, ratio[1], align_corners)
    return along(along(input, 2, iy, wy, oh), 3, ix, wx, ow)


def batch_norm(
    input: Tensor,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch norm of (N, C) or (N, C, *spatial) per channel (dim 1) over every other dim, as
    `torch.nn.functional.batch_norm`: batch statistics when `training` (folded into the
    running ones when given, with `momentum`), else the running statistics, which are then
    required; optional per-channel `weight` and `bias`. A spatial input goes through the
    engine's fused batch norm as (N * positions, C) rows, and comes back contiguous, as
    PyTorch returns it."""
    op = "batch_norm"
    if not isinstance(input, Tensor) or input.ndim < 2:
        shape = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ShapeError(f"{op}: expected input (N, C) or (N, C, ...), got {shape}")
    if not training and (running_mean is None or running_var is None):
        raise ArgumentError(f"{op}: running_mean and running_var are required when not training")
    if input.ndim == 2:
        return _core.batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, None)
    c = input.shape[1]
    order = [0, *range(2, input.ndim), 1]  # channels last: one row per (sample, position)
    moved = input.permute(*order)
    y = _core.batch_norm(
        moved.reshape(-1, c), weight, bias, running_mean, running_var, training, momentum, eps, None
    )
    back = [0, input.ndim - 1, *range(1, input.ndim - 1)]
    return y.reshape(*moved.shape).permute(*back).contiguous()


def layer_norm(
    input: Tensor,  # noqa: A002
    normalized_shape: Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalizes over the last len(normalized_shape) dims, as
    `torch.nn.functional.layer_norm`: (x - mean) / sqrt(var + eps), biased variance."""
    shape = tuple(normalized_shape)
    k = len(shape)
    if tuple(input.shape[input.ndim - k :]) != shape or input.ndim < k:
        raise ShapeError(
            f"layer_norm: expected input (*, {', '.join(map(str, shape))}), got {tuple(input.shape)}"
        )
    dims = list(range(input.ndim - k, input.ndim))
    mean = input.mean(dims, keepdim=True)
    d = input - mean
    var = (d * d).mean(dims, keepdim=True)
    y = d * (var + eps).rsqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:  # noqa: A002
    """The rows of `weight` at the int64 indices `input` (any shape), as
    `torch.nn.functional.embedding`; the `padding_idx` row gets no gradient."""
    if input.dtype == _core.dtype.int32:  # PyTorch's embedding takes int32 indices too
        input = input.long()  # noqa: A001
    if input.dtype != _core.dtype.int64:
        raise DTypeError(f"embedding: indices must be int64 or int32, got {input.dtype}")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-D (num, dim), got {tuple(weight.shape)}")
    if input.numel() and int(input.min().item()) < 0:
        # PyTorch refuses negative indices here (index_select would count them from the end)
        raise OutOfRangeError(
            f"embedding: index {int(input.min().item())} is out of range for {weight.shape[0]} rows"
        )
    w = weight
    if padding_idx is not None:  # the padding row contributes its value but takes no gradient
        keep = np.ones((weight.shape[0], 1), bool)
        keep[padding_idx] = False
        m = _core.from_numpy(keep).to(weight.device)
        w = weight.masked_fill(
            ~m, _core.full([], 0.0, weight.dtype).to(weight.device)
        ) + weight.detach().masked_fill(m, _core.full([], 0.0, weight.dtype).to(weight.device))
    rows = w.index_select(0, input.reshape(-1))
    return rows.reshape(*input.shape, weight.shape[1])


def embedding_bag(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """Sums, means or maxima of bags of embedding rows, as
    `torch.nn.functional.embedding_bag`: `input` (B, L) holds B bags of L indices, or a 1-D
    `input` holds the bags back to back, bag b starting at `offsets[b]` (with
    `include_last_offset`, offsets has B + 1 entries, the last the end). `per_sample_weights`
    (input's shape) scales each row (mode "sum" only); `padding_idx` rows are left out of
    their bag (and of a mean's count). An empty bag gives zeros. Result (B, dim).
    `max_norm`, `scale_grad_by_freq` and `sparse` are not supported (NotImplementedError)."""
    op = "embedding_bag"
    if mode not in ("sum", "mean", "max"):
        raise ArgumentError(f"{op}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(f"{op}: max_norm, scale_grad_by_freq and sparse are not supported")
    del norm_type  # only used with max_norm
    if per_sample_weights is not None and mode != "sum":
        raise ArgumentError(f"{op}: per_sample_weights is only supported for mode='sum', got mode={mode!r}")
    if not isinstance(input, Tensor) or input.ndim not in (1, 2):
        got = tuple(input.shape) if isinstance(input, Tensor) else type(input).__name__
        raise ShapeError(f"{op}: input must be 1-D (with offsets) or 2-D (bags, length), got {got}")
    if per_sample_weights is not None and tuple(per_sample_weights.shape) != tuple(input.shape):
        raise ShapeError(
            f"{op}: per_sample_weights must have the input's shape {tuple(input.shape)}, "
            f"got {tuple(per_sample_weights.shape)}"
        )
    n = int(input.numel())
    if input.ndim == 2:
        if offsets is not None:
            raise ArgumentError(f"{op}: offsets must be None when input is 2-D")
        bags, length = input.shape
        bag_of = np.repeat(np.arange(bags), length)
    else:
        if offsets is None or not isinstance(offsets, Tensor) or offsets.ndim != 1:
            raise ArgumentError(f"{op}: a 1-D input needs 1-D offsets (the start of each bag)")
        starts = offsets.cpu().numpy().astype(np.int64)
        if include_last_offset:
            if starts.size == 0:
                raise ArgumentError(f"{op}: include_last_offset needs at least one offset")
            ends, starts = starts[1:], starts[:-1]
        else:
            ends = np.append(starts[1:], n)
        if starts.size and starts[0] != 0:
            raise ArgumentError(f"{op}: offsets[0] must be 0, got {int(starts[0])}")
        if np.any(np.diff(np.append(starts, ends[-1:] if ends.size else [])) < 0) or np.any(ends > n):
            raise ArgumentError(f"{op}: offsets must be non-decreasing and within the input's {n} entries")
        bags = int(starts.size)
        bag_of = np.repeat(np.arange(bags), ends - starts)
    flat = input.reshape(-1)
    keep = None
    if padding_idx is not None:
        count = weight.shape[0]
        padding_idx = padding_idx % count if -count <= padding_idx < count else padding_idx
        keep = flat.cpu().numpy() != padding_idx
        bag_of = bag_of[keep]
    picked = flat if keep is None else flat[_core.from_numpy(keep)]
    rows = embedding(picked, weight)
    if per_sample_weights is not None:
        w = per_sample_weights.reshape(-1)
        if keep is not None:
            w = w[_core.from_numpy(keep).to(w.device)]
        rows = rows * w.unsqueeze(1).to(rows.dtype)
    dim = weight.shape[1]
    seg = _core.from_numpy(np.ascontiguousarray(bag_of, dtype=np.int64))
    zeros = _core.zeros([bags, dim], weight.dtype).to(weight.device)
    if mode == "max":
        index = seg.reshape(-1, 1).expand(int(seg.numel()), dim)
        return zeros.scatter_reduce(0, index, rows, "amax", include_self=False)
    out = zeros.index_add(0, seg, rows)
    if mode == "mean":
        counts = np.maximum(np.bincount(bag_of, minlength=bags), 1).astype(np.float64)
        out = out / _core.from_numpy(counts.reshape(-1, 1)).to(out.dtype).to(out.device)
    return out


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:  # noqa: A002
    """x / max(||x||_p over dim, eps), as `torch.nn.functional.normalize`."""
    return input / input.norm(p, dim, keepdim=True).clamp(min=eps)


def _softmax_dim(op: str, dim: int | None, ndim: int) -> int:
    """`dim`, or PyTorch's implicit choice when it is None (0 for 0-, 1- and 3-D input, else
    1), with PyTorch's deprecation warning."""
    if dim is not None:
        return dim
    warnings.warn(
        f"Implicit dimension choice for {op} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmin(input: Tensor, dim: int | None = None) -> Tensor:  # noqa: A002
    """softmax(-x) along `dim`, as `torch.nn.functional.softmin` (None: softmax's implicit
    choice, with its warning)."""
    return (-input).softmax(_softmax_dim("softmin", dim, input.ndim))


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """softmax(q k^T * scale + mask) v over the last two dims, as
    `torch.nn.functional.scaled_dot_product_attention`: scale 1/sqrt(E) by default; a bool
    `attn_mask` keeps where True, a float one is added; `is_causal` masks the future (the
    top-left aligned lower triangle); `dropout_p` drops attention weights (while training)."""
    if attn_mask is not None and is_causal:
        raise ArgumentError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
    e = query.shape[-1]
    s = 1.0 / math.sqrt(e) if scale is None else float(scale)
    scores = query.matmul(key.transpose(-2, -1)) * s
    lq, lk = scores.shape[-2], scores.shape[-1]
    neg = _core.full([], -math.inf, scores.dtype).to(scores.device)
    if is_causal:
        keep = _core.from_numpy(np.tri(lq, lk, 0, dtype=bool)).to(scores.device)
        scores = scores.masked_fill(~keep, neg)
    elif attn_mask is not None:
        if attn_mask.dtype == _core.dtype.bool:
            scores = scores.masked_fill(~attn_mask.to(scores.device), neg)
        else:
            scores = scores + attn_mask
    if attn_mask is not None or is_causal:
        # a query that may attend to nothing gets weights 0, not 0/0 (PyTorch's safe
        # softmax); its scores are made finite first so that no NaN reaches a gradient
        dead = scores.detach().amax(-1, keepdim=True) == -math.inf
        zero = _core.full([], 0.0, scores.dtype).to(scores.device)
        attn = scores.masked_fill(dead, zero).softmax(-1).masked_fill(dead, zero)
    else:
        attn = scores.softmax(-1)
    if dropout_p > 0:
        keep = (_core.rand(list(attn.shape), attn.dtype) >= dropout_p).to(attn.device)
        attn = attn * keep * (1.0 / (1.0 - dropout_p))
    return attn.matmul(value)
