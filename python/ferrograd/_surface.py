"""PyTorch's everyday surface over ops the engine already has: the function forms of Tensor
methods and operators (`fg.add(a, b, alpha=2)`, `fg.eq`, `fg.std`, ...), more composed math
(`atan2`, `hypot`, `nan_to_num`, `logit`, `xlogy`, `diff`, `trace`, `cross`, ...), shape
helpers (`tensor_split`, `hstack`, `rot90`, `select`, ...) and the in-place variants
(`x.relu_()`, `w.uniform_()`, `x.index_fill_(...)`, ...).

Each is composed from ops that run on both devices and differentiate, so it needs no kernel
of its own. The functions are exported as `fg.<name>`; those PyTorch also has as methods are
attached to `Tensor` by `_install` at import (never replacing an engine method, except
`add`/`sub`, wrapped to take `alpha`, and `var`/`std`, wrapped to take `unbiased`). Their
stubs are in `_core.pyi`.

In-place variants follow the engine's rule for in-place ops: a leaf that requires grad
cannot be modified in place while grad mode is on (wrap the update in `no_grad()`), other
tensors in the graph are, with the write recorded (the engine's `copy_`), and a
result that its dtype cannot hold (a float into an integer tensor) is a DTypeError.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core, return_types
from ._composite import (
    _dim,
    _idx,
    _mask,
    _method,
    _pair_args,
    _ZeroWithGradient,
    index_add,
    scatter,
    scatter_add,
)
from ._core import ArgumentError, DTypeError, OutOfRangeError, ShapeError, Tensor
from ._creation import _t, rand, randn, tensor, zeros
from .autograd import Function, no_grad

__all__ = [
    "add",
    "sub",
    "subtract",
    "mul",
    "multiply",
    "pow",
    "negative",
    "square",
    "rsqrt",
    "std",
    "amax",
    "narrow",
    "masked_fill",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "not_equal",
    "atan2",
    "arctan2",
    "hypot",
    "xlogy",
    "logit",
    "nan_to_num",
    "sgn",
    "clamp_min",
    "clamp_max",
    "fmax",
    "fmin",
    "deg2rad",
    "rad2deg",
    "addcmul",
    "addcdiv",
    "trace",
    "diff",
    "cross",
    "inner",
    "dist",
    "aminmax",
    "mode",
    "isin",
    "ravel",
    "argwhere",
    "select",
    "tensor_split",
    "index_fill",
    "index_put",
    "rot90",
    "hstack",
    "vstack",
    "dstack",
    "column_stack",
]

# functions PyTorch has only as functions (or whose method is the engine's own)
_FUNCTIONS_ONLY = {
    "add",
    "sub",
    "mul",
    "pow",
    "std",
    "amax",
    "narrow",
    "masked_fill",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "square",
    "rsqrt",
    "isin",
    "hstack",
    "vstack",
    "dstack",
    "column_stack",
}


# ---------------------------------------------------------------------------- operator forms


def add(input, other, *, alpha=1) -> Tensor:  # noqa: A002  (PyTorch's names)
    """input + alpha * other, as `torch.add`."""
    return input + (other if alpha == 1 else other * alpha)


def sub(input, other, *, alpha=1) -> Tensor:  # noqa: A002
    """input - alpha * other, as `torch.sub`."""
    return input - (other if alpha == 1 else other * alpha)


subtract = sub


def mul(input, other) -> Tensor:  # noqa: A002
    """input * other, as `torch.mul`."""
    return input * other


multiply = mul


def pow(input, exponent) -> Tensor:  # noqa: A001, A002
    """input ** exponent, as `torch.pow` (either may be a number)."""
    return input**exponent


def negative(input: Tensor) -> Tensor:  # noqa: A002
    """-input, as `torch.negative`."""
    return -input


def square(input: Tensor) -> Tensor:  # noqa: A002
    """input * input, as `torch.square`."""
    return input.square()


def rsqrt(input: Tensor) -> Tensor:  # noqa: A002
    """1 / sqrt(input), as `torch.rsqrt`."""
    return input.rsqrt()


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:  # noqa: A002
    """The standard deviation over `dim`, as `torch.std` (`unbiased` or `correction`)."""
    return input.std(dim, keepdim=keepdim, correction=_correction("std", unbiased, correction))


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:  # noqa: A002
    """The maximum over `dim` (all dims by default), as `torch.amax`."""
    return input.amax(dim if dim != () else None, keepdim)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:  # noqa: A002
    """`length` entries of `dim` from `start` (a view), as `torch.narrow`."""
    return input.narrow(dim, start, length)


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:  # noqa: A002
    """`input` with `value` where `mask` is true, as `torch.masked_fill`."""
    return input.masked_fill(mask, value)


def _comparison(name: str, method: str):
    def fn(input, other) -> Tensor:  # noqa: A002
        return (
            getattr(input, method)(other)
            if isinstance(input, Tensor)
            else getattr(other, _FLIP[method])(input)
        )

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"The elementwise comparison `input.{method}(other)` (a bool tensor), as `torch.{name}`."
    return fn


_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
eq = _comparison("eq", "eq")
ne = _comparison("ne", "ne")
lt = _comparison("lt", "lt")
le = _comparison("le", "le")
gt = _comparison("gt", "gt")
ge = _comparison("ge", "ge")
greater = _comparison("greater", "gt")
greater_equal = _comparison("greater_equal", "ge")
less = _comparison("less", "lt")
less_equal = _comparison("less_equal", "le")
not_equal = _comparison("not_equal", "ne")


def _correction(op: str, unbiased, correction) -> float:
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: give unbiased or correction, not both")
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"{op}: unbiased must be True or False, got {unbiased!r:.40}")
        return 1.0 if unbiased else 0.0
    return 1.0 if correction is None else float(correction)


# ---------------------------------------------------------------------------- math


def _unbroadcast(g: Tensor, shape: Sequence[int]) -> Tensor:
    """`g` summed down to `shape` (the gradient of an operand that was broadcast)."""
    shape = tuple(shape)
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(list(range(lead)))
    dims = [i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1]
    return g.sum(dims, keepdim=True) if dims else g


class _Atan2(Function):
    """atan2's values composed from atan (quadrants and signed zeros as C's), with the
    closed-form gradient: d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2)."""

    @staticmethod
    def forward(ctx, y, x):
        ctx.save_for_backward(y, x)
        pi = math.pi
        one = _core.full([], 1.0, y.dtype).to(y.device)
        x_neg = one.copysign(x) < 0  # -0.0 counts as negative, as C's atan2
        base = (y / x).atan()  # x = +-0: +-pi/2 from y / 0 = +-inf
        out = _core.where(x_neg, base + one.copysign(y) * pi, base)
        both_zero = (y == 0) & (x == 0)
        out = _core.where(both_zero, _core.where(x_neg, one * pi, one * 0.0), out)
        both_inf = y.isinf() & x.isinf()
        out = _core.where(both_inf, _core.where(x_neg, one * (0.75 * pi), one * (0.25 * pi)), out)
        # the result has y's sign, -0.0 included (a device's atan may drop the sign of zero)
        return out.abs().copysign(y)

    @staticmethod
    def backward(ctx, g):
        y, x = ctx.saved_tensors
        r2 = x * x + y * y
        gy = gx = None
        if ctx.needs_input_grad[0]:
            gy = _unbroadcast(g * x / r2, y.shape)
        if ctx.needs_input_grad[1]:
            gx = _unbroadcast(-g * y / r2, x.shape)
        return gy, gx


def atan2(input, other) -> Tensor:  # noqa: A002
    """The angle of the point (other, input), in (-pi, pi], as `torch.atan2` (C's rules
    for zeros, signed zeros and infinities); differentiable in both."""
    y, x = _pair_args("atan2", input, other)
    if not y.dtype.is_floating_point:
        y = y.float()
    if not x.dtype.is_floating_point:
        x = x.float()
    return _Atan2.apply(y, x)


arctan2 = atan2


def hypot(input, other) -> Tensor:  # noqa: A002
    """sqrt(input^2 + other^2) without overflow or underflow in the squares, as `torch.hypot`."""
    a, b = _pair_args("hypot", input, other)
    a, b = a.abs(), b.abs()
    m = a.maximum(b)
    safe = _core.where(m == 0, _core.full([], 1.0, m.dtype).to(m.device), m)
    r = m * ((a / safe).square() + (b / safe).square()).sqrt()
    return _core.where(a.isinf() | b.isinf(), _core.full([], math.inf, r.dtype).to(r.device), r)


def xlogy(input, other) -> Tensor:  # noqa: A002
    """input * log(other), 0 where input is 0 (unless other is NaN), as `torch.xlogy`."""
    x, y = _pair_args("xlogy", input, other)
    zero = (x == 0) & ~y.isnan()
    one = _core.full([], 1.0, y.dtype if y.dtype.is_floating_point else _core.dtype.float32).to(y.device)
    y_safe = _core.where(zero, one, y)  # so the branch that is not taken has no NaN gradient
    return _core.where(zero, one * 0.0, x * y_safe.log())


def logit(input: Tensor, eps: float | None = None) -> Tensor:  # noqa: A002
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when `eps` is given, as `torch.logit`."""
    p = input if eps is None else input.clamp(eps, 1.0 - eps)
    return (p / (1.0 - p)).log()


