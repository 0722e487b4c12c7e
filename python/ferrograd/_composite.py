"""Tensor operations composed from the engine's own (issue 16): shape ops, scans and
reductions, and elementwise math that PyTorch scripts reach for. Each is written once, from
ops that already run on both devices and differentiate (index_select, masked_fill,
matmul, exp/log, ...), so it needs no kernel of its own and its gradient is the
composition's. Each is a function here (exported as `fg.<name>`) and a `Tensor` method
(attached by `_install`, at import; stubs in `_core.pyi`).

Indices and masks that depend only on shapes are built with NumPy on the host (int64 and
bool tensors live there) and cached by nothing: they are small next to the data.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence

import numpy as np

from . import _core
from ._core import ArgumentError, DTypeError, OutOfRangeError, ShapeError, Tensor
from ._einsum import einsum
from .autograd import Function, no_grad
from .errors import IntegerDivisionError

__all__ = [
    "flip",
    "fliplr",
    "flipud",
    "roll",
    "tril",
    "triu",
    "diagonal",
    "diag",
    "movedim",
    "moveaxis",
    "swapaxes",
    "swapdims",
    "broadcast_to",
    "tile",
    "unflatten",
    "repeat_interleave",
    "prod",
    "cumsum",
    "cumprod",
    "logcumsumexp",
    "std_mean",
    "var_mean",
    "count_nonzero",
    "lerp",
    "logaddexp",
    "remainder",
    "fmod",
    "floor_divide",
    "isclose",
    "copysign",
    "masked_select",
    "masked_scatter",
    "div",
    "divide",
    "true_divide",
    "nonzero",
    "scatter_add",
    "scatter",
    "scatter_reduce",
    "index_add",
    "index_copy",
    "median",
    "kthvalue",
    "bincount",
    "unique",
    "unique_consecutive",
    "cummax",
    "cummin",
    "unfold",
    "bitwise_left_shift",
    "bitwise_right_shift",
    "bitwise_not",
    "meshgrid",
    "cdist",
    "einsum",
]


def _dim(op: str, d: int, ndim: int) -> int:
    if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(d).__name__}")
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise OutOfRangeError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimension(s)")
    return int(d) % max(ndim, 1)


def _host(a: np.ndarray) -> Tensor:
    """A host tensor of a NumPy result, 0-d kept (np.ascontiguousarray makes scalars 1-D)."""
    return _core.from_numpy(np.array(a, order="C"))


def _idx(a) -> Tensor:
    return _core.from_numpy(np.ascontiguousarray(a, dtype=np.int64))


def _mask(a, like: Tensor) -> Tensor:
    m = _core.from_numpy(np.ascontiguousarray(a, dtype=bool))
    return m.to(like.device) if like.device != "cpu" else m


def _as_dims(op: str, dims, ndim: int) -> list[int]:
    dims = [dims] if isinstance(dims, (int, np.integer)) else list(dims)
    out = [_dim(op, d, ndim) for d in dims]
    if len(set(out)) != len(out):
        raise ArgumentError(f"{op}: dims {dims} repeat a dimension")
    return out


# ---------------------------------------------------------------------------- shape


def flip(x: Tensor, *args, dims=None) -> Tensor:
    """The entries in reverse order along each of `dims`, as `torch.flip` (a copy); the
    method also takes the dims one by one (`x.flip(0, 2)`), as PyTorch's."""
    if (dims is None) == (not args):
        raise TypeError("flip: give the dims (a sequence, or one by one), or dims=")
    if dims is None:
        dims = args[0] if len(args) == 1 else tuple(args)
    for d in _as_dims("flip", dims, x.ndim):
        n = x.shape[d]
        if n > 1:
            x = x.index_select(d, _idx(np.arange(n - 1, -1, -1)))
    return x if not isinstance(dims, Sequence) or dims else x.clone()


def fliplr(x: Tensor) -> Tensor:
    """`flip(x, [1])` (at least 2-D)."""
    if x.ndim < 2:
        raise ShapeError(f"fliplr: expected a tensor with at least 2 dims, got shape {tuple(x.shape)}")
    return flip(x, [1])


def flipud(x: Tensor) -> Tensor:
    """`flip(x, [0])` (at least 1-D)."""
    if x.ndim < 1:
        raise ShapeError("flipud: expected a tensor with at least 1 dim, got a 0-d tensor")
    return flip(x, [0])


def roll(x: Tensor, shifts, dims=None) -> Tensor:
    """Entries shifted along `dims` with wraparound, as `torch.roll`; without `dims` the
    flattened tensor is rolled and reshaped back."""
    if dims is None:
        if not isinstance(shifts, (int, np.integer)):
            shifts = tuple(shifts)
            if len(shifts) != 1:
                raise ArgumentError("roll: without dims, shifts must be one int")
            shifts = shifts[0]
        return roll(x.reshape(-1), shifts, 0).reshape(*x.shape) if x.ndim else x.clone()
    sh = [shifts] if isinstance(shifts, (int, np.integer)) else list(shifts)
    ds = _as_dims("roll", dims, x.ndim)
    if len(sh) != len(ds):
        raise ArgumentError(f"roll: {len(sh)} shifts for {len(ds)} dims")
    for s, d in zip(sh, ds):
        n = x.shape[d]
        if n:
            x = x.index_select(d, _idx((np.arange(n) - int(s)) % n))
    return x


def _tri(op: str, x: Tensor, diagonal: int, lower: bool) -> Tensor:
    if x.ndim < 2:
        raise ShapeError(f"{op}: expected a tensor with at least 2 dims, got shape {tuple(x.shape)}")
    r, c = x.shape[-2], x.shape[-1]
    keep = np.tri(r, c, diagonal, dtype=bool) if lower else ~np.tri(r, c, diagonal - 1, dtype=bool)
    zero = (
        _core.full([], 0.0, x.dtype) if x.dtype.is_floating_point else _core.from_numpy(np.array(0, np.int64))
    )
    return x.masked_fill(_mask(~keep, x), zero.to(x.device) if x.dtype.is_floating_point else zero)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (entries above `diagonal` zeroed), as
    `torch.tril`."""
    return _tri("tril", x, diagonal, True)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (entries below `diagonal` zeroed), as
    `torch.triu`."""
    return _tri("triu", x, diagonal, False)