def _finfo(dtype) -> np.finfo:
    names: dict[Any, Any] = {
        _core.dtype.float64: np.float64,
        _core.dtype.float32: np.float32,
        _core.dtype.float16: np.float16,
    }
    if dtype == _core.dtype.bfloat16:
        return np.finfo(np.float32)  # the same exponent range; max is its own (below)
    return np.finfo(names.get(dtype, np.float32))


def nan_to_num(input: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None):  # noqa: A002
    """`input` with NaN, +inf and -inf replaced (by 0 and the dtype's largest and lowest
    finite values unless given), as `torch.nan_to_num`; integers come back unchanged."""
    if not input.dtype.is_floating_point:
        return input.clone()
    big = float(_finfo(input.dtype).max)
    if input.dtype == _core.dtype.bfloat16:
        big = 3.3895313892515355e38
    hi = big if posinf is None else float(posinf)
    lo = -big if neginf is None else float(neginf)

    def const(v: float) -> Tensor:
        return _core.full([], v, input.dtype).to(input.device)

    out = _core.where(input.isnan(), const(float(nan)), input)
    out = _core.where(out == math.inf, const(hi), out)
    return _core.where(out == -math.inf, const(lo), out)


def sgn(input: Tensor) -> Tensor:  # noqa: A002
    """The sign (-1, 0 or 1), as `torch.sgn` for real tensors."""
    return input.sign()


def clamp_min(input: Tensor, min) -> Tensor:  # noqa: A002, A001
    """max(input, min) elementwise, as `torch.clamp_min`."""
    return input.clamp(min=min)


def clamp_max(input: Tensor, max) -> Tensor:  # noqa: A002, A001
    """min(input, max) elementwise, as `torch.clamp_max`."""
    return input.clamp(max=max)


def fmax(input, other) -> Tensor:  # noqa: A002
    """The elementwise maximum ignoring NaN (NaN only where both are), as `torch.fmax`."""
    a, b = _pair_args("fmax", input, other)
    m = a.maximum(b)
    return _core.where(a.isnan(), b, _core.where(b.isnan(), a, m))


def fmin(input, other) -> Tensor:  # noqa: A002
    """The elementwise minimum ignoring NaN, as `torch.fmin`."""
    a, b = _pair_args("fmin", input, other)
    m = a.minimum(b)
    return _core.where(a.isnan(), b, _core.where(b.isnan(), a, m))


def deg2rad(input: Tensor) -> Tensor:  # noqa: A002
    """Degrees to radians, as `torch.deg2rad`."""
    return (input if input.dtype.is_floating_point else input.float()) * (math.pi / 180.0)


def rad2deg(input: Tensor) -> Tensor:  # noqa: A002
    """Radians to degrees, as `torch.rad2deg`."""
    return (input if input.dtype.is_floating_point else input.float()) * (180.0 / math.pi)


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:  # noqa: A002
    """input + value * tensor1 * tensor2, as `torch.addcmul`."""
    return input + value * (tensor1 * tensor2)


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value=1) -> Tensor:  # noqa: A002
    """input + value * tensor1 / tensor2, as `torch.addcdiv`."""
    return input + value * (tensor1 / tensor2)