def movedim(x: Tensor, source, destination) -> Tensor:
    """`x` with dims `source` moved to `destination` (the others keep their order), as
    `torch.movedim` (a view)."""
    src = _as_dims("movedim", source, x.ndim)
    dst = _as_dims("movedim", destination, x.ndim)
    if len(src) != len(dst):
        raise ArgumentError(f"movedim: {len(src)} source dims for {len(dst)} destinations")
    order = [d for d in range(x.ndim) if d not in src]
    perm = [0] * x.ndim
    placed = dict(zip(dst, src))
    rest = iter(order)
    for i in range(x.ndim):
        perm[i] = placed[i] if i in placed else next(rest)
    return x.permute(*perm)


moveaxis = movedim


def swapaxes(x: Tensor, axis0: int, axis1: int) -> Tensor:
    """`x.transpose(axis0, axis1)` (NumPy's name; `swapdims` is PyTorch's other one)."""
    return x.transpose(axis0, axis1)


swapdims = swapaxes


def diagonal(x: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of dims (dim1, dim2) as a new last dim, as `torch.diagonal`: a view, so
    writes through it reach `x`; entries [i, i + offset] (offset > 0 above the main
    diagonal)."""
    return _core._diagonal(x, int(offset), int(dim1), int(dim2))


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D tensor as the `diagonal`-th diagonal of a square matrix, or a matrix's
    `diagonal`-th diagonal as a 1-D tensor, as `torch.diag`."""
    if x.ndim == 2:
        # a new tensor, as torch.diag's (torch.diagonal is the view)
        return globals()["diagonal"](x, diagonal).clone()
    if x.ndim != 1:
        raise ShapeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(x.shape)}")
    n, k = x.shape[0], int(diagonal)
    m = n + abs(k)
    keep = np.eye(m, k=k, dtype=bool)
    padded = _core.cat([x, _core.zeros([abs(k)], x.dtype).to(x.device)], 0) if k else x
    full = padded.reshape(m, 1).expand(m, m) if k >= 0 else padded.reshape(1, m).expand(m, m)
    return full.masked_fill(_mask(~keep, x), _core.full([], 0.0, x.dtype).to(x.device))


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """`x` broadcast to `shape` (a view), as `torch.broadcast_to`."""
    return x.expand(*shape)


def tile(x: Tensor, dims: Sequence[int]) -> Tensor:
    """`x` repeated `dims[i]` times along each dim (ones prepended to whichever is shorter),
    as `torch.tile`."""
    dims = list(dims)
    if len(dims) < x.ndim:
        dims = [1] * (x.ndim - len(dims)) + dims
    return x.repeat(*dims)