# ---------------------------------------------------------------------------- reductions


def trace(input: Tensor) -> Tensor:  # noqa: A002
    """The sum of the main diagonal of a 2-D tensor, as `torch.trace`."""
    if input.ndim != 2:
        raise ShapeError(f"trace: expected a 2-D tensor, got shape {tuple(input.shape)}")
    return input.diagonal().sum()


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:  # noqa: A002
    """The n-th forward difference along `dim` (after joining `prepend` and `append`), as
    `torch.diff`; bools give their xor."""
    if input.ndim == 0:
        raise ShapeError("diff: expected a tensor with at least one dim, got a 0-d tensor")
    if n < 0:
        raise ArgumentError(f"diff: n must be >= 0, got {n}")
    d = _dim("diff", dim, input.ndim)
    parts = [p for p in (prepend, input, append) if p is not None]
    x = _core.cat([_t(p, input) for p in parts], d) if len(parts) > 1 else input
    for _ in range(n):
        size = x.shape[d]
        if size == 0:
            break
        hi, lo = x.narrow(d, 1, size - 1), x.narrow(d, 0, size - 1)
        x = (hi != lo) if x.dtype == _core.dtype.bool else hi - lo
    return x


def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:  # noqa: A002
    """The cross product of 3-vectors along `dim` (by default the first dim of size 3), as
    `torch.cross`; the operands broadcast."""
    shape = np.broadcast_shapes(tuple(input.shape), tuple(other.shape))
    a, b = input.expand(*shape), other.expand(*shape)
    if dim is None:
        sized = [i for i, s in enumerate(shape) if s == 3]
        if not sized:
            raise ShapeError(f"cross: no dimension of size 3 in shape {shape}")
        d = sized[0]
    else:
        d = _dim("cross", dim, len(shape))
    if shape[d] != 3:
        raise ShapeError(f"cross: dim {d} has size {shape[d]}, not 3 (shape {shape})")
    a0, a1, a2 = (a.narrow(d, i, 1) for i in range(3))
    b0, b1, b2 = (b.narrow(d, i, 1) for i in range(3))
    return _core.cat([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], d)