def unflatten(x: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Dim `dim` split into `sizes` (one may be -1), as `torch.unflatten`."""
    d = _dim("unflatten", dim, x.ndim)
    sizes = [int(v) for v in sizes]
    if sizes.count(-1) == 1:
        # resolved against dim d's size, not the element count (which an empty tensor
        # would leave ambiguous)
        known = math.prod(v for v in sizes if v != -1)
        if known == 0 or x.shape[d] % known:
            raise ShapeError(f"unflatten: sizes {tuple(sizes)} do not split dim {d} of size {x.shape[d]}")
        sizes[sizes.index(-1)] = x.shape[d] // known
    if math.prod(sizes) != x.shape[d]:
        raise ShapeError(f"unflatten: sizes {tuple(sizes)} do not multiply to dim {d}'s size {x.shape[d]}")
    return x.reshape(*x.shape[:d], *sizes, *x.shape[d + 1 :])


def repeat_interleave(
    x: Tensor, repeats=None, dim: int | None = None, *, output_size: int | None = None
) -> Tensor:
    """Each entry repeated `repeats` times (an int, or one count per entry) along `dim`
    (the flattened tensor without one), as `torch.repeat_interleave`; with `x` alone (1-D
    int64 counts), the indices 0, 1, ... each repeated its count."""
    del output_size  # a hint for PyTorch's device code
    if repeats is None:
        if x.ndim != 1 or x.dtype != _core.dtype.int64:
            raise ArgumentError(
                "repeat_interleave: alone, the argument must be 1-D int64 counts, "
                f"got {x.dtype} {tuple(x.shape)}"
            )
        counts = x.numpy()
        return _idx(np.repeat(np.arange(len(counts)), counts))
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = _dim("repeat_interleave", dim, x.ndim)
    n = x.shape[d]
    reps = repeats.numpy() if isinstance(repeats, Tensor) else np.asarray(repeats)
    if reps.ndim == 0:
        reps = np.full(n, int(reps))
    if reps.shape != (n,) or (reps < 0).any():
        raise ArgumentError(f"repeat_interleave: repeats must be one count >= 0 or {n} of them")
    return x.index_select(d, _idx(np.repeat(np.arange(n), reps)))


# ---------------------------------------------------------------------------- scans and reductions


def prod(x: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The product over `dim` (all entries without one), as `torch.prod`: pairwise halving
    (log2 n multiplications), so zeros and signs are exact and the gradient is the
    product's; `dtype` casts the input first."""
    if dtype is not None and x.dtype != dtype:
        x = x.to(dtype)
    if dim is None:
        return prod(x.reshape(-1), 0, False).reshape(*([1] * x.ndim)) if keepdim else prod(x.reshape(-1), 0)
    d = _dim("prod", dim, x.ndim)
    if x.ndim == 0:
        return x.clone()
    if not x.dtype.is_floating_point:
        # integers and bools multiply as int64 (PyTorch's), wrapping as int64 does
        with no_grad():
            return _host(np.prod(x.numpy().astype(np.int64), axis=d, keepdims=keepdim))
    while x.shape[d] > 1:
        n = x.shape[d]
        if n % 2:
            shape = list(x.shape)
            shape[d] = 1
            x = _core.cat([x, _core.full(shape, 1.0, x.dtype).to(x.device)], d)
            n += 1
        x = x.narrow(d, 0, n // 2) * x.narrow(d, n // 2, n // 2)
    if x.shape[d] == 0:
        # the empty product is 1; built from x so it stays in the graph (its gradient, to
        # an empty x, is empty) as PyTorch's does
        x = x.sum(d, keepdim=True) * 0 + 1
    return x if keepdim else x.squeeze(d)


def _scan(op: str, x: Tensor, dim: int, combine, identity: float) -> Tensor:
    """Inclusive scan along `dim` by doubling (Hillis-Steele): log2 n steps, each combining
    every entry with the one `step` before it (the identity before the start)."""
    d = _dim(op, dim, x.ndim)
    if x.ndim == 0:
        return x.clone()
    if not x.dtype.is_floating_point:
        # integer and bool scans run in int64 (PyTorch's result dtype), exactly
        x = x.long()
    n = x.shape[d]
    step = 1
    while step < n:
        shape = list(x.shape)
        shape[d] = step
        pad = _core.full(shape, identity, x.dtype).to(x.device)
        shifted = _core.cat([pad, x.narrow(d, 0, n - step)], d)
        x = combine(x, shifted)
        step *= 2
    return x


def cumsum(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running sums along `dim`, as `torch.cumsum` (bools and integers summed as int64;
    `dtype` casts the input first)."""
    if dtype is not None:
        x = x.to(dtype)
    return _scan("cumsum", x, dim, lambda a, b: a + b, 0.0)


def cumprod(x: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running products along `dim`, as `torch.cumprod` (integers as int64; `dtype` casts
    the input first)."""
    if dtype is not None:
        x = x.to(dtype)
    return _scan("cumprod", x, dim, lambda a, b: a * b, 1.0)


def logcumsumexp(x: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(x))) along `dim`, computed stably, as `torch.logcumsumexp`."""
    if not x.dtype.is_floating_point:
        raise DTypeError(f"logcumsumexp: expected a float tensor, got {x.dtype}")
    return _scan("logcumsumexp", x, dim, logaddexp, -math.inf)


def std_mean(x: Tensor, dim=None, correction: float = 1, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """(std, mean) over `dim`, as `torch.std_mean`."""
    return x.std(dim, correction, keepdim), x.mean(dim, keepdim)


def var_mean(x: Tensor, dim=None, correction: float = 1, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """(var, mean) over `dim`, as `torch.var_mean`."""
    return x.var(dim, correction, keepdim), x.mean(dim, keepdim)


def count_nonzero(x: Tensor, dim=None) -> Tensor:
    """The number of nonzero entries over `dim` (int64), as `torch.count_nonzero`."""
    return (x != 0).long().sum(dim)


# ---------------------------------------------------------------------------- elementwise math


def _pair_args(op: str, a, b) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a, b
    if isinstance(a, Tensor):
        return a, _core.full([], float(b), a.dtype if a.dtype.is_floating_point else _core.dtype.float32).to(
            a.device
        )
    if isinstance(b, Tensor):
        return _core.full([], float(a), b.dtype if b.dtype.is_floating_point else _core.dtype.float32).to(
            b.device
        ), b
    raise TypeError(f"{op}: expected at least one Tensor")


def lerp(x: Tensor, end, weight) -> Tensor:
    """x + weight (end - x), as `torch.lerp`."""
    return x + weight * (end - x)


def logaddexp(input, other) -> Tensor:  # noqa: A002  (PyTorch's names)
    """log(exp(a) + exp(b)) without overflow, as `torch.logaddexp`: max(a, b) +
    log1p(exp(-|a - b|)), and a where a = b = +-inf."""
    a, b = input, other
    a, b = _pair_args("logaddexp", a, b)
    m = a.maximum(b)
    d = (a - b).abs()
    same = a == b  # both infinite of one sign: no NaN from inf - inf
    d = d.masked_fill(same, _core.full([], 0.0, d.dtype).to(d.device))
    return m + (-d).exp().log1p()


def _integral(t: Tensor) -> bool:
    return not t.dtype.is_floating_point


def remainder(input, other) -> Tensor:  # noqa: A002  (PyTorch's names)
    """a - floor(a / b) * b: the remainder with the sign of the divisor (Python's %), as
    `torch.remainder`; integer operands stay int64 (a zero divisor:
    IntegerDivisionError, a ZeroDivisionError and a RuntimeError)."""
    a, b = input, other
    a, b = _pair_args("remainder", a, b) if not (_is_int_operand(a) and _is_int_operand(b)) else (a, b)
    if _is_int_operand(a) and _is_int_operand(b):
        return _int_op("remainder", a, b, np.mod)
    r = a - (a / b).floor() * b
    # Python's %: a finite a over an infinite b is a when their signs agree (or a is 0),
    # else b itself (the formula gives NaN)
    inf_b = b.isinf() & a.isfinite()
    same = (a == 0) | ((a > 0) == (b > 0))
    return _core.where(inf_b, _core.where(same, a, b).expand_as(r), r)


def fmod(input, other) -> Tensor:  # noqa: A002  (PyTorch's names)
    """a - trunc(a / b) * b: the remainder with the sign of the dividend (C's fmod), as
    `torch.fmod`."""
    a, b = input, other
    if _is_int_operand(a) and _is_int_operand(b):
        return _int_op("fmod", a, b, np.fmod)
    a, b = _pair_args("fmod", a, b)
    r = a - (a / b).trunc() * b
    # C's fmod: a finite dividend over an infinite divisor is the dividend (the formula
    # gives inf * 0 = NaN)
    keep = b.isinf() & a.isfinite()
    return _core.where(keep, a.expand_as(r) if tuple(a.shape) != tuple(r.shape) else a, r)


def floor_divide(input, other) -> Tensor:  # noqa: A002  (PyTorch's names)
    """floor(a / b), as `torch.floor_divide` (Python's //); integer operands stay int64."""
    a, b = input, other
    if _is_int_operand(a) and _is_int_operand(b):
        return _int_op("floor_divide", a, b, np.floor_divide)
    a, b = _pair_args("floor_divide", a, b)
    return (a / b).floor()


def div(input, other, *, rounding_mode: str | None = None) -> Tensor:  # noqa: A002
    """a / b, as `torch.div`: true division without `rounding_mode` (integers give
    float32); "trunc" rounds the quotient toward zero, "floor" down (both keep integer
    operands integers)."""
    if rounding_mode is None:
        a, b = _pair_args("div", input, other)
        return a / b
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode != "trunc":
        raise ArgumentError(f'div: rounding_mode must be None, "trunc" or "floor", got {rounding_mode!r}')
    if _is_int_operand(input) and _is_int_operand(other):
        return _int_op("div", input, other, lambda a, b: np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b)))
    a, b = _pair_args("div", input, other)
    return (a / b).trunc()


divide = div  # PyTorch's aliases


def true_divide(input, other) -> Tensor:  # noqa: A002  (PyTorch's names)
    """a / b, true division (`div` without a rounding mode)."""
    return div(input, other)


def _is_int_operand(v) -> bool:
    if isinstance(v, Tensor):
        return _integral(v)
    return isinstance(v, (int, np.integer, bool))


def _int_op(op: str, a, b, fn) -> Tensor:
    """An integer op on the host (int64 tensors live there), refusing a zero divisor as
    PyTorch does."""
    av = a.numpy() if isinstance(a, Tensor) else np.int64(a)
    bv = b.numpy() if isinstance(b, Tensor) else np.int64(b)
    if np.any(np.asarray(bv) == 0):
        raise IntegerDivisionError(f"{op}: integer division by zero")
    out = _host(fn(np.asarray(av, np.int64), np.asarray(bv, np.int64)))
    return out.to(_int_result_dtype(a, b))


def _int_result_dtype(a, b):
    """PyTorch's result dtype of two integer (or bool) operands, Python ints included: a
    0-d tensor or number gives way to a dimensioned tensor (uint8 % 3 stays uint8)."""
    rank = {_core.dtype.bool: 0, _core.dtype.uint8: 1, _core.dtype.int32: 2, _core.dtype.int64: 3}
    ts = [t for t in (a, b) if isinstance(t, Tensor)]
    dims = [t.dtype for t in ts if t.ndim > 0]
    pool = dims or [t.dtype for t in ts]
    if not pool or (not dims and len(ts) < 2 and rank[pool[0]] == 0):
        return _core.dtype.int64
    best = max(pool, key=rank.__getitem__)
    # bool operands with an integer: integer arithmetic
    if rank[best] == 0 and any(not isinstance(v, (Tensor, bool, np.bool_)) for v in (a, b)):
        return _core.dtype.int64
    return best


def isclose(input: Tensor, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol |b| elementwise (equal infinities close; NaNs only with
    `equal_nan`), as `torch.isclose`: a bool tensor."""
    a, b = input, other
    a, b = _pair_args("isclose", a, b)
    if a.dtype == _core.dtype.bool and b.dtype == _core.dtype.bool:
        return a == b  # bools are close when equal (their difference is refused)
    with no_grad():
        # only finite pairs are close by tolerance (|1 - inf| <= rtol * inf would pass)
        close = ((a - b).abs() <= (b.abs() * rtol + atol)) & a.isfinite() & b.isfinite()
        close = close | (a == b)
        if equal_nan:
            close = close | (a.isnan() & b.isnan())
        return close


def copysign(input, other) -> Tensor:  # noqa: A002  (PyTorch's names)
    """|a| with the sign of b (the sign of -0.0 counted), as `torch.copysign`."""
    a, b = input, other
    a, b = _pair_args("copysign", a, b)
    if not a.dtype.is_floating_point:  # PyTorch's result is floating even for integers
        a = a.float() if not b.dtype.is_floating_point else a.to(b.dtype)
    neg = (b < 0) | ((b == 0) & ((1.0 / b) < 0))
    mag = a.abs()
    return _core.where(neg, -mag, mag)  # -mag: a zero magnitude becomes -0.0 too


# ---------------------------------------------------------------------------- data-dependent shapes


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """The entries where the bool `mask` (broadcast with `x`) is true, as a 1-D tensor, as
    `torch.masked_select` (differentiable in x)."""
    if mask.dtype != _core.dtype.bool:
        raise DTypeError(f"masked_select: the mask must be bool, got {mask.dtype}")
    shape = np.broadcast_shapes(tuple(x.shape), tuple(mask.shape))
    m = np.broadcast_to(mask.cpu().numpy(), shape).reshape(-1)
    xb = x.expand(*shape) if tuple(x.shape) != shape else x
    return xb.reshape(-1).index_select(0, _idx(np.flatnonzero(m)))


def masked_scatter(x: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """x with the entries where the bool `mask` (broadcast to x's shape) is true replaced,
    in row-major order, by source's first entries, as `torch.masked_scatter`
    (differentiable in x and source)."""
    if mask.dtype != _core.dtype.bool:
        raise DTypeError(f"masked_scatter: the mask must be bool, got {mask.dtype}")
    shape = tuple(x.shape)
    try:
        m = np.broadcast_to(mask.cpu().numpy(), shape)
    except ValueError:
        raise ShapeError(
            f"masked_scatter: the mask's shape {tuple(mask.shape)} does not broadcast to {shape}"
        ) from None
    pos = np.flatnonzero(m)
    if pos.size > source.numel():
        raise ShapeError(
            f"masked_scatter: the mask selects {pos.size} entries but source has only {source.numel()}"
        )
    vals = source.type_as(x).reshape(-1)[: pos.size]
    n = int(np.prod(shape))
    placed = vals._index_add_rows(0, _idx(pos).to(vals.device), n).reshape(shape)
    return _core.where(_mask(m, x), placed, x)


def nonzero(x: Tensor, as_tuple: bool = False):
    """The indices of the nonzero entries, as `torch.nonzero`: an (n, ndim) int64 tensor, or
    with `as_tuple` one 1-D index tensor per dim."""
    with no_grad():
        idx = np.nonzero(x.cpu().numpy()) if x.ndim else (np.nonzero(np.atleast_1d(x.cpu().numpy()))[0],)
    if as_tuple:
        return tuple(_idx(i) for i in idx)
    if x.ndim == 0:  # (z, 0): one empty index per nonzero entry, as PyTorch's
        return _idx(np.zeros((len(idx[0]), 0)))
    return _idx(np.stack(idx, axis=1) if idx else np.zeros((0, 0)))


# ---------------------------------------------------------------------------- as methods


# functions that are not methods (PyTorch's Tensor has no einsum)
_FUNCTIONS_ONLY = {"einsum", "meshgrid"}


def _method(fn, name: str):
    """`fn` as a method: the same call, its first parameter named `self` in the signature
    (what the stubs, and stubtest, read)."""

    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    functools.update_wrapper(method, fn)
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    params[0] = params[0].replace(name="self")
    method.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    method.__name__ = method.__qualname__ = name
    return method


def _reflected(fn, name: str):
    def method(self, other):
        return fn(other, self)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`{fn.__name__}(other, self)`."
    return method


def _np_bits(t: Tensor) -> np.ndarray:
    """A tensor's elements as a NumPy array of the same bits (bfloat16 as uint16 words)."""
    if t.dtype == _core.dtype.bfloat16:
        # bfloat16 is float32's upper half: widening is exact, so its bits are those of the top
        return (t.detach().float().cpu().numpy().view(np.uint32) >> 16).astype(np.uint16)
    return t.detach().cpu().numpy()


def _from_bits(a: np.ndarray, dtype) -> Tensor:
    if dtype == _core.dtype.bfloat16:
        wide = (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        return _host(wide).bfloat16()
    return _host(a)


def view_as_dtype(x: Tensor, dtype) -> Tensor:
    """x's bits read as `dtype`, as `Tensor.view(dtype)`: with a different element size the
    last dim is rescaled, under PyTorch's conditions (last stride 1; its size, the other
    strides and the storage offset in whole elements of the new dtype). On the host the
    result aliases x's memory, as PyTorch's does: a write through either is seen by the
    other. It is a copy instead for a GPU tensor (GPU storage is typed buffers of 32-bit words),
    and for a bool result (the bytes need not be 0 or 1). Not differentiable (detached)."""
    src, dst = x.dtype, dtype
    if src == dst:
        return x
    if src.itemsize != dst.itemsize:
        if x.ndim == 0:
            raise ShapeError(f"view: a 0-d {src} tensor cannot be viewed as {dst} (element sizes differ)")
        last = x.shape[-1]
        if src.itemsize < dst.itemsize and (last * src.itemsize) % dst.itemsize:
            raise ShapeError(
                f"view: the last dim of size {last} ({src}) cannot be viewed as {dst}: "
                f"{last * src.itemsize} bytes is not a multiple of {dst.itemsize}"
            )
        strides = x.stride()
        if last != 1 and strides[-1] != 1:
            raise ShapeError(
                f"view: viewing {src} as {dst} (element sizes differ) needs the last dim to have "
                f"stride 1, got strides {tuple(strides)}"
            )
        ratio = dst.itemsize // src.itemsize if dst.itemsize > src.itemsize else 1
        bad = [s for s in strides[:-1] if s % ratio] + ([] if x.storage_offset() % ratio == 0 else ["offset"])
        if bad:
            raise ShapeError(
                f"view: viewing {src} as {dst} needs the other strides {tuple(strides[:-1])} and "
                f"the storage offset {x.storage_offset()} divisible by {ratio}"
            )
    if x.device == "cpu":
        shared = x.detach()._view_dtype(dst)
        if shared is not None:
            return shared
    a = _np_bits(x)
    if dst == _core.dtype.bfloat16:
        out = a.view(np.uint16)
    else:
        from ._creation import _NP_OF  # noqa: PLC0415

        out = a.view(_NP_OF[dst])
    return _from_bits(out, dst).to(x.device) if x.device != "cpu" else _from_bits(out, dst)


_ENGINE: dict = {}  # the engine's methods that `_install` wraps


def _view(self, *shape):
    """PyTorch's `view`: a new shape over the same data, or with a dtype, its bits
    reinterpreted (see `view_as_dtype`)."""
    if len(shape) == 1 and isinstance(shape[0], _core.dtype):
        return view_as_dtype(self, shape[0])
    return _ENGINE["view"](self, *shape)


def _inplace(name: str, method: str):
    """`x op= y`, as PyTorch's: in place through the in-place method, so other names of x
    and views of it see the change; on a tensor in the graph the write is recorded (its
    history is rewritten, see tensor/inplace.rs), as PyTorch's."""

    def op(self, other):
        getattr(self, method)(other)
        return self

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"`self {name[3:-2]}= other` in place (see `{method}`)."
    return op


def _install() -> None:
    """Each function as a `Tensor` method (never replacing one the engine defines), and the
    `%` and `//` operators."""
    for name in __all__:
        if name not in _FUNCTIONS_ONLY and not hasattr(Tensor, name):
            setattr(Tensor, name, _method(globals()[name], name))
    if not hasattr(Tensor, "__mod__"):
        setattr(Tensor, "__mod__", _method(remainder, "__mod__"))  # noqa: B010
        setattr(Tensor, "__rmod__", _reflected(remainder, "__rmod__"))  # noqa: B010
        setattr(Tensor, "__floordiv__", _method(floor_divide, "__floordiv__"))  # noqa: B010
        setattr(Tensor, "__rfloordiv__", _reflected(floor_divide, "__rfloordiv__"))  # noqa: B010
    # the engine's div is true division only (PyTorch's takes rounding_mode), and its view
    # takes shapes only (PyTorch's also a dtype): both are wrapped, once
    if Tensor.view is not _view:
        _ENGINE["view"] = Tensor.view
        setattr(Tensor, "div", _method(div, "div"))  # noqa: B010
        setattr(Tensor, "view", _view)  # noqa: B010
    if not hasattr(Tensor, "__iadd__"):
        setattr(Tensor, "__iadd__", _inplace("__iadd__", "add_"))  # noqa: B010
        setattr(Tensor, "__isub__", _inplace("__isub__", "sub_"))  # noqa: B010
        setattr(Tensor, "__imul__", _inplace("__imul__", "mul_"))  # noqa: B010
        setattr(Tensor, "__itruediv__", _inplace("__itruediv__", "div_"))  # noqa: B010
    if not hasattr(Tensor, "__lshift__"):
        setattr(Tensor, "__lshift__", _method(bitwise_left_shift, "__lshift__"))  # noqa: B010
        setattr(Tensor, "__rshift__", _method(bitwise_right_shift, "__rshift__"))  # noqa: B010


# ---------------------------------------------------------------------------- scatters


def _last_of_each(flat: np.ndarray) -> np.ndarray:
    """The positions in `flat` of the last occurrence of each value, in order: where a
    scatter or copy names a place twice, the later write is the one that stays (PyTorch's
    CPU kernels write in index order)."""
    if flat.size == 0:
        return np.zeros(0, np.int64)
    first_from_end = np.unique(flat[::-1], return_index=True)[1]
    return np.sort(len(flat) - 1 - first_from_end)


def _scatter_flat(
    x: Tensor, dim: int, index: Tensor, src: Tensor, op: str, last_only: bool = False
) -> tuple[Tensor, np.ndarray, Tensor]:
    """src's entries (over index's shape) added into a zero tensor of x's shape at the
    positions index names along `dim` (PyTorch's scatter rule), those flat positions, and
    the entries themselves (flat, in index order). With `last_only`, of the entries that
    land on one position only the last is placed (and the positions returned are those
    placed)."""
    d = _dim(op, dim, x.ndim)
    if index.dtype == _core.dtype.int32:  # PyTorch's scatters take int32 indices too
        index = index.long()
    if index.dtype != _core.dtype.int64:
        raise DTypeError(f"{op}: index must be int64 or int32, got {index.dtype}")
    if index.ndim != x.ndim or src.ndim != x.ndim:
        raise ShapeError(
            f"{op}: index and src must have {x.ndim} dims like the tensor, got {index.ndim} and {src.ndim}"
        )
    ish = tuple(index.shape)
    if any(i > s for i, s in zip(ish, src.shape)) or any(
        i > s for j, (i, s) in enumerate(zip(ish, x.shape)) if j != d
    ):
        raise ShapeError(
            f"{op}: index of shape {ish} does not fit src {tuple(src.shape)} and the tensor {tuple(x.shape)}"
        )
    iv = index.cpu().numpy()
    size = x.shape[d]
    if iv.size and (iv.min() < -size or iv.max() >= size):
        raise OutOfRangeError(f"{op}: index out of bounds for dim {d} with size {size}")
    grid = list(np.indices(ish))
    grid[d] = np.mod(iv, size) if size else iv
    flat = np.ravel_multi_index(tuple(grid), tuple(x.shape)).reshape(-1) if iv.size else np.zeros(0, np.int64)
    part = src
    for j, n in enumerate(ish):
        if part.shape[j] != n:
            part = part.narrow(j, 0, n)
    part = part.type_as(x) if part.dtype != x.dtype else part
    every = part.reshape(-1)
    if last_only:
        last = _last_of_each(flat)
        placed_at = flat[last]
        if part.requires_grad and len(last) < len(flat) and part.dtype.is_floating_point:
            # the overwritten entries still get their position's gradient, as PyTorch's
            # backward (grad.gather) gives them, through a term that is zero forward
            kept = np.zeros(flat.size, bool)
            kept[last] = True
            every = _core.where(_mask(kept, every), every, _ZeroWithGradient.apply(every))
            added = every._index_add_rows(0, _idx(flat), x.numel())
            return added.reshape(*x.shape), placed_at, part.reshape(-1)
        added = every.index_select(0, _idx(last))._index_add_rows(0, _idx(placed_at), x.numel())
        return added.reshape(*x.shape), placed_at, part.reshape(-1)
    added = every._index_add_rows(0, _idx(flat), x.numel())
    return added.reshape(*x.shape), flat, part.reshape(-1)


class _ZeroWithGradient(Function):
    """Zeros forward (whatever the values, inf and NaN included), the gradient unchanged
    backward: where an overwritten value still gets its position's gradient (PyTorch's
    scatter, index_copy and index_put backward gather the gradient for every entry)."""

    @staticmethod
    def forward(ctx, t):
        return _core.full(list(t.shape), 0.0, t.dtype).to(t.device)

    @staticmethod
    def backward(ctx, g):
        return g


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:  # noqa: A002
    """`input` plus src's entries added at the positions `index` names along `dim`
    (out[i][index[i][j]] += src[i][j] for dim 1), as `torch.scatter_add`; repeats add up."""
    added, _, _ = _scatter_flat(input, dim, index, src, "scatter_add")
    return input + added


def scatter(
    input: Tensor, dim: int, index: Tensor, src=None, value=None, *, reduce: str | None = None
) -> Tensor:  # noqa: A002, E501
    """`input` with the positions `index` names along `dim` replaced by src's entries (or
    `value`), as `torch.scatter`; where a position is named twice the later entry (in
    index order) stays, as PyTorch's CPU kernel writes; every entry of src gets the
    gradient of the position it names (PyTorch's backward), the overwritten ones too."""
    if (src is None) == (value is None):
        raise TypeError("scatter: give src or value")
    if not isinstance(src, Tensor):
        fill = value if value is not None else src
        src = _core.full(list(index.shape), float(fill), input.dtype).to(input.device)
    if reduce is not None:
        # PyTorch's older spelling: "add" or "multiply" into input, as scatter_reduce
        names = {"add": "sum", "multiply": "prod"}
        if reduce not in names:
            raise ArgumentError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        return scatter_reduce(input, dim, index, src, names[reduce])
    added, flat, _ = _scatter_flat(input, dim, index, src, "scatter", last_only=True)
    hit = np.zeros(input.numel(), bool)
    hit[flat] = True
    zero = _core.full([], 0.0, input.dtype).to(input.device)
    return input.masked_fill(_mask(hit.reshape(tuple(input.shape)), input), zero) + added


def scatter_reduce(
    input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, include_self: bool = True
) -> Tensor:  # noqa: A002
    """`torch.scatter_reduce`: reduce "sum", "prod", "mean", "amax" or "amin" over the
    entries that land on a position, `input`'s own value among them with `include_self`;
    positions nothing lands on keep `input`'s value. amax/amin share the gradient evenly
    among tied entries, as PyTorch's."""
    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise ArgumentError(
            f"scatter_reduce: reduce must be 'sum', 'prod', 'mean', 'amax' or 'amin', got {reduce!r}"
        )
    added, flat, part = _scatter_flat(input, dim, index, src, "scatter_reduce")
    if reduce in ("prod", "amax", "amin"):
        return _scatter_gathered(input, flat, part, reduce, include_self)
    hit = np.zeros(input.numel(), bool)
    hit[flat] = True
    base = (
        input
        if include_self
        else input.masked_fill(
            _mask(hit.reshape(tuple(input.shape)), input), _core.full([], 0.0, input.dtype).to(input.device)
        )
    )
    total = base + added
    if reduce == "sum":
        return total
    counts = np.bincount(flat, minlength=input.numel()).reshape(tuple(input.shape)).astype(np.float64)
    counts = counts + (1.0 if include_self else 0.0) * (counts > 0) + (counts == 0)
    if not input.dtype.is_floating_point:
        # integers keep their dtype, the mean rounded down (PyTorch's floor division)
        return total // _core.from_numpy(counts.astype(np.int64)).to(input.dtype)
    return total / _core.from_numpy(counts).to(input.device, input.dtype)


def _scatter_gathered(x: Tensor, flat: np.ndarray, part: Tensor, reduce: str, include_self: bool) -> Tensor:
    """scatter_reduce's prod/amax/amin: the candidates of each position that something
    lands on, gathered into the rows of one (positions, most candidates) matrix padded with
    the reduction's identity, reduced along its rows by the differentiable prod/amax/amin."""
    n, m = x.numel(), len(flat)
    if m == 0:
        return x.clone()
    order = np.argsort(flat, kind="stable")
    pos, start, counts = np.unique(flat[order], return_index=True, return_counts=True)
    width = int(counts.max()) + (1 if include_self else 0)
    pad = n + m  # the identity's place in the pool below
    table = np.full((len(pos), width), pad, np.int64)
    rows = np.repeat(np.arange(len(pos)), counts)
    table[rows, np.arange(m) - np.repeat(start, counts)] = n + order
    if include_self:
        table[:, -1] = pos
    identity = {"prod": 1.0, "amax": -math.inf, "amin": math.inf}[reduce]
    pool = _core.cat([x.reshape(-1), part, _core.full([1], identity, x.dtype).to(x.device)], 0)
    cand = pool.index_select(0, _idx(table.reshape(-1)).to(x.device)).reshape(len(pos), width)
    red = cand.prod(1) if reduce == "prod" else cand.amax(1) if reduce == "amax" else cand.amin(1)
    placed = red._index_add_rows(0, _idx(pos).to(x.device), n).reshape(*x.shape)
    hit = np.zeros(n, bool)
    hit[pos] = True
    return _core.where(_mask(hit.reshape(tuple(x.shape)), x), placed, x)


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, alpha: float = 1.0) -> Tensor:  # noqa: A002
    """`input` plus `alpha` times source's slices along `dim` added into the slices `index`
    names (repeats add up), as `torch.index_add`."""
    d = _dim("index_add", dim, input.ndim)
    added = source.type_as(input)._index_add_rows(d, index, input.shape[d])
    return input + (added * alpha if alpha != 1 else added)


def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:  # noqa: A002
    """`input` with the slices `index` names along `dim` replaced by source's, as
    `torch.index_copy`; where an index repeats, the later slice stays (PyTorch's CPU
    kernel copies in index order)."""
    d = _dim("index_copy", dim, input.ndim)
    iv = np.mod(index.cpu().numpy().reshape(-1), max(input.shape[d], 1))
    rows = np.zeros(input.shape[d], bool)
    rows[iv] = True
    shape = [1] * input.ndim
    shape[d] = input.shape[d]
    keep = _mask(rows.reshape(shape), input)
    cleared = input.masked_fill(keep, _core.full([], 0.0, input.dtype).to(input.device))
    last = _last_of_each(iv)
    source = source.type_as(input)
    if len(last) < len(iv):
        if source.requires_grad and source.dtype.is_floating_point:
            # every slice gets its position's gradient (PyTorch's backward), the overwritten
            # ones through a zero-forward term
            kept = np.zeros(len(iv), bool)
            kept[last] = True
            shape = [1] * source.ndim
            shape[d] = len(iv)
            mask = _mask(kept.reshape(shape), source)
            source = _core.where(mask, source, _ZeroWithGradient.apply(source))
            return cleared + source._index_add_rows(d, _idx(iv).to(index.device), input.shape[d])
        source = source.index_select(d, _idx(last).to(source.device))
        index = _idx(iv[last]).to(index.device)
    return cleared + source._index_add_rows(d, index, input.shape[d])


def median(input: Tensor, dim: int | None = None, keepdim: bool = False):  # noqa: A002
    """The lower median (the ((n - 1) // 2)-th smallest, NaN where one is), as
    `torch.median`: of all entries without `dim`; with one, (values, indices)."""
    from . import return_types  # noqa: PLC0415

    if dim is None:
        flat = input.reshape(-1)
        if flat.numel() == 0:
            return flat.sum() * math.nan  # NaN, in the graph (PyTorch's median of nothing)
        v, _ = flat.sort(0)
        # NaN sorts last: the last entry is NaN when any is, and then the median is NaN
        return v[-1] if input.dtype.is_floating_point and bool(v[-1].isnan()) else v[(flat.numel() - 1) // 2]
    d = _dim("median", dim, input.ndim)
    v, i = input.sort(d)
    k = (input.shape[d] - 1) // 2
    vals, idx = v.narrow(d, k, 1), i.narrow(d, k, 1)
    if input.dtype.is_floating_point and input.shape[d] > 0:
        # a slice holding NaN has median NaN, at the first NaN's index (the sort keeps NaNs
        # last and in order)
        with no_grad():
            nan = input.isnan()
            first = nan.long().argmax(d, keepdim=True)
            has = nan.any(d, keepdim=True)
        vals = _core.where(has, v.narrow(d, input.shape[d] - 1, 1), vals)
        idx = _core.where(has, first, idx)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return return_types.median(vals, idx)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):  # noqa: A002
    """The k-th smallest entry along `dim` (k from 1) and its index, as `torch.kthvalue`."""
    from . import return_types  # noqa: PLC0415

    d = _dim("kthvalue", dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    if not 1 <= k <= n:
        raise OutOfRangeError(f"kthvalue: k = {k} is out of range for a dim of size {n}")
    v, i = input.sort(d)
    vals, idx = v.narrow(d, k - 1, 1), i.narrow(d, k - 1, 1)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return return_types.kthvalue(vals, idx)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:  # noqa: A002
    """Counts of each value of a 1-D non-negative int64 tensor (weighted sums with
    `weights`), as `torch.bincount`."""
    if input.dtype != _core.dtype.int64 or input.ndim != 1:
        raise ShapeError(
            f"bincount: expected a 1-D int64 tensor, got {input.dtype} of shape {tuple(input.shape)}"
        )
    v = input.numpy()
    if v.size and v.min() < 0:
        raise ArgumentError("bincount: values must be non-negative")
    w = None if weights is None else weights.detach().cpu().numpy().astype(np.float64)
    out = np.bincount(v, w, minlength=minlength)
    if weights is None:
        return _host(out.astype(np.int64))
    # summed in float64, given in the weights' dtype (float weights) as PyTorch's
    wdt = weights.dtype if weights.dtype.is_floating_point else _core.dtype.float64
    return _host(out).to(wdt).to(weights.device)  # the weights' device (labels live on the host)


def unique(
    input: Tensor, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None
):  # noqa: A002
    """The distinct values (sorted), as `torch.unique`, with the inverse indices and the
    counts when asked (not differentiable); NaNs are distinct from each other, as
    PyTorch's. With `dim`, the distinct slices along it (sorted), the inverse indexing
    that dim."""
    a = input.detach().cpu().numpy()
    if dim is None:
        vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True, equal_nan=False)
        inv = inv.reshape(a.shape)
    else:
        d = _dim("unique", dim, a.ndim)
        vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True, axis=d)
        inv = inv.reshape(-1)
    out = [_core.from_numpy(np.ascontiguousarray(vals)).to(input.device)]
    if return_inverse:
        out.append(_idx(inv))
    if return_counts:
        out.append(_idx(counts))
    return out[0] if len(out) == 1 else tuple(out)


# ---------------------------------------------------------------------------- more shapes and scans


def meshgrid(*tensors, indexing: str = "ij") -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors, as `torch.meshgrid` ("ij": matrix indexing, the
    default; "xy": Cartesian, the first two dims swapped); views of the inputs."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ArgumentError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    if any(t.ndim > 1 for t in tensors):
        raise ShapeError("meshgrid: expected 0-d or 1-D tensors")
    ts = [t.reshape(-1) for t in tensors]
    shape = [t.shape[0] for t in ts]
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = shape[i]
        out.append(t.reshape(*view).expand(*shape))
    if indexing == "xy" and len(out) >= 2:  # Cartesian: the first two dims swapped
        out = [o.transpose(0, 1) for o in out]
    return tuple(out)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between the rows of x1 (.., P, M) and x2 (.., R, M), as
    `torch.cdist`: (.., P, R)."""
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(
            f"cdist: expected (.., P, M) and (.., R, M), got {tuple(x1.shape)} and {tuple(x2.shape)}"
        )
    d = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    return d.norm(p, -1)


def _cumext(op: str, x: Tensor, dim: int, better):
    from . import return_types  # noqa: PLC0415

    d = _dim(op, dim, x.ndim)
    a = np.moveaxis(x.detach().cpu().numpy(), d, -1) if x.ndim else x.detach().cpu().numpy().reshape(1)
    idx = np.zeros(a.shape, np.int64)
    if a.shape[-1]:
        best = a[..., 0].copy()
        for j in range(1, a.shape[-1]):
            v = a[..., j]
            # ties take the later index; NaN wins and stays
            take = better(v, best) | (v == best) | np.isnan(v) & ~np.isnan(best)
            take &= ~(np.isnan(best) & ~np.isnan(v))
            best = np.where(take, v, best)
            idx[..., j] = np.where(take, j, idx[..., j - 1])
    idx = np.moveaxis(idx, -1, d) if x.ndim else idx.reshape(())
    it = _idx(idx)
    vals = x.take_along_dim(it, d) if x.ndim else x.clone()
    return getattr(return_types, op)(vals, it)


def cummax(x: Tensor, dim: int):
    """Running maxima along `dim` and where they are (the later index among ties), as
    `torch.cummax`: (values, indices); the values differentiate."""
    return _cumext("cummax", x, dim, np.greater)


def cummin(x: Tensor, dim: int):
    """Running minima along `dim` and where they are, as `torch.cummin`."""
    return _cumext("cummin", x, dim, np.less)


def unfold(x: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Every slice of length `size` along `dimension`, `step` apart, as a new last dim, as
    `Tensor.unfold`: a view, so writes through it reach `x`."""
    if size < 0 or step <= 0:
        raise ArgumentError(f"unfold: need size >= 0 and step > 0, got size {size}, step {step}")
    return _core._unfold(x, int(dimension), int(size), int(step))


def _host_int(op: str, a, b, fn) -> Tensor:
    av = a.numpy() if isinstance(a, Tensor) else np.asarray(a)
    bv = b.numpy() if isinstance(b, Tensor) else np.asarray(b)
    if av.dtype.kind not in "iub" or bv.dtype.kind not in "iub":
        raise DTypeError(f"{op}: expected integer or bool operands")
    return _host(fn(av.astype(np.int64), bv.astype(np.int64))).to(_int_result_dtype(a, b))


def bitwise_left_shift(input, other) -> Tensor:  # noqa: A002
    """input << other for integers, as `torch.bitwise_left_shift`."""
    return _host_int("bitwise_left_shift", input, other, np.left_shift)


def bitwise_right_shift(input, other) -> Tensor:  # noqa: A002
    """input >> other (arithmetic) for integers, as `torch.bitwise_right_shift`."""
    return _host_int("bitwise_right_shift", input, other, np.right_shift)


def bitwise_not(input: Tensor) -> Tensor:  # noqa: A002
    """~input: bitwise for integers, logical for bools, as `torch.bitwise_not`."""
    return ~input


def unique_consecutive(
    input: Tensor,  # noqa: A002
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
):
    """The tensor with runs of equal consecutive entries (or slices along `dim`) collapsed
    to one, as `torch.unique_consecutive`; optionally the run each entry falls in and each
    run's length."""
    a = input.detach().cpu().numpy()
    if dim is None:
        flat = a.reshape(-1)
        starts = np.ones(flat.size, bool)
        if flat.size:
            starts[1:] = flat[1:] != flat[:-1]
        values = _host(flat[starts]).to(input.dtype)
    else:
        d = _dim("unique_consecutive", dim, input.ndim)
        moved = np.moveaxis(a, d, 0).reshape(a.shape[d], -1)
        starts = np.ones(moved.shape[0], bool)
        if moved.shape[0]:
            starts[1:] = (moved[1:] != moved[:-1]).any(1)
        values = input.index_select(d, _idx(np.nonzero(starts)[0]))
    run = np.cumsum(starts) - 1
    out = [values.to(input.device) if dim is None else values]
    if return_inverse:
        out.append(_idx(run.reshape(a.shape if dim is None else a.shape[dim % max(a.ndim, 1)])))
    if return_counts:
        out.append(_idx(np.diff(np.append(np.nonzero(starts)[0], len(starts)))))
    return out[0] if len(out) == 1 else tuple(out)


_install()