def inner(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The sum of products over the last dims, as `torch.inner`: shape
    input.shape[:-1] + other.shape[:-1] (a product when either is 0-d)."""
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    k = input.shape[-1]
    if other.shape[-1] != k:
        raise ShapeError(f"inner: last dims differ: shapes {tuple(input.shape)} and {tuple(other.shape)}")
    out = input.reshape(-1, k) @ other.reshape(-1, k).transpose(0, 1)
    return out.reshape(*input.shape[:-1], *other.shape[:-1])


def dist(input: Tensor, other: Tensor, p: float = 2) -> Tensor:  # noqa: A002
    """The p-norm of input - other, as `torch.dist`."""
    return (input - other).norm(p)


def aminmax(input: Tensor, *, dim: int | None = None, keepdim: bool = False):  # noqa: A002
    """(min, max) over all elements or along `dim`, as `torch.aminmax`."""
    if dim is None:
        lo, hi = input.amin(None, keepdim), input.amax(None, keepdim)
    else:
        lo, hi = input.amin(dim, keepdim), input.amax(dim, keepdim)
    return return_types.aminmax(lo, hi)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):  # noqa: A002
    """The most frequent value along `dim` (the smallest among equally frequent ones) and
    the index of its last occurrence, as `torch.mode`: (values, indices)."""
    d = _dim("mode", dim, input.ndim)
    a = input.detach().cpu().numpy()
    a = np.moveaxis(a, d, -1) if input.ndim else a.reshape(1)
    if a.shape[-1] == 0:
        raise ArgumentError(f"mode: cannot take the mode over an empty dim of shape {tuple(input.shape)}")
    flat = a.reshape(-1, a.shape[-1])
    idx = np.empty(flat.shape[0], np.int64)
    for r, row in enumerate(flat):
        vals, counts = np.unique(row, return_counts=True)  # sorted: the first maximum is the smallest
        v = vals[np.argmax(counts)]
        hits = np.nonzero((row == v) | (np.isnan(row) & np.isnan(v)))[0]
        idx[r] = hits[-1]
    shaped = idx.reshape(a.shape[:-1])
    if keepdim and input.ndim:
        shaped = np.expand_dims(shaped, d)
    it = _idx(shaped)
    if input.ndim == 0:
        return return_types.mode(input.clone(), it.reshape())
    gathered = input.take_along_dim(_idx(np.expand_dims(shaped, d) if not keepdim else shaped), d)
    values = gathered if keepdim else gathered.squeeze(d)
    return return_types.mode(values, it)


# ---------------------------------------------------------------------------- indexing and shape


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False) -> Tensor:
    """Whether each of `elements` is among `test_elements` (a bool tensor), as `torch.isin`."""
    del assume_unique  # an optimization hint only
    e = elements if isinstance(elements, Tensor) else tensor(elements)
    t = (
        test_elements.detach().cpu().numpy()
        if isinstance(test_elements, Tensor)
        else np.asarray(test_elements)
    )
    return _mask(np.isin(e.detach().cpu().numpy(), t, invert=invert), e)


def ravel(input: Tensor) -> Tensor:  # noqa: A002
    """The elements as one dim (a view where possible), as `torch.ravel`."""
    return input.reshape(-1)


def argwhere(input: Tensor) -> Tensor:  # noqa: A002
    """The indices of the nonzero elements, one row each, as `torch.argwhere`."""
    return input.nonzero()


def select(input: Tensor, dim: int, index: int) -> Tensor:  # noqa: A002
    """The slice at `index` of `dim`, that dim removed (a view), as `torch.select`."""
    d = _dim("select", dim, input.ndim)
    n = input.shape[d]
    if not -n <= index < n:
        raise OutOfRangeError(f"select: index {index} is out of range for dim {d} of size {n}")
    return input.narrow(d, int(index) % n, 1).squeeze(d)


def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple[Tensor, ...]:  # noqa: A002
    """Views of `input` split along `dim`, as `torch.tensor_split`: into n near-equal parts
    (the first size % n one longer) for an int, or at the given indices for a sequence."""
    d = _dim("tensor_split", dim, input.ndim)
    size = input.shape[d]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = indices_or_sections.tolist()
    if isinstance(indices_or_sections, (int, np.integer)):
        n = int(indices_or_sections)
        if n <= 0:
            raise ArgumentError(f"tensor_split: sections must be >= 1, got {n}")
        q, r = divmod(size, n)
        bounds = np.cumsum([0] + [q + (i < r) for i in range(n)]).tolist()
    else:
        cuts = [int(i) for i in indices_or_sections]
        bounds = [0] + [min(max(c + size if c < 0 else c, 0), size) for c in cuts] + [size]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        lo = min(lo, size)
        out.append(input.narrow(d, lo, max(hi - lo, 0)))
    return tuple(out)


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:  # noqa: A002
    """`input` with `value` at positions `index` of `dim`, as `torch.index_fill` (a 0-d
    tensor `value` gets its gradient)."""
    d = _dim("index_fill", dim, input.ndim)
    n = input.shape[d] if input.ndim else 1
    ids = np.asarray(index.tolist() if isinstance(index, Tensor) else index, dtype=np.int64).reshape(-1)
    if ids.size and (ids.min() < -n or ids.max() >= n):
        raise OutOfRangeError(
            f"index_fill: an index in {ids.tolist()} is out of range for dim {d} of size {n}"
        )
    hit = np.zeros(n, bool)
    hit[ids % max(n, 1)] = True
    view = [1] * input.ndim
    if input.ndim:
        view[d] = n
    mask = _mask(hit.reshape(view), input)
    if isinstance(value, Tensor):
        if value.numel() != 1 or value.ndim:
            raise ArgumentError(
                f"index_fill: value must be a number or a 0-d tensor, got shape {tuple(value.shape)}"
            )
        return _core.where(mask, value.to(input.device, input.dtype), input)
    return input.masked_fill(mask, value)


def index_put(input: Tensor, indices: Sequence[Tensor], values, accumulate: bool = False) -> Tensor:  # noqa: A002
    """A copy of `input` with `values` (broadcast) at `input[indices]` (a tuple of index
    tensors, NumPy's advanced indexing), as `torch.index_put`: a position named twice takes
    the later value, or the sum of all of them with `accumulate`. Differentiable in both."""
    idx = tuple(indices)
    if not accumulate:
        out = input.clone()
        with no_grad():
            out[idx] = values if not isinstance(values, Tensor) else values.detach()
        if not (_core.is_grad_enabled() and (input.requires_grad or getattr(values, "requires_grad", False))):
            return out
        # the same placement, differentiably: the kept value of each position added into
        # input with that position cleared; as PyTorch's, every value (an overwritten one
        # too) gets the gradient of the position it names, through a term that is zero
        where_ = _positions(input, idx)
        hit = np.zeros(input.numel(), bool)
        flat = where_.reshape(-1)
        last = _last_of_flat(flat)
        hit[flat[last]] = True
        every = _t(values, input).type_as(input).expand(*where_.shape).reshape(-1)
        kept = np.zeros(flat.size, bool)
        kept[last] = True
        placed = _core.where(_mask(kept, every), every, _ZeroWithGradient.apply(every))
        cleared = input.masked_fill(_mask(hit.reshape(tuple(input.shape)), input), 0.0)
        added = placed._index_add_rows(0, _idx(flat), input.numel())
        return cleared + added.reshape(*input.shape)
    where_ = _positions(input, idx)
    vals = _t(values, input).expand(*where_.shape).reshape(-1)
    added = vals.type_as(input)._index_add_rows(0, _idx(where_.reshape(-1)), input.numel())
    return input + added.reshape(*input.shape)


def _positions(input: Tensor, idx: tuple) -> np.ndarray:
    """The flat positions `input[idx]` selects, shaped as the selection."""
    pos = _core.from_numpy(np.arange(input.numel(), dtype=np.int64).reshape(tuple(input.shape)))
    return pos[idx].numpy()


def _last_of_flat(flat: np.ndarray) -> np.ndarray:
    if flat.size == 0:
        return np.zeros(0, np.int64)
    first_from_end = np.unique(flat[::-1], return_index=True)[1]
    return np.sort(len(flat) - 1 - first_from_end)


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:  # noqa: A002
    """`input` rotated k quarter turns from dims[0] towards dims[1], as `torch.rot90`."""
    if len(dims) != 2:
        raise ArgumentError(f"rot90: dims must name two dimensions, got {dims}")
    a, b = _dim("rot90", dims[0], input.ndim), _dim("rot90", dims[1], input.ndim)
    if a == b:
        raise ArgumentError(f"rot90: dims must differ, got {dims}")
    k %= 4
    if k == 0:
        return input.clone()
    if k == 2:
        return input.flip([a, b])
    if k == 1:
        return input.flip([b]).transpose(a, b)
    return input.flip([a]).transpose(a, b)


def _at_least(x: Tensor, n: int) -> Tensor:
    while x.ndim < n:
        x = x.unsqueeze(0) if x.ndim == 0 or n == 2 else x.unsqueeze(-1)
    return x


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """Joined along dim 1 (dim 0 for 1-D), as `torch.hstack`."""
    ts = [_at_least(t, 1) for t in tensors]
    return _core.cat(ts, 0 if ts and ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """Joined along dim 0, 1-D tensors as rows, as `torch.vstack`."""
    return _core.cat([t.reshape(1, -1) if t.ndim < 2 else t for t in tensors], 0)


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """Joined along dim 2 (1-D as (1, n, 1), 2-D as (m, n, 1)), as `torch.dstack`."""
    out = []
    for t in tensors:
        if t.ndim < 2:
            t = t.reshape(1, -1, 1)
        elif t.ndim == 2:
            t = t.unsqueeze(-1)
        out.append(t)
    return _core.cat(out, 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """0-d and 1-D tensors as columns, joined along dim 1, as `torch.column_stack`."""
    return _core.cat([t.reshape(-1, 1) if t.ndim < 2 else t for t in tensors], 1)


# ---------------------------------------------------------------------------- methods only


def _inplace(name: str, fn):
    """`fn`'s result written back into `self`: PyTorch's in-place variant `name`."""

    def method(self, *args, **kwargs):
        if self.requires_grad and self.is_leaf and _core.is_grad_enabled():
            raise RuntimeError(
                f"{name}: a tensor that requires grad cannot be modified in place while grad mode is "
                "on (a leaf); wrap the update in no_grad()"
            )
        # under autograd from a copy: the rule of `fn` may read the values the write replaces
        src = self.clone() if self.requires_grad and _core.is_grad_enabled() else self
        out = fn(src, *args, **kwargs)
        if out.dtype.is_floating_point and not self.dtype.is_floating_point:
            raise DTypeError(
                f"{name}: the result has dtype {out.dtype}, which cannot be stored in place in a "
                f"tensor of dtype {self.dtype}"
            )
        self.copy_(out)
        return self

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In place: `{fn.__name__}`'s result written into this tensor."
    method.__signature__ = _self_signature(fn)  # type: ignore[attr-defined]
    return method


def _self_signature(fn) -> inspect.Signature:
    """`fn`'s signature with its first parameter named `self` (what stubtest reads)."""
    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    params[0] = params[0].replace(name="self", kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sig.replace(parameters=params)


def _random_fill(name: str, draw):
    def method(self, *args, generator=None, **kwargs):
        if generator is not None:
            raise ArgumentError(f"{name}: ferrograd has one generator per process; pass generator=None")
        if not self.dtype.is_floating_point:
            raise DTypeError(f"{name}: expected a floating-point tensor, got {self.dtype}")
        with no_grad():
            self.copy_(draw(self, *args, **kwargs))
        return self

    method.__name__ = method.__qualname__ = name
    method.__doc__ = draw.__doc__
    sig = _self_signature(draw)
    gen = inspect.Parameter("generator", inspect.Parameter.KEYWORD_ONLY, default=None)
    method.__signature__ = sig.replace(parameters=[*sig.parameters.values(), gen])  # type: ignore[attr-defined]
    return method


def _uniform(self: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """In place: values drawn uniformly from [a, b)."""
    return rand(*self.shape, dtype=self.dtype, device=self.device) * (b - a) + a


def _normal(self: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """In place: values drawn from N(mean, std^2)."""
    return randn(*self.shape, dtype=self.dtype, device=self.device) * std + mean


def _fill_diagonal(self: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """As `Tensor.fill_diagonal_`: every dim the same size, or a tall 2-D tensor (whose
    diagonal restarts below each square block with `wrap`)."""
    if self.ndim < 2:
        raise ShapeError(f"fill_diagonal_: expected at least 2 dims, got shape {tuple(self.shape)}")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise ShapeError(f"fill_diagonal_: all dims must have the same size, got {tuple(self.shape)}")
    shape = tuple(self.shape)
    hit = np.zeros(shape, bool)
    n = min(shape)
    hit[tuple(np.arange(n) for _ in shape)] = True
    if wrap and self.ndim == 2 and shape[0] > shape[1] + 1:
        step = shape[1] + 1
        for start in range(step, shape[0], step):
            rows = np.arange(start, min(start + shape[1], shape[0]))
            hit[rows, rows - start] = True
    return self.masked_fill(_mask(hit, self), fill_value)


def _new_tensor(self: Tensor, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor of `data`, with this tensor's dtype and device unless given."""
    t = data.detach().clone() if isinstance(data, Tensor) else tensor(data, dtype=dtype or self.dtype)
    t = t.to(device or self.device, dtype or self.dtype)
    return t.requires_grad_() if requires_grad else t


def _size_of(size) -> list[int]:
    if len(size) == 1 and isinstance(size[0], (list, tuple)):
        return list(size[0])
    return list(size)


def _new_empty(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor of `size` (zeros: ferrograd does not hand out uninitialized memory)."""
    t = zeros(*_size_of(size), dtype=dtype or self.dtype).to(device or self.device)
    return t.requires_grad_() if requires_grad else t


def _new_full(self: Tensor, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor of `size` filled with `fill_value`, with this tensor's dtype and device
    unless given."""
    t = _core.full(list(size), float(fill_value), dtype or self.dtype).to(device or self.device)
    return t.requires_grad_() if requires_grad else t


def _is_floating_point(self: Tensor) -> bool:
    """Whether the dtype is a floating-point one."""
    return self.dtype.is_floating_point


def _matrix_t(self: Tensor) -> Tensor:
    if self.ndim < 2:
        raise ShapeError(f"mT: expected a tensor with at least 2 dims, got shape {tuple(self.shape)}")
    return self.transpose(-2, -1)


def _h(self: Tensor) -> Tensor:
    if self.ndim not in (0, 2):
        raise ShapeError(f"H: expected a 0-d or 2-D tensor, got shape {tuple(self.shape)}; use mH")
    return self.transpose(0, 1) if self.ndim == 2 else self


_ENGINE: dict = {}


def _with_alpha(name: str):
    engine = _ENGINE[name]

    def method(self, other, *, alpha=1):
        return engine(self, other if alpha == 1 else other * alpha)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Elementwise {'sum' if name == 'add' else 'difference'} with `alpha * other`."
    return method


def _spread(name: str):
    engine = _ENGINE[name]

    def method(
        self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None, keepdims=None
    ):
        if isinstance(unbiased, (float, int)) and not isinstance(unbiased, bool) and correction is None:
            correction, unbiased = unbiased, None  # the engine's positional (dim, correction, keepdim)
        return engine(
            self, dim, _correction(name, unbiased, correction), keepdim, axis=axis, keepdims=keepdims
        )

    method.__name__ = method.__qualname__ = name
    method.__doc__ = engine.__doc__
    return method


def _install() -> None:
    """The functions as methods (never replacing one the engine defines, but `add`/`sub`
    take `alpha` and `var`/`std` take `unbiased`), the in-place variants and the matrix
    transposes."""
    g = globals()
    for name in __all__:
        if name not in _FUNCTIONS_ONLY and not hasattr(Tensor, name):
            setattr(Tensor, name, _method(g[name], name))
    if "add" not in _ENGINE:
        for name in ("add", "sub"):
            _ENGINE[name] = getattr(Tensor, name)
            setattr(Tensor, name, _with_alpha(name))
        for name in ("var", "std"):
            _ENGINE[name] = getattr(Tensor, name)
            setattr(Tensor, name, _spread(name))
    unary = {
        "exp_": Tensor.exp,
        "log_": Tensor.log,
        "sqrt_": Tensor.sqrt,
        "abs_": Tensor.abs,
        "neg_": Tensor.neg,
        "sigmoid_": Tensor.sigmoid,
        "tanh_": Tensor.tanh,
        "relu_": Tensor.relu,
        "square_": Tensor.square,
        "pow_": Tensor.pow,
        "clamp_min_": clamp_min,
        "clamp_max_": clamp_max,
        "addcmul_": addcmul,
        "addcdiv_": addcdiv,
        "lerp_": Tensor.lerp,
        "index_fill_": index_fill,
        "index_put_": index_put,
        "index_add_": index_add,
        "scatter_": scatter,
        "scatter_add_": scatter_add,
        "nan_to_num_": nan_to_num,
        "fill_diagonal_": _fill_diagonal,
    }
    for name, fn in unary.items():
        if not hasattr(Tensor, name):
            setattr(Tensor, name, _inplace(name, fn))
    fills = {"uniform_": _uniform, "normal_": _normal}
    for name, fn in fills.items():
        if not hasattr(Tensor, name):
            setattr(Tensor, name, _random_fill(name, fn))
    extra = {
        "new_tensor": _new_tensor,
        "new_empty": _new_empty,
        "new_full": _new_full,
    }
    for name, fn in extra.items():
        if not hasattr(Tensor, name):
            setattr(Tensor, name, fn)
    if not hasattr(Tensor, "nelement"):
        setattr(Tensor, "nelement", functools.wraps(Tensor.numel)(lambda self: self.numel()))  # noqa: B010
        setattr(Tensor, "is_floating_point", _is_floating_point)  # noqa: B010
        setattr(Tensor, "mT", property(_matrix_t, doc="The last two dims transposed (a view)."))  # noqa: B010
        setattr(Tensor, "mH", property(_matrix_t, doc="The last two dims transposed (real: as mT)."))  # noqa: B010
        setattr(Tensor, "H", property(_h, doc="The transpose of a 2-D tensor (real tensors)."))  # noqa: B010


_install()
