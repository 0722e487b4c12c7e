"""The fuzzed op surface: how each op is called, and what NumPy says it must do.

Each op has a call ``form`` (a method, a function, an operator, indexing, a builtin...)
and a reference ``ref(a, kw)`` over the NumPy side of the arguments (tensors are NumPy
arrays with the tensor's dtype; everything else is as given) that returns an
``check.Expect``. Dtype rules follow ferrograd's README: bool < int64 < float32 < float64,
the wider wins; Python numbers take the tensor's dtype (a float with an integer tensor gives
float32); ``/`` and ``**`` on integers give float32. Where ferrograd's documentation leaves a
choice open (PyTorch refuses what ferrograd computes, say) the reference accepts either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .check import EPS, FMAX, PV, SV, TV, Expect, anything, raises, value
from .spec import BIG_DIM, NP_DTYPE, RANK

F64 = np.float64
SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
# A creation of more bytes than this must fail (the worker's address space is 4 GiB).
ALLOC_LIMIT = 1 << 32

_erf = np.vectorize(math.erf, otypes=[F64])


class Bad(Exception):
    """Raised inside a reference to return an Expect at once (an invalid argument)."""

    def __init__(self, exp: Expect):
        super().__init__(exp.note)
        self.exp = exp


class NdArg:
    """A NumPy array passed where ferrograd expects something else (a wrong type)."""

    def __init__(self, arr: np.ndarray):
        self.arr = arr


@dataclass
class Op:
    """One fuzzed call: ``form`` and ``target`` say how it is made (see ``call``)."""

    name: str
    form: str
    target: str
    ref: Callable[..., Expect]


OPS: dict[str, Op] = {}


def op(name: str, form: str = "method", target: str | None = None):
    """Registers the decorated reference for an op."""

    def deco(fn):
        OPS[name] = Op(name, form, target or name, fn)
        return fn

    return deco


# ---------------------------------------------------------------------------- helpers


def is_t(x) -> bool:
    """Whether a reference argument stands for a tensor."""
    return isinstance(x, np.ndarray)


def dt(x) -> str | None:
    """The ferrograd dtype name of a tensor argument, "py<type>" for a Python number."""
    if is_t(x):
        return {"b": "bool", "i": "int64"}.get(x.dtype.kind, str(x.dtype))
    if isinstance(x, bool):
        return "pybool"
    if isinstance(x, int):
        return "pyint"
    if isinstance(x, float):
        return "pyfloat"
    return None


def is_num(x) -> bool:
    """Whether ``x`` is a Python number (bools included)."""
    return isinstance(x, (bool, int, float))


_CATEGORY = {"bool": 0, "int64": 1, "float32": 2, "float64": 2}


def promote(*xs, kind: str = "arith") -> str:
    """The result dtype of an elementwise op over tensors and Python numbers.

    ``kind`` "arith": as given (bool + bool is their or, bool * bool their and, PyTorch's);
    "div": integer results become float32; "cmp": as given (comparisons, where, bitwise
    ops)."""
    ts = [dt(x) for x in xs if is_t(x)]
    scal = [dt(x) for x in xs if is_num(x)]
    dims = [dt(x) for x in xs if is_t(x) and x.ndim > 0]
    if kind != "cmp" and dims and len(dims) < len(ts):
        # PyTorch's rule: a 0-d tensor decides the dtype only when its category (bool <
        # integer < float) is higher than the dimensioned operands'
        top = max(dims, key=RANK.__getitem__)
        ts = dims + [d for d in ts if _CATEGORY[d] > _CATEGORY[top]]
    if ts:
        base = max(ts, key=RANK.__getitem__)
        if "pyfloat" in scal and RANK[base] < RANK["float32"]:
            base = "float32"
        elif "pyint" in scal and base == "bool":
            base = "int64"
    else:  # numbers only: as fg.tensor() would make them
        base = "float32" if "pyfloat" in scal else "int64" if "pyint" in scal else "bool"
    if kind == "div" and RANK[base] < RANK["float32"]:
        base = "float32"
    return base


def as_dtype(x, d: str) -> np.ndarray:
    """A tensor argument or a Python number as an array of dtype ``d``; a number that does
    not fit (an int beyond int64 for an int64 result) raises Bad."""
    if is_t(x):
        return x.astype(NP_DTYPE[d])
    if d in ("int64", "bool") and isinstance(x, float):
        raise Bad(raises(note="float scalar for an integer result"))
    if d == "int64" and not isinstance(x, bool) and not I64_MIN <= x <= I64_MAX:
        raise Bad(raises(OverflowError, ValueError, TypeError, note="a Python int beyond int64"))
    with np.errstate(all="ignore"):
        return np.asarray(x, dtype=F64 if d.startswith("float") else None).astype(NP_DTYPE[d])


def bshape(*xs) -> tuple:
    """The broadcast shape of tensor arguments (numbers count as 0-d); Bad when none."""
    try:
        return tuple(np.broadcast_shapes(*[np.shape(x) if is_t(x) else () for x in xs]))
    except ValueError:
        raise Bad(raises(ValueError, note="shapes cannot be broadcast")) from None


def f64(x) -> np.ndarray:
    """float64 copy of an array."""
    return np.asarray(x, dtype=F64)


def finite_abs(x) -> np.ndarray:
    """|x| in float64 with NaN and infinities replaced by 0 (for error bounds)."""
    a = np.abs(f64(x))
    return np.where(np.isfinite(a), a, 0.0)


def sum_bounds(abs_sum, n: int, dtype: str):
    """(atol, amb) for a float sum of ``n`` terms whose magnitudes add to ``abs_sum``:
    a summation-order error bound, and where an intermediate may overflow."""
    d = dtype if dtype in EPS else "float64"
    atol = EPS[d] * np.asarray(abs_sum) * max(16.0, 4.0 * math.sqrt(max(n, 1)))
    amb = np.asarray(abs_sum) > FMAX[d] / 4
    return atol, amb


def fdt(d: str) -> str:
    """The float dtype an op on ``d`` gives: float64 stays, everything else is float32."""
    return "float64" if d == "float64" else "float32"


def int_arg(v, what: str = "argument") -> int:
    """``v`` as an int argument; Bad (TypeError) for other types."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise Bad(raises(TypeError, note=f"{what} must be an int"))
    return v


def norm_dim(d, nd: int, extra: int = 0) -> int:
    """A dim index in [-(nd+extra), nd+extra) normalized to >= 0; Bad otherwise."""
    d = int_arg(d, "dim")
    n = nd + extra
    if not -n <= d < n:
        raise Bad(raises(IndexError, OverflowError, note=f"dim {d} out of range for {nd} dims"))
    return d % n


def red_axes(x: np.ndarray, dim) -> tuple[tuple[int, ...], bool]:
    """(axes, lenient) for a reduction's ``dim``: None or () for all dims. ``lenient`` is set
    for dim 0 / -1 of a 0-d tensor, which PyTorch accepts and NumPy refuses."""
    nd = x.ndim
    if dim is None:
        return tuple(range(nd)), False
    ds = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    if not ds:
        return tuple(range(nd)), False
    if nd == 0:
        for d in ds:
            int_arg(d, "dim")
        if all(d in (0, -1) for d in ds):
            return (), True
        raise Bad(raises(IndexError, OverflowError, note="dim out of range for a 0-d tensor"))
    axes = [norm_dim(d, nd) for d in ds]
    if len(set(axes)) != len(axes):
        raise Bad(raises(ValueError, IndexError, note="repeated dim"))
    return tuple(axes), False


def keep(arr: np.ndarray, axes, keepdim: bool, nd: int) -> np.ndarray:
    """Reshapes a reduction over ``axes`` (computed with keepdims=True) to drop them."""
    if keepdim:
        return arr
    return arr.reshape([s for i, s in enumerate(arr.shape) if i not in axes]) if nd else arr.reshape(())


def tv(arr, dtypes, **kw) -> TV:
    """A TV whose float values are kept in float64."""
    arr = None if arr is None else np.asarray(arr)
    if arr is not None and arr.dtype.kind == "f":
        arr = arr.astype(F64)
    return TV(arr, tuple([dtypes] if isinstance(dtypes, str) else dtypes), **kw)


def cast_scalar_to(v, d: str):
    """A Python number or 0-d array written into a tensor of dtype ``d`` (fill_, masked_fill,
    setitem): (array, ambiguous). Floats into integers truncate; NaN or infinity into an
    integer tensor, or an int beyond int64, is ambiguous (either refused or anything)."""
    if is_t(v):
        v = v.reshape(()).item() if v.size == 1 else v
    if d == "bool":
        return np.asarray(bool(v) if is_num(v) else v, dtype=np.bool_), False
    if d == "int64":
        if isinstance(v, float) and not math.isfinite(v):
            return np.asarray(0, dtype=np.int64), True
        iv = int(v)
        if not I64_MIN <= iv <= I64_MAX:
            return np.asarray(0, dtype=np.int64), True
        return np.asarray(iv, dtype=np.int64), False
    with np.errstate(all="ignore"):
        return np.asarray(float(v)).astype(NP_DTYPE[d]).astype(F64), False


# ---------------------------------------------------------------------------- creation


def parse_sizes(args, allow_scalar_list: bool = True) -> list[int]:
    """The size list of a creation call, as ferrograd's Python layer reads it; Bad for
    types, negative dims, and sizes that cannot be allocated."""
    size = args
    if allow_scalar_list and len(size) == 1 and isinstance(size[0], (list, tuple)):
        size = list(size[0])
    out = []
    for s in size:
        if isinstance(s, bool) or not isinstance(s, int):
            raise Bad(raises(TypeError, note="sizes must be ints"))
        out.append(s)
    return out


def check_alloc(shape: list[int], itemsize: int, note: str = "") -> None:
    """Bad when ``shape`` has a negative dim or more bytes than can be allocated."""
    big = any(s > I64_MAX or s < I64_MIN for s in shape)
    if any(s < 0 for s in shape):
        raise Bad(raises(ValueError, *((OverflowError,) if big else ()), note="negative dimension"))
    if big and 0 not in shape:
        raise Bad(raises(OverflowError, ValueError, MemoryError, note="size beyond int64"))
    if big or overflowing(shape):  # an empty tensor with impossible dims: refusing it is fine
        raise Bad(anything(note="size beyond int64 next to a zero dim"))
    if 0 not in shape and math.prod(shape) * itemsize > ALLOC_LIMIT:
        raise Bad(raises(MemoryError, ValueError, OverflowError, note=f"{note} too large to allocate"))


def dtype_kw(kw, default: str = "float32") -> str:
    """The dtype named by a ``dtype=`` keyword (None: ``default``)."""
    d = kw.get("dtype")
    if d is None:
        return default
    if not isinstance(d, str):
        raise Bad(anything(note="odd dtype"))
    return d


def dev_of(kw) -> str:
    """The device a creation call asks for."""
    return kw.get("device") or "cpu"


def created(arr, d: str, kw, **extra) -> Expect:
    """The Expect of a creation: int64 results stay on the CPU when the GPU is asked for."""
    dev = dev_of(kw)
    device = None if dev == "cpu" else ("gpu" if d in ("float32", "bool") else None)
    either = dev != "cpu" and d not in ("float32", "bool")
    return value(tv(arr, d, device=device, **extra), either=either)


def _creation(fill):
    def ref(a, kw):
        d = dtype_kw(kw)
        shape = parse_sizes(a)
        check_alloc(shape, np.dtype(NP_DTYPE[d]).itemsize)
        if any(s > BIG_DIM for s in shape):
            return created(None, d, kw, shape=tuple(shape))
        return created(np.full(shape, fill, dtype=NP_DTYPE[d]), d, kw)

    return ref


op("zeros", "func", "fg.zeros")(_creation(0))
op("ones", "func", "fg.ones")(_creation(1))


@op("full", "func", "fg.full")
def _ref_full(a, kw):
    size, fill = a[0], a[1]
    if isinstance(fill, bool):
        d0 = "bool"
    elif isinstance(fill, int):
        d0 = "int64"
    elif isinstance(fill, float):
        d0 = "float32"
    else:
        return anything()
    d = dtype_kw(kw, d0)
    shape = [size] if isinstance(size, int) and not isinstance(size, bool) else size
    if not isinstance(shape, (list, tuple)):
        raise Bad(raises(TypeError))
    shape = parse_sizes(list(shape), allow_scalar_list=False)
    check_alloc(shape, np.dtype(NP_DTYPE[d]).itemsize)
    v, amb = cast_scalar_to(fill, d)
    if amb:
        return anything(note="fill value does not fit the dtype")
    if any(s > BIG_DIM for s in shape):
        return created(None, d, kw, shape=tuple(shape))
    return created(np.full(shape, v, dtype=v.dtype), d, kw)


@op("arange", "func", "fg.arange")
def _ref_arange(a, kw):
    args = list(a)
    if len(args) == 1:
        args = [0, args[0]]
    start, end, step = (args + [1])[:3]
    for v in (start, end, step):
        if not is_num(v):
            raise Bad(raises(TypeError))
    ints = all(isinstance(v, int) for v in (start, end, step))
    d = dtype_kw(kw, "int64" if ints else "float32")
    fs, fe, fst = (float(start), float(end), float(step))
    if not all(map(math.isfinite, (fs, fe, fst))) or fst == 0:
        return raises(ValueError, note="step zero or a non-finite bound")
    if (fe - fs) * fst < 0:
        return raises(ValueError, note="a step pointing away from the end (PyTorch refuses)")
    n = max(0, math.ceil((fe - fs) / fst))
    if n * 8 > ALLOC_LIMIT:
        return raises(MemoryError, ValueError, OverflowError, note="too many elements")
    if d == "bool":
        return anything()
    q = (fe - fs) / fst
    borderline = abs(q - round(q)) <= 1e-9 * max(1.0, abs(q)) and not ints
    vals = fs + np.arange(n, dtype=F64) * fst
    if ints and d == "int64":
        if max(abs(start), abs(end)) > 2**53:
            return anything(note="huge int bounds")
        vals = np.arange(start, end, step, dtype=np.int64)
    elif d == "int64":
        return anything(note="float bounds with an int64 dtype")
    atol = EPS["float32"] * (abs(fs) + n * abs(fst)) * 4
    exp = created(vals, d, kw, atol=atol, rtol=1e-5)
    if borderline:
        exp.either = True
        exp.kind = "any"
    return exp


@op("linspace", "func", "fg.linspace")
def _ref_linspace(a, kw):
    start, end, steps = a
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        return raises(ValueError, TypeError)
    if steps * 8 > ALLOC_LIMIT:
        return raises(MemoryError, ValueError, OverflowError)
    d = dtype_kw(kw)
    if d not in ("float32", "float64") or not (math.isfinite(start) and math.isfinite(end)):
        return anything()
    vals = np.linspace(float(start), float(end), steps)
    return created(vals, d, kw, atol=EPS[d] * (abs(start) + abs(end)) * 4)


@op("eye", "func", "fg.eye")
def _ref_eye(a, kw):
    n = int_arg(a[0], "n")
    m = n if len(a) < 2 or a[1] is None else int_arg(a[1], "m")
    d = dtype_kw(kw)
    check_alloc([n, m], np.dtype(NP_DTYPE[d]).itemsize)
    if n > BIG_DIM or m > BIG_DIM:
        return created(None, d, kw, shape=(n, m))
    return created(np.eye(n, m, dtype=NP_DTYPE[d]), d, kw)


def _in_unit(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(t):
        x = t.numpy().astype(F64)
        if x.size and not (np.isfinite(x).all() and x.min() >= lo and x.max() < hi):
            return f"values outside [{lo}, {hi}): min {x.min()}, max {x.max()}"
        return None

    return check


def _random(lo: float, hi: float):
    def ref(a, kw):
        d = dtype_kw(kw)
        shape = parse_sizes(a)
        if d not in ("float32", "float64"):
            return anything(note="random floats of a non-float dtype")
        check_alloc(shape, np.dtype(NP_DTYPE[d]).itemsize)
        if any(s > BIG_DIM for s in shape):
            return created(None, d, kw, shape=tuple(shape))
        return created(None, d, kw, shape=tuple(shape), check=_in_unit(lo, hi))

    return ref


op("rand", "func", "fg.rand")(_random(0.0, 1.0))
op("randn", "func", "fg.randn")(_random(-np.inf, np.inf))


@op("randint", "func", "fg.randint")
def _ref_randint(a, kw):
    low, high = a[0], a[1]
    size = kw.get("size", ())
    for v in (low, high):
        int_arg(v, "bound")
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size]
    if not isinstance(size, (list, tuple)):
        raise Bad(raises(TypeError))
    shape = parse_sizes(list(size), allow_scalar_list=False)
    if any(not I64_MIN <= v <= I64_MAX for v in (low, high)):
        return raises(OverflowError, ValueError, note="bound beyond int64")
    if high <= low:
        return raises(ValueError)
    check_alloc(shape, 8)
    if any(s > BIG_DIM for s in shape):
        return value(tv(None, "int64", shape=tuple(shape)))

    def check(t):
        x = t.numpy()
        if x.size and (x.min() < low or x.max() >= high):
            return f"values outside [{low}, {high}): min {x.min()}, max {x.max()}"
        return None

    return value(tv(None, "int64", shape=tuple(shape), check=check))


@op("randperm", "func", "fg.randperm")
def _ref_randperm(a, kw):
    n = int_arg(a[0], "n")
    check_alloc([n], 8)

    def check(t):
        x = t.numpy()
        if not np.array_equal(np.sort(x), np.arange(n)):
            return "not a permutation of 0..n-1"
        return None

    return value(tv(None, "int64", shape=(n,), check=check))


def _leaves(x, out):
    if isinstance(x, (list, tuple)):
        for y in x:
            _leaves(y, out)
    else:
        out.append(x)
    return out


@op("tensor", "func", "fg.tensor")
def _ref_tensor(a, kw):
    data = a[0]
    leaves = _leaves(data, [])
    if any(not is_num(v) for v in leaves):
        return raises(TypeError, ValueError, note="non-numeric data")
    try:
        with np.errstate(all="ignore"):
            arr = np.array(data, dtype=object)
    except ValueError:
        return raises(ValueError, note="ragged data")
    if arr.dtype != object or any(isinstance(v, (list, tuple)) for v in arr.reshape(-1)):
        return raises(ValueError, note="ragged data")
    kinds = {dt(v) for v in leaves}
    d0 = "float32" if "pyfloat" in kinds else "int64" if "pyint" in kinds else "bool" if leaves else "float32"
    d = dtype_kw(kw, d0)
    ints = [v for v in leaves if isinstance(v, int) and not isinstance(v, bool)]
    if any(not I64_MIN <= v <= I64_MAX for v in ints):
        if d == "int64" or (d0 == "int64" and "dtype" not in kw):
            return raises(OverflowError, ValueError, TypeError, note="int beyond int64")
        return anything(note="int beyond int64 converted to float")
    if d in ("int64", "bool") and any(isinstance(v, float) and not math.isfinite(v) for v in leaves):
        return anything(note="NaN or infinity into an integer dtype")
    if d == "int64":
        if any(isinstance(v, float) and not -(2.0**63) <= v < 2.0**63 for v in leaves):
            return Expect("any", extra=(OverflowError,), note="a float beyond int64 into int64")
        vals = np.array([int(v) for v in leaves], dtype=np.int64).reshape(arr.shape)
    elif d == "bool":
        vals = np.array([bool(v) for v in leaves], dtype=np.bool_).reshape(arr.shape)
    else:
        with np.errstate(all="ignore"):
            vals = np.array([float(v) for v in leaves], dtype=F64).reshape(arr.shape)
            vals = vals.astype(NP_DTYPE[d]).astype(F64)
    return value(tv(vals, d, rtol=0.0, atol=0.0))


# ---------------------------------------------------------------------------- views


def np_can_view(x: np.ndarray, shape) -> bool:
    """Whether NumPy can give ``x`` the new ``shape`` without a copy."""
    v = x.view()
    try:
        v.shape = shape
    except (AttributeError, ValueError):
        return False
    return True


def reshape_target(x: np.ndarray, args) -> list[int]:
    """The shape a reshape/view call asks for, -1 resolved; Bad when invalid."""
    shape = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
    for s in shape:
        int_arg(s, "size")
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise Bad(raises(ValueError, OverflowError, note="invalid shape"))
    if any(s > I64_MAX for s in shape):
        raise Bad(raises(ValueError, OverflowError, MemoryError, note="size beyond int64"))
    known = math.prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or x.size % known:
            raise Bad(raises(ValueError, note="-1 cannot be inferred"))
        shape[shape.index(-1)] = x.size // known
    elif known != x.size:
        raise Bad(raises(ValueError, note="element count differs"))
    return shape


def overflowing(shape) -> bool:
    """Whether the nonzero dims of ``shape`` multiply past 2**59 (ferrograd may refuse such
    a shape even with a zero dim; PyTorch does too)."""
    return math.prod(s for s in shape if s) > 2**59


def _reshape(view_only: bool):
    def ref(a, kw):
        x = a[0]
        shape = reshape_target(x, a[1:])
        if any(s > BIG_DIM for s in shape) or x.size == 0:
            return value(tv(None, dt(x), shape=tuple(shape)), either=overflowing(shape))
        viewable = np_can_view(x, shape)
        alias = 0 if viewable else None
        exp = value(tv(x.reshape(shape), dt(x), alias=alias if (viewable or view_only) else None))
        if view_only and not viewable:
            exp.either = True
            exp.value.alias = 0
        return exp

    return ref


op("reshape")(_reshape(False))
op("view")(_reshape(True))


@op("transpose")
def _ref_transpose(a, kw):
    x, d0, d1 = a[0], a[1], a[2]
    if x.ndim == 0:
        int_arg(d0), int_arg(d1)
        if d0 in (0, -1) and d1 in (0, -1):
            return value(tv(x, dt(x)), either=True)
        return raises(IndexError)
    i, j = norm_dim(d0, x.ndim), norm_dim(d1, x.ndim)
    return value(tv(np.swapaxes(x, i, j), dt(x), alias=0))


@op("permute")
def _ref_permute(a, kw):
    x = a[0]
    dims = list(a[1]) if len(a) == 2 and isinstance(a[1], (list, tuple)) else list(a[1:])
    if len(dims) != x.ndim:
        return raises(ValueError, IndexError, note="permute needs one entry per dim")
    if x.ndim == 0:
        return value(tv(x, dt(x), alias=0))
    nd = [norm_dim(d, x.ndim) for d in dims]
    if sorted(nd) != list(range(x.ndim)):
        return raises(ValueError, IndexError, note="not a permutation")
    return value(tv(np.transpose(x, nd), dt(x), alias=0))


@op("expand")
def _ref_expand(a, kw):
    x = a[0]
    sizes = list(a[1]) if len(a) == 2 and isinstance(a[1], (list, tuple)) else list(a[1:])
    for s in sizes:
        int_arg(s, "size")
    if len(sizes) < x.ndim:
        return raises(ValueError, note="fewer sizes than dims")
    lead = len(sizes) - x.ndim
    out = []
    for i, s in enumerate(sizes):
        if i < lead:
            if s < 0:
                return raises(ValueError, OverflowError, note="negative new dim")
            out.append(s)
            continue
        old = x.shape[i - lead]
        if s == -1:
            out.append(old)
        elif s < 0 or (old != 1 and s != old):
            return raises(ValueError, OverflowError, note="cannot expand")
        else:
            out.append(s)
    if any(s > I64_MAX for s in out):
        return raises(ValueError, OverflowError, MemoryError)
    if any(s > BIG_DIM for s in out) or math.prod(out) > 10**7:
        return value(
            tv(None, dt(x), shape=tuple(out), alias=0 if math.prod(out) else None), either=overflowing(out)
        )
    return value(tv(np.broadcast_to(x, out), dt(x), alias=0))


@op("narrow")
def _ref_narrow(a, kw):
    x, dim, start, length = a[0], a[1], a[2], a[3]
    if x.ndim == 0:
        return raises(IndexError, ValueError)
    d = norm_dim(dim, x.ndim)
    int_arg(start), int_arg(length)
    size = x.shape[d]
    lenient = False
    if start < 0:
        if start < -size:
            return raises(IndexError, ValueError, OverflowError)
        start += size
        lenient = True  # the stub says start >= 0; PyTorch wraps a negative start
    if length < 0 or start + length > size:
        return raises(IndexError, ValueError, OverflowError, note="range out of bounds")
    sl = [slice(None)] * x.ndim
    sl[d] = slice(start, start + length)
    return value(tv(x[tuple(sl)], dt(x), alias=0), either=lenient)


@op("unsqueeze")
def _ref_unsqueeze(a, kw):
    x = a[0]
    d = norm_dim(a[1], x.ndim, extra=1)
    return value(tv(np.expand_dims(x, d), dt(x), alias=0))


@op("squeeze")
def _ref_squeeze(a, kw):
    x = a[0]
    dim = a[1] if len(a) > 1 else kw.get("dim")
    if dim is None:
        return value(tv(np.squeeze(x), dt(x), alias=0))
    if isinstance(dim, (list, tuple)):
        return anything(note="squeeze over several dims")
    if x.ndim == 0:
        int_arg(dim)
        return value(tv(x, dt(x)), either=True) if dim in (0, -1) else raises(IndexError)
    d = norm_dim(dim, x.ndim)
    out = np.squeeze(x, d) if x.shape[d] == 1 else x
    return value(tv(out, dt(x), alias=0))


@op("flatten")
def _ref_flatten(a, kw):
    x = a[0]
    start = a[1] if len(a) > 1 else kw.get("start_dim", 0)
    end = a[2] if len(a) > 2 else kw.get("end_dim", -1)
    if x.ndim == 0:
        int_arg(start), int_arg(end)
        if start in (0, -1) and end in (0, -1):
            return value(tv(x.reshape(1), dt(x), alias=0))
        return raises(IndexError)
    s, e = norm_dim(start, x.ndim), norm_dim(end, x.ndim)
    if s > e:
        return raises(ValueError, IndexError)
    shape = list(x.shape[:s]) + [math.prod(x.shape[s : e + 1])] + list(x.shape[e + 1 :])
    alias = 0 if np_can_view(x, shape) else None
    return value(tv(x.reshape(shape), dt(x), alias=alias))


# One call returns at most this many tensors (MAX_PIECES in rust/core/src/ops/index.rs);
# beyond, a MemoryError (an expanded dim can ask for billions of views).
MAX_PIECES = 1 << 24


def _many_pieces(n: int) -> Expect | None:
    """The expected refusal of a call that would return `n` tensors, if too many."""
    return raises(MemoryError, note=f"{n} pieces") if n > MAX_PIECES else None


def _pieces(x: np.ndarray, d: int, sizes: list[int]) -> Expect:
    out, at = [], 0
    for s in sizes:
        sl = [slice(None)] * x.ndim
        sl[d] = slice(at, at + s)
        out.append(tv(x[tuple(sl)], dt(x), alias=0))
        at += s
    return value(SV(out))


@op("split")
def _ref_split(a, kw):
    x, what = a[0], a[1]
    dim = a[2] if len(a) > 2 else kw.get("dim", 0)
    if x.ndim == 0:
        return raises(IndexError, ValueError)
    d = norm_dim(dim, x.ndim)
    size = x.shape[d]
    if isinstance(what, (list, tuple)):
        sizes = [int_arg(s, "section") for s in what]
        if any(s < 0 for s in sizes) or sum(sizes) != size:
            return raises(ValueError, TypeError, note="sections do not add up")
        return _pieces(x, d, sizes)
    n = int_arg(what, "split size")
    if n <= 0:
        return raises(ValueError) if size else anything(note="split size 0 of an empty dim")
    if size == 0:
        return anything(note="split of an empty dim")
    return _many_pieces(-(-size // n)) or _pieces(x, d, [min(n, size - i) for i in range(0, size, n)])


@op("chunk")
def _ref_chunk(a, kw):
    x, chunks = a[0], a[1]
    dim = a[2] if len(a) > 2 else kw.get("dim", 0)
    chunks = int_arg(chunks, "chunks")
    if x.ndim == 0:
        return raises(IndexError, ValueError)
    d = norm_dim(dim, x.ndim)
    if chunks <= 0:
        return raises(ValueError)
    size = x.shape[d]
    if size == 0:
        return anything(note="chunk of an empty dim")
    n = -(-size // chunks)
    return _many_pieces(-(-size // n)) or _pieces(x, d, [min(n, size - i) for i in range(0, size, n)])


@op("unbind")
def _ref_unbind(a, kw):
    x = a[0]
    dim = a[1] if len(a) > 1 else kw.get("dim", 0)
    if x.ndim == 0:
        return raises(IndexError, ValueError, note="unbind of a 0-d tensor")
    d = norm_dim(dim, x.ndim)
    many = _many_pieces(x.shape[d])
    return many or value(SV([tv(np.take(x, i, axis=d), dt(x), alias=0) for i in range(x.shape[d])]))


@op("t")
def _ref_t(a, kw):
    x = a[0]
    if x.ndim > 2:
        return raises(ValueError, IndexError)
    return value(tv(x.T, dt(x), alias=0 if x.ndim else None))


@op("T", "attr")
def _ref_T(a, kw):
    x = a[0]
    return value(tv(np.transpose(x), dt(x), alias=0 if x.ndim else None))


@op("contiguous")
def _ref_contiguous(a, kw):
    x = a[0]
    return value(tv(x, dt(x), check=lambda t: None if t.is_contiguous() else "result is not contiguous"))


@op("clone")
def _ref_clone(a, kw):
    x = a[0]
    return value(tv(x, dt(x), rtol=0.0, atol=0.0))


@op("repeat")
def _ref_repeat(a, kw):
    x = a[0]
    reps = list(a[1]) if len(a) == 2 and isinstance(a[1], (list, tuple)) else list(a[1:])
    for r in reps:
        int_arg(r, "repeat")
    if len(reps) < x.ndim:
        return raises(ValueError)
    if any(r < 0 for r in reps):
        return raises(ValueError, OverflowError)
    shape = [1] * (len(reps) - x.ndim) + list(x.shape)
    out = [s * r for s, r in zip(shape, reps)]
    check_alloc(out, x.itemsize)
    if any(s > BIG_DIM for s in out):
        return value(tv(None, dt(x), shape=tuple(out)))
    return value(tv(np.tile(x.reshape(shape), reps), dt(x)))


# ---------------------------------------------------------------------------- indexing


def _key_items(key) -> list:
    return list(key) if isinstance(key, tuple) else [key]


def _advanced(item) -> bool:
    return is_t(item) or isinstance(item, list)


def np_key(item):
    """A key item as NumPy reads it (int64 tensors and lists as index arrays)."""
    if isinstance(item, list):
        return np.asarray(
            item, dtype=np.bool_ if item and all(isinstance(v, bool) for v in item) else np.int64
        )
    return item


@op("getitem", "getitem")
def _ref_getitem(a, kw):
    x, key = a[0], a[1]
    items = _key_items(key)
    for it in items:
        if isinstance(it, float) or (is_t(it) and it.dtype.kind == "f"):
            return raises(IndexError, TypeError, note="float index")
        if isinstance(it, slice):
            for v in (it.start, it.stop, it.step):
                if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                    return raises(TypeError, IndexError, ValueError)
            if it.step is not None and it.step <= 0:
                return anything() if it.step < 0 else raises(ValueError, IndexError)
        if isinstance(it, int) and not isinstance(it, bool) and not I64_MIN <= it <= I64_MAX:
            return raises(IndexError, OverflowError)
    if sum(isinstance(it, bool) for it in items) > 1:
        return anything(note="several bool scalars: NumPy merges them into one dim, PyTorch may not")
    adv = [it for it in items if _advanced(it)]
    lenient = bool(adv) and (isinstance(key, tuple) or any(isinstance(it, bool) for it in items))
    if any(isinstance(it, bool) for it in items):
        lenient = True
    try:
        with np.errstate(all="ignore"):
            out = x[tuple(np_key(it) for it in items)] if isinstance(key, tuple) else x[np_key(key)]
    except IndexError:
        return raises(IndexError, ValueError, note="NumPy refuses the index")
    out = np.asarray(out)
    if lenient:
        return value(tv(out, dt(x)), either=True, note="advanced index beyond the first dim")
    return value(tv(out, dt(x), alias=None if adv else 0))


def _setitem_value(x, key, v) -> Expect:
    items = _key_items(key)
    if any(isinstance(it, float) for it in items):
        return raises(IndexError, TypeError)
    for it in items:
        if isinstance(it, slice) and it.step is not None and it.step <= 0:
            return anything()
    lenient = any(_advanced(it) for it in items) and isinstance(key, tuple)
    lenient = lenient or any(isinstance(it, bool) for it in items)
    d = dt(x)
    new = x.copy() if x.flags.writeable else np.array(x)
    if is_t(v) and dt(v) != d:
        lenient = True
    if is_num(v) or (is_t(v) and v.ndim == 0):
        cv, amb = cast_scalar_to(v, d)
        if amb:
            return anything(note="value does not fit the dtype")
    elif is_t(v):
        cv = v
        if d == "int64" and v.dtype.kind == "f" and not np.isfinite(v).all():
            return anything()
    else:
        return anything()
    try:
        with np.errstate(all="ignore"):
            nk = tuple(np_key(it) for it in items) if isinstance(key, tuple) else np_key(key)
            new[nk] = cv
    except (IndexError, ValueError, OverflowError):
        return raises(IndexError, ValueError, OverflowError)
    target = np.shape(x[nk])
    if is_t(v) and v.ndim > len(target):
        lenient = True  # NumPy drops leading 1s of the value; PyTorch refuses
    return value(tv(new, d), either=lenient or not x.flags.writeable)


@op("setitem", "setitem")
def _ref_setitem(a, kw):
    return _setitem_value(a[0], a[1], a[2])


# ---------------------------------------------------------------------------- unary


def _unary(name: str, fn, int_out=None, bool_out=None, *, exact=False, amb_fn=None, params=None):
    """Registers a unary method: ``fn`` over float64; ``int_out``/``bool_out`` are the dtypes
    accepted for int64/bool input (float32 when None); ``exact`` computes int results in
    int64; ``amb_fn(x, *params)`` marks ambiguous positions."""

    def ref(a, kw):
        x = a[0]
        args = list(a[1:]) + [kw[k] for k in (params or []) if k in kw]
        d = dt(x)
        outs = {"int64": int_out, "bool": bool_out}.get(d) or (d if d.startswith("float") else "float32",)
        outs = tuple([outs] if isinstance(outs, str) else outs)
        with np.errstate(all="ignore"):
            if exact and d in ("int64", "bool") and outs[0] in ("int64", "bool"):
                res = fn(x.astype(np.int64), *args)
                return value(tv(res, outs))
            res = fn(f64(x), *args)
        amb = amb_fn(f64(x), *args) if amb_fn else None
        return value(tv(res, outs, amb=amb))

    op(name)(ref)
    return ref


def _edge(x, *a):
    return np.abs(x) > FMAX["float32"] / 4


def _zero_nonfinite(x, p=1.0):
    return (x == 0) & (not math.isfinite(p))


_unary("neg", np.negative, "int64", ("float32", "int64"), exact=True)
_unary("exp", np.exp)
_unary("log", np.log)
_unary("sqrt", np.sqrt)
_unary("abs", np.abs, "int64", ("float32", "int64", "bool"), exact=True)
_unary("tanh", np.tanh)
_unary("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)))
_unary(
    "relu", lambda x: np.where(np.isnan(x), x, np.maximum(x, 0.0)), ("float32", "int64"), ("float32", "bool")
)
_unary(
    "selu",
    lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
    amb_fn=_edge,
)
_unary(
    "elu",
    lambda x, al=1.0: np.where(x > 0, x, al * np.expm1(np.minimum(x, 0))),
    amb_fn=lambda x, al=1.0: _edge(x) | _zero_nonfinite(x, al),
    params=["alpha"],
)
_unary(
    "leaky_relu",
    lambda x, s=0.01: np.where(x > 0, x, s * x),
    amb_fn=lambda x, s=0.01: _zero_nonfinite(x, s),
    params=["negative_slope"],
)
_unary(
    "sign", lambda v: np.nan_to_num(np.sign(v), nan=0.0), "int64", ("int64", "bool"), exact=True
)  # PyTorch: sign(NaN) = 0
_unary("square", np.square, "int64", ("int64", "bool"), exact=True)
_unary("reciprocal", lambda x: 1.0 / x)
_unary("rsqrt", lambda x: 1.0 / np.sqrt(x))
for _n, _f in (("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite)):
    _unary(_n, _f, "bool", "bool")
    OPS[_n].ref = (lambda f: lambda a, kw: value(tv(f(f64(a[0])), "bool")))(_f)
op("logical_not")(lambda a, kw: value(tv(f64(a[0]) == 0, "bool")))


@op("gelu")
def _ref_gelu(a, kw):
    x = a[0]
    approx = a[1] if len(a) > 1 else kw.get("approximate", "none")
    if approx not in ("none", "tanh"):
        return raises(ValueError, TypeError)
    d = dt(x)
    with np.errstate(all="ignore"):
        v = f64(x)
        if approx == "none":
            res = 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)))
        else:
            res = 0.5 * v * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (v + 0.044715 * v**3)))
    amb = np.isinf(v) | _edge(v)
    return value(tv(res, fdt(d), amb=amb, atol=2e-6 if d != "float64" else 1e-12))


@op("clamp")
def _ref_clamp(a, kw):
    x = a[0]
    lo = a[1] if len(a) > 1 else kw.get("min")
    hi = a[2] if len(a) > 2 else kw.get("max")
    if lo is None and hi is None:
        return raises(ValueError, TypeError)
    for b in (lo, hi):
        if b is not None and not is_num(b):
            return raises(TypeError)
    d = dt(x)
    outs = (d,) if d.startswith("float") else ("float32", "int64")
    rd = d if d.startswith("float") else "float32"
    with np.errstate(all="ignore"):
        v = f64(x)
        if lo is not None:
            lo_v = float(as_dtype(float(lo), rd))
            v = np.where(np.isnan(v), v, np.maximum(v, lo_v))
        if hi is not None:
            hi_v = float(as_dtype(float(hi), rd))
            v = np.where(np.isnan(v), v, np.minimum(v, hi_v))
    return value(tv(v, outs))


def _cast(target: str):
    def ref(a, kw):
        x = a[0]
        d = dt(x)
        if target == "int64" and d.startswith("float"):
            v = f64(x)
            amb = ~np.isfinite(v) | (np.abs(v) >= 2.0**63)
            with np.errstate(all="ignore"):
                res = np.where(amb, 0, np.trunc(v)).astype(np.int64)
            return value(tv(res, "int64", amb=amb))
        if target == "bool":
            return value(tv(f64(x) != 0 if d != "int64" else x != 0, "bool"))
        with np.errstate(all="ignore"):
            res = x.astype(NP_DTYPE[target])
        return value(tv(res, target, rtol=0.0, atol=0.0))

    return ref


for _n, _t in (("float", "float32"), ("double", "float64"), ("long", "int64"), ("bool", "bool")):
    op(_n)(_cast(_t))


@op("to_dtype", "method", "to")
def _ref_to_dtype(a, kw):
    return _cast(a[1])(a[:1], kw)


@op("type_dtype", "method", "type")
def _ref_type_dtype(a, kw):
    return _cast(a[1])(a[:1], kw)


# ---------------------------------------------------------------------------- binary

ARITH = {
    "add": ("+", np.add, "arith"),
    "sub": ("-", np.subtract, "arith"),
    "mul": ("*", np.multiply, "arith"),
    "truediv": ("/", np.divide, "div"),
    "pow": ("**", np.power, "arith"),
}


def _int_pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PyTorch's integer power in wrapping int64: by squaring modulo 2**64; a negative
    exponent gives the integer part of 1 / a**|b| (1 for a = 1, +-1 for a = -1, else 0)."""

    def one(x: int, e: int) -> int:
        if e < 0:
            return 1 if x == 1 else (1 if e % 2 == 0 else -1) if x == -1 else 0
        r = pow(x % 2**64, e, 2**64)
        return r - 2**64 if r >= 2**63 else r

    a, b = np.broadcast_arrays(np.asarray(a, np.int64), np.asarray(b, np.int64))
    flat = [one(int(x), int(e)) for x, e in zip(a.reshape(-1), b.reshape(-1))]
    return np.asarray(flat, np.int64).reshape(a.shape)


def arith_expect(name: str, a, b, alpha=None) -> Expect:
    """The Expect of an arithmetic op ``a OP b`` (a tensor and a tensor or number)."""
    if name in ARITH:
        _, fn, kind = ARITH[name]
    else:
        # PyTorch keeps bool for maximum/minimum of bools (no bool -> int64 step)
        fn, kind = {"maximum": np.maximum, "minimum": np.minimum}[name], "cmp"
    if not any(is_t(x) for x in (a, b)) or not all(is_t(x) or is_num(x) for x in (a, b)):
        return anything()
    rd = promote(a, b, kind=kind)
    if name == "sub" and dt(a) == "bool" and dt(b) in ("bool", "pybool"):
        return anything(note="bool - bool")
    integral = ("bool", "int64", "pybool", "pyint")
    if rd == "bool" and alpha is not None:
        return anything(note="alpha with bool operands")
    if rd == "bool" and name == "pow":
        return raises(TypeError, note="pow of two bools (PyTorch refuses)")
    if name == "pow" and is_t(a) and dt(a) in integral and dt(b) == "pyint" and b < 0:
        # PyTorch: "Integers to negative integer powers are not allowed" (a Python number
        # only; an exponent tensor gives the truncated powers)
        return raises(ValueError, note="an integer base with a negative integer exponent")
    shape = bshape(a, b)
    A, B = as_dtype(a, rd), as_dtype(b, rd)
    with np.errstate(all="ignore"):
        if rd == "int64":
            if alpha is not None:
                B = B * np.int64(alpha)
            res = _int_pow(A, B) if name == "pow" else fn(A, B)
            return value(tv(np.broadcast_to(res, shape), rd))
        if rd == "bool":  # NumPy's bool add and multiply are or and and, as PyTorch's
            return value(tv(np.broadcast_to(fn(A, B), shape), rd))
        A64, B64 = f64(A), f64(B)
        amb = None
        if alpha is not None:
            B64 = f64(as_dtype(float(alpha), rd)) * B64
            # alpha * other may overflow in the tensor's dtype before the sum is taken
            amb = np.broadcast_to(np.abs(B64) > FMAX.get(rd, FMAX["float64"]) / 2, shape)
        res = fn(A64, B64)
        if name == "pow":  # NumPy takes x ** 0.5 as sqrt (NaN at -inf); C's pow, and ferrograd, give +inf
            edge = (A64 == -np.inf) & (np.abs(B64) == 0.5)
            amb = np.broadcast_to(edge, shape) if amb is None else amb | np.broadcast_to(edge, shape)
    return value(tv(np.broadcast_to(res, shape), rd, amb=amb))


def _binop(name: str, sym: str):
    op(name, "binop", sym)(lambda a, kw: arith_expect(name, a[0], a[1]))


for _n, (_s, _f, _k) in ARITH.items():
    _binop(_n, _s)
op("maximum", "func", "fg.maximum")(lambda a, kw: arith_expect("maximum", a[0], a[1]))
op("minimum", "func", "fg.minimum")(lambda a, kw: arith_expect("minimum", a[0], a[1]))

CMP = {"eq": ("==", np.equal), "ne": ("!=", np.not_equal), "lt": ("<", np.less), "le": ("<=", np.less_equal)}
CMP.update({"gt": (">", np.greater), "ge": (">=", np.greater_equal)})


def cmp_expect(fn, a, b) -> Expect:
    """The Expect of a comparison: both sides in the promoted dtype, compared exactly."""
    if not any(is_t(x) for x in (a, b)) or not all(is_t(x) or is_num(x) for x in (a, b)):
        return anything()
    rd = promote(a, b, kind="cmp")
    shape = bshape(a, b)
    try:
        A, B = as_dtype(a, rd), as_dtype(b, rd)
    except Bad:
        return anything(note="an int beyond int64 compared with an integer tensor")
    return value(tv(np.broadcast_to(fn(A, B), shape), "bool"))


for _n, (_s, _f) in CMP.items():
    op(f"cmp_{_n}", "binop", _s)((lambda f: lambda a, kw: cmp_expect(f, a[0], a[1]))(_f))


def truth(x) -> np.ndarray:
    """Truth values as ferrograd reads them: nonzero (NaN included) is true."""
    return f64(x) != 0 if is_t(x) else np.asarray(bool(x))


def _logical(name, fn):
    def ref(a, kw):
        x, y = a[0], a[1]
        if not (is_t(y) or is_num(y)):
            return anything()
        shape = bshape(x, y)
        return value(tv(np.broadcast_to(fn(truth(x), truth(y)), shape), "bool"))

    op(name)(ref)


_logical("logical_and", np.logical_and)
_logical("logical_or", np.logical_or)
_logical("logical_xor", np.logical_xor)


def _bitwise(name, sym, fn):
    def ref(a, kw):
        x, y = a[0], a[1]
        if not all(is_t(v) or is_num(v) for v in (x, y)):
            return anything()
        rd = promote(x, y, kind="cmp")
        if rd.startswith("float"):
            return raises(TypeError, note="bitwise op on floats")
        shape = bshape(x, y)
        return value(tv(np.broadcast_to(fn(as_dtype(x, rd), as_dtype(y, rd)), shape), rd))

    op(name, "binop", sym)(ref)


_bitwise("and", "&", np.bitwise_and)
_bitwise("or", "|", np.bitwise_or)
_bitwise("xor", "^", np.bitwise_xor)


@op("invert", "unop", "~")
def _ref_invert(a, kw):
    x = a[0]
    if dt(x).startswith("float"):
        return raises(TypeError)
    return value(tv(np.invert(x), dt(x)))


@op("negop", "unop", "-")
def _ref_negop(a, kw):
    return OPS["neg"].ref(a, kw)


@op("where", "func", "fg.where")
def _ref_where(a, kw):
    c, x, y = a
    if not is_t(c) or not all(is_t(v) or is_num(v) for v in (x, y)):
        return anything()
    rd = promote(x, y, kind="cmp")
    shape = bshape(c, x, y)
    res = np.where(truth(c), as_dtype(x, rd), as_dtype(y, rd))
    return value(tv(np.broadcast_to(res, shape), rd), either=c.dtype != np.bool_)


def masked_fill_expect(x, mask, v) -> Expect:
    """The new value of ``x`` with ``v`` written where ``mask`` (broadcast to x) is true."""
    if not is_t(mask) or not (is_num(v) or is_t(v)):
        return anything()
    if mask.dtype != np.bool_:
        try:
            np.broadcast_shapes(x.shape, mask.shape)
        except ValueError:
            return raises(note="a non-bool mask of the wrong shape")
    shape = bshape(x, mask)
    if shape != x.shape:
        return anything(note="mask broadcasts beyond the tensor")
    if is_t(v) and v.ndim != 0:
        return anything(note="a non-0-d fill value")
    d = dt(x)
    cv, amb = cast_scalar_to(v, d)
    if amb:
        return anything(note="fill value does not fit the dtype")
    with np.errstate(all="ignore"):
        base = f64(x) if d.startswith("float") else x
        res = np.where(truth(mask), cv.astype(base.dtype), base)
    return value(tv(res, d), either=mask.dtype != np.bool_)


op("masked_fill")(lambda a, kw: masked_fill_expect(a[0], a[1], a[2]))


# ---------------------------------------------------------------------------- reductions


def _red_args(a, kw, names=("dim", "keepdim")):
    vals = list(a[1:]) + [None] * 4
    out = {}
    for i, n in enumerate(names):
        out[n] = vals[i] if vals[i] is not None else kw.get(n)
    out["keepdim"] = bool(out.get("keepdim") or False)
    return out


def _sum_like(mean: bool):
    def ref(a, kw):
        x = a[0]
        p = _red_args(a, kw)
        axes, lenient = red_axes(x, p["dim"])
        d = dt(x)
        n = math.prod(x.shape[i] for i in axes)
        with np.errstate(all="ignore"):
            if not mean and d in ("int64", "bool"):
                exact = np.sum(x.astype(object), axis=axes, keepdims=True) if axes else x.astype(object)
                if any(not I64_MIN <= int(v) <= I64_MAX for v in np.asarray(exact).reshape(-1)):
                    return anything(note="an int64 sum that overflows")
                res = np.asarray(exact).astype(np.int64)
                return value(tv(keep(res, axes, p["keepdim"], x.ndim), "int64"), either=lenient)
            od = fdt(d)
            s = np.sum(f64(x), axis=axes, keepdims=True)
            absum = np.sum(finite_abs(x), axis=axes, keepdims=True)
            atol, amb = sum_bounds(absum, n, od)
            if mean:
                s = s / n if n else np.full(s.shape, np.nan)
                atol = atol / max(n, 1)
        k = lambda v: keep(np.asarray(v), axes, p["keepdim"], x.ndim)  # noqa: E731
        return value(tv(k(s), od, atol=k(atol) + 1e-30, amb=k(amb)), either=lenient)

    return ref


op("sum")(_sum_like(False))
op("mean")(_sum_like(True))


def _var_like(std: bool):
    def ref(a, kw):
        x = a[0]
        p = _red_args(a, kw, ("dim", "correction", "keepdim"))
        c = p["correction"] if p["correction"] is not None else 1
        if not is_num(c) or isinstance(c, bool):
            return anything()
        axes, lenient = red_axes(x, p["dim"])
        d = fdt(dt(x))
        n = math.prod(x.shape[i] for i in axes)
        with np.errstate(all="ignore"):
            v = f64(x)
            m = (
                np.mean(v, axis=axes, keepdims=True)
                if n
                else np.full(np.sum(v, axis=axes, keepdims=True).shape, np.nan)
            )
            ss = np.sum((v - m) ** 2, axis=axes, keepdims=True)
            res = ss / max(n - c, 0)
            sq = np.sum(finite_abs(x) ** 2, axis=axes, keepdims=True)
            atol, amb = sum_bounds(sq, n, d)
            atol = atol * 4 / max(n - c, 1e-300 if n - c > 0 else 1)
            amb = amb | (np.abs(m) > FMAX[d] / 8)
            if n - c <= 0:  # x / 0: inf, or NaN where the squares underflow in the tensor's dtype
                amb = amb | (ss < np.finfo(NP_DTYPE[d]).tiny * 4)
            if std:
                res = np.sqrt(res)
                atol = np.sqrt(atol) * 2
        k = lambda v: keep(np.asarray(v), axes, p["keepdim"], x.ndim)  # noqa: E731
        return value(tv(k(res), d, atol=k(atol) + 1e-30, amb=k(amb)), either=lenient)

    return ref


op("var")(_var_like(False))
op("std")(_var_like(True))


def _extreme(fn_name: str, method_returns_indices: bool):
    np_fn = {"max": np.max, "min": np.min}[fn_name]
    arg_fn = {"max": np.argmax, "min": np.argmin}[fn_name]

    def ref(a, kw):
        x = a[0]
        p = _red_args(a, kw)
        dim = p["dim"]
        axes, lenient = red_axes(x, dim)
        if any(x.shape[i] == 0 for i in axes):
            out_shape = [s for i, s in enumerate(x.shape) if i not in axes]
            if math.prod(out_shape) == 0 and not (method_returns_indices and isinstance(dim, int)):
                return anything(note="an empty reduction with an empty result")
            return raises(ValueError, IndexError, note="reduction of an empty dim without identity")
        d = dt(x)
        with np.errstate(all="ignore"):
            vals = np_fn(f64(x) if d.startswith("float") else x, axis=axes, keepdims=True) if axes else x
        vals = keep(np.asarray(vals), axes, p["keepdim"], x.ndim) if axes else np.asarray(x)
        vt = tv(vals, d)
        if method_returns_indices and isinstance(dim, int) and not isinstance(dim, bool):
            if x.ndim == 0:
                return value(SV([vt, tv(np.asarray(0), "int64")]), either=True)
            ax = axes[0]
            idx = arg_fn(x, axis=ax, keepdims=True)
            idx = idx if p["keepdim"] else np.squeeze(idx, ax)
            return value(SV([vt, tv(idx, "int64")]))
        return value(vt, either=lenient)

    return ref


op("amax")(_extreme("max", False))
op("amin")(_extreme("min", False))
op("max")(_extreme("max", True))
op("min")(_extreme("min", True))


def _argext(fn_name: str):
    arg_fn = {"argmax": np.argmax, "argmin": np.argmin}[fn_name]

    def ref(a, kw):
        x = a[0]
        p = _red_args(a, kw)
        dim = p["dim"]
        if dim is None:
            if x.size == 0:
                return raises(ValueError, IndexError)
            idx = np.asarray(arg_fn(x.reshape(-1)))
            if p["keepdim"]:
                return value(tv(idx.reshape([1] * x.ndim), "int64"), either=True)
            return value(tv(idx, "int64"))
        if isinstance(dim, (list, tuple)):
            return raises(TypeError)
        if x.ndim == 0:
            int_arg(dim)
            return value(tv(np.asarray(0), "int64"), either=True) if dim in (0, -1) else raises(IndexError)
        ax = norm_dim(dim, x.ndim)
        if x.shape[ax] == 0:
            return raises(ValueError, IndexError)
        idx = arg_fn(x, axis=ax, keepdims=True)
        return value(tv(idx if p["keepdim"] else np.squeeze(idx, ax), "int64"))

    return ref


op("argmax")(_argext("argmax"))
op("argmin")(_argext("argmin"))


def _anyall(fn):
    def ref(a, kw):
        x = a[0]
        p = _red_args(a, kw)
        axes, lenient = red_axes(x, p["dim"])
        res = fn(truth(x), axis=axes, keepdims=True) if axes else truth(x)
        out = keep(np.asarray(res), axes, p["keepdim"], x.ndim) if axes else np.asarray(res)
        return value(tv(out, "bool"), either=lenient)

    return ref


op("any")(_anyall(np.any))
op("all")(_anyall(np.all))


@op("logsumexp")
def _ref_logsumexp(a, kw):
    x = a[0]
    p = _red_args(a, kw)
    axes, lenient = red_axes(x, p["dim"])
    d = fdt(dt(x))
    with np.errstate(all="ignore"):
        v = f64(x)
        if not axes:
            res = v.copy()
        else:
            m = np.max(v, axis=axes, keepdims=True, initial=-np.inf)
            fm = np.where(np.isfinite(m), m, 0.0)
            s = np.sum(np.exp(v - fm), axis=axes, keepdims=True)
            res = fm + np.log(s)
            anynan = np.any(np.isnan(v), axis=axes, keepdims=True)
            pinf = np.any(v == np.inf, axis=axes, keepdims=True)
            res = np.where(pinf, np.inf, res)
            res = np.where(anynan, np.nan, res)
        res = keep(res, axes, p["keepdim"], x.ndim) if axes else res
    return value(
        tv(res, d, rtol=1e-5 if d == "float32" else 1e-10, atol=1e-5 if d == "float32" else 1e-10),
        either=lenient,
    )


def softmax_ref(v: np.ndarray, ax: int, log: bool):
    """(values, ambiguous) of a stable (log-)softmax along ``ax`` in float64: rows with a
    NaN are NaN; rows with an infinity are left ambiguous (conventions differ)."""
    with np.errstate(all="ignore"):
        m = np.max(v, axis=ax, keepdims=True, initial=-np.inf)
        fm = np.where(np.isfinite(m), m, 0.0)
        e = np.exp(v - fm)
        s = np.sum(e, axis=ax, keepdims=True)
        res = (v - fm) - np.log(s) if log else e / s
        rownan = np.any(np.isnan(v), axis=ax, keepdims=True)
        rowinf = np.any(np.isinf(v), axis=ax, keepdims=True)
        res = np.where(rownan, np.nan, res)
        amb = np.broadcast_to(rowinf & ~rownan, v.shape)
    return res, amb


def _softmax(log: bool):
    def ref(a, kw):
        x = a[0]
        dim = a[1] if len(a) > 1 else kw.get("dim", -1)
        d = fdt(dt(x))
        if x.ndim == 0:
            int_arg(dim)
            if dim not in (0, -1):
                return raises(IndexError)
            return value(tv(np.asarray(0.0 if log else 1.0) + 0 * f64(x), d), either=True)
        ax = norm_dim(dim, x.ndim)
        res, amb = softmax_ref(f64(x), ax, log)
        return value(
            tv(
                res,
                d,
                rtol=1e-4 if d == "float32" else 1e-10,
                atol=1e-5 if d == "float32" else 1e-12,
                amb=amb,
            )
        )

    return ref


op("softmax")(_softmax(False))
op("log_softmax")(_softmax(True))


@op("norm")
def _ref_norm(a, kw):
    x = a[0]
    pr = _red_args(a, kw, ("p", "dim", "keepdim"))
    p = pr["p"]
    d = dt(x)
    if not d.startswith("float"):
        return raises(TypeError, note="norm of an integer tensor")
    if p is None or p == "fro":
        p = 2.0
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        return anything()
    axes, lenient = red_axes(x, pr["dim"])
    n = math.prod(x.shape[i] for i in axes)
    v = np.abs(f64(x))
    with np.errstate(all="ignore"):
        if p == math.inf or p == -math.inf:
            if n == 0:
                return anything(note="inf-norm of an empty dim")
            res = (np.max if p > 0 else np.min)(v, axis=axes, keepdims=True)
            amb = np.zeros(res.shape, bool)
        elif p == 0:
            res = np.sum(v != 0, axis=axes, keepdims=True).astype(F64)
            amb = np.any(np.isnan(v), axis=axes, keepdims=True)
        elif p > 0:
            res = np.sum(v**p, axis=axes, keepdims=True) ** (1.0 / p)
            fin = np.where(np.isfinite(v), v, 0.0)
            amb = np.sum(fin**p, axis=axes, keepdims=True) > FMAX[d] / 4
        else:
            return anything(note="negative p")
    k = lambda r: keep(np.asarray(r), axes, pr["keepdim"], x.ndim)  # noqa: E731
    rtol = 1e-4 if d == "float32" else 1e-9
    return value(tv(k(res), d, rtol=rtol, atol=1e-6 if d == "float32" else 1e-12, amb=k(amb)), either=lenient)


# ---------------------------------------------------------------------------- matmul family


def mm_dtype(a, b) -> tuple[str, ...]:
    """ferrograd multiplies in float: float64 if either side is, else float32 (int64 for
    two integer operands is accepted too, as PyTorch gives)."""
    if "float64" in (dt(a), dt(b)):
        return ("float64",)
    if dt(a) in ("int64", "bool") and dt(b) in ("int64", "bool"):
        return ("float32", "int64")
    return ("float32",)


def matmul_expect(a, b, bias=None, act=None, alpha=None, exact_int: bool = True) -> Expect:
    """The Expect of ``a @ b`` (NumPy's matmul rules), plus a bias and an activation;
    `exact_int`: two integer operands give the exact int64 product (bools refused)."""
    if a.ndim == 0 or b.ndim == 0:
        return raises(ValueError, note="matmul of a 0-d tensor")
    # contiguous copies: NumPy's einsum factors a zero-stride operand out of the sum, which
    # turns inf - inf (NaN) into (a1 + a2) * inf
    A = np.ascontiguousarray(f64(a) if a.ndim > 1 else f64(a)[None, :])
    B = np.ascontiguousarray(f64(b) if b.ndim > 1 else f64(b)[:, None])
    if A.shape[-1] != B.shape[-2]:
        return raises(ValueError, note="inner dims differ")
    try:
        batch = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    except ValueError:
        return raises(ValueError, note="batch dims cannot be broadcast")
    ints = ("int64", "bool")
    if exact_int and bias is None and act is None and dt(a) in ints and dt(b) in ints:
        # integer products are exact in wrapping int64 (PyTorch's); two bools are refused
        if dt(a) == dt(b) == "bool":
            return raises(TypeError, note="matmul of two bool tensors (PyTorch refuses)")
        with np.errstate(all="ignore"):
            res = np.matmul(np.asarray(a, np.int64), np.asarray(b, np.int64))
        return value(tv(res, "int64"))
    k = A.shape[-1]
    with np.errstate(all="ignore"):
        res = (
            np.einsum("...ij,...jk->...ik", A, B, optimize=False)
            if A.size and B.size
            else np.zeros(batch + (A.shape[-2], B.shape[-1]))
        )
        res = np.broadcast_to(res, batch + (A.shape[-2], B.shape[-1])).copy()
        scale = (
            np.einsum(
                "...ij,...jk->...ik",
                np.where(np.isfinite(A), np.abs(A), 0),
                np.where(np.isfinite(B), np.abs(B), 0),
                optimize=False,
            )
            if A.size and B.size
            else np.zeros(res.shape)
        )
        scale = np.broadcast_to(scale, res.shape)
    dts = mm_dtype(a, b)
    if bias is not None:  # a bias of another dtype: promoted, or cast to the product's (PyTorch refuses)
        dts = tuple(sorted({*dts, *mm_dtype(bias, bias)}, key=RANK.__getitem__, reverse=True))
        try:
            res = res + f64(bias)
            scale = scale + finite_abs(bias)
        except ValueError:
            return raises(ValueError, note="bias shape")
    if a.ndim == 1:
        res, scale = res[..., 0, :], scale[..., 0, :]
    if b.ndim == 1:
        res, scale = res[..., 0], scale[..., 0]
    # the product is rounded in the narrowest float among the operands, whatever the result dtype
    tol_d = "float64" if all(dt(v) == "float64" for v in (a, b)) else "float32"
    atol, amb = sum_bounds(scale, k + 1, tol_d)
    amb = amb | (scale > FMAX["float32"] / 4)
    if "int64" in dts:  # an int64 product wraps where the float one does not
        amb = amb | (scale > 2.0**53)
    if act is not None:
        res, amb2 = activation_ref(res, act, alpha)
        amb = amb | amb2
        atol = atol * 2 + 1e-6
    rtol = 3e-5 if tol_d == "float32" else None
    return value(tv(res, dts, atol=atol + 1e-30, amb=amb, rtol=rtol))


def activation_ref(v, act, alpha):
    """A fused activation (``fg.linear``) on float64 values: (values, ambiguous)."""
    with np.errstate(all="ignore"):
        if act == "relu":
            return np.where(np.isnan(v), v, np.maximum(v, 0)), np.zeros(v.shape, bool)
        if act == "tanh":
            return np.tanh(v), np.zeros(v.shape, bool)
        if act == "sigmoid":
            return 1 / (1 + np.exp(-v)), np.zeros(v.shape, bool)
        if act == "selu":
            return SELU_SCALE * np.where(v > 0, v, SELU_ALPHA * np.expm1(np.minimum(v, 0))), _edge(v)
        if act == "elu":
            al = 1.0 if alpha is None else alpha
            return np.where(v > 0, v, al * np.expm1(np.minimum(v, 0))), _edge(v) | _zero_nonfinite(v, al)
        s = 0.01 if alpha is None else alpha
        return np.where(v > 0, v, s * v), _zero_nonfinite(v, s)


op("matmul", "binop", "@")(lambda a, kw: matmul_expect(a[0], a[1]) if all(map(is_t, a[:2])) else anything())


@op("mm")
def _ref_mm(a, kw):
    x, y = a[0], a[1]
    if x.ndim != 2 or y.ndim != 2:
        return raises(ValueError)
    return matmul_expect(x, y)


@op("bmm")
def _ref_bmm(a, kw):
    x, y = a[0], a[1]
    if x.ndim != 3 or y.ndim != 3 or x.shape[0] != y.shape[0]:
        return raises(ValueError)
    return matmul_expect(x, y)


@op("mv")
def _ref_mv(a, kw):
    x, y = a[0], a[1]
    if x.ndim != 2 or y.ndim != 1:
        return raises(ValueError)
    return matmul_expect(x, y)


@op("dot")
def _ref_dot(a, kw):
    x, y = a[0], a[1]
    if x.ndim != 1 or y.ndim != 1:
        return raises(ValueError)
    exp = matmul_expect(x, y)
    if dt(x) != dt(y) and exp.kind == "value":
        exp.either = True  # PyTorch wants one dtype
    return exp


@op("outer")
def _ref_outer(a, kw):
    x, y = a[0], a[1]
    if x.ndim != 1 or y.ndim != 1:
        return raises(ValueError)
    if dt(x) == dt(y) == "bool":  # PyTorch's outer of bools: their and
        return value(tv(np.logical_and(x[:, None], y[None, :]), "bool"))
    return matmul_expect(x[:, None], y[None, :])


@op("linear", "func", "fg.linear")
def _ref_linear(a, kw):
    x, w = a[0], a[1]
    b = a[2] if len(a) > 2 else kw.get("b")
    act, alpha = kw.get("activation"), kw.get("alpha")
    if act not in (None, "relu", "selu", "tanh", "sigmoid", "elu", "leaky_relu"):
        return raises(ValueError)
    if w.ndim != 2 or x.ndim == 0:
        return raises(ValueError)
    if b is not None and (not is_t(b) or b.shape not in ((w.shape[0],),)):
        return raises(ValueError) if is_t(b) and b.ndim == 1 else anything()
    exp = matmul_expect(x, w.T, bias=b, act=act, alpha=alpha, exact_int=dt(x) == dt(w) == "int64")
    if exp.kind == "value" and alpha is not None and act in ("relu", "selu", "tanh", "sigmoid"):
        exp.either = True
    if exp.kind == "value" and alpha is not None and not (alpha > 0 or (act == "leaky_relu" and alpha == 0)):
        exp.either = True  # NOTES: only elu with alpha > 0 and leaky relu with slope >= 0 fuse
    return exp


# ---------------------------------------------------------------------------- joining


def _join(stack: bool):
    def ref(a, kw):
        ts = a[0]
        dim = a[1] if len(a) > 1 else kw.get("dim", 0)
        if not isinstance(ts, (list, tuple)) or not ts:
            return raises(ValueError, TypeError)
        if not all(is_t(t) for t in ts):
            return anything()
        rd = max((dt(t) for t in ts), key=RANK.__getitem__)
        mixed = len({dt(t) for t in ts}) > 1
        if stack:
            if len({t.shape for t in ts}) != 1:
                return raises(ValueError)
            d = norm_dim(dim, ts[0].ndim, extra=1)
            res = np.stack([t.astype(NP_DTYPE[rd]) for t in ts], axis=d)
        else:
            if any(t.ndim == 0 for t in ts):
                return raises(ValueError, IndexError)
            nd = ts[0].ndim
            legacy = any(t.shape == (0,) for t in ts) and any(t.ndim != 1 for t in ts)
            if legacy:
                return anything(note="PyTorch's legacy empty 1-D cat")
            if any(t.ndim != nd for t in ts):
                return raises(ValueError)
            d = norm_dim(dim, nd)
            if any(t.shape[:d] + t.shape[d + 1 :] != ts[0].shape[:d] + ts[0].shape[d + 1 :] for t in ts):
                return raises(ValueError)
            res = np.concatenate([t.astype(NP_DTYPE[rd]) for t in ts], axis=d)
        return value(tv(res, rd), either=mixed and False)

    return ref


op("cat", "func", "fg.cat")(_join(False))
op("stack", "func", "fg.stack")(_join(True))


# ---------------------------------------------------------------------------- in place


KIND = {"bool": 0, "int64": 1, "float32": 2, "float64": 2}


def _self_dtype_ok(x, rd: str) -> bool:
    """PyTorch's rule: an in-place result may be narrowed within its kind (float64 into
    float32) but not written into a lower kind (a float into an integer tensor)."""
    return KIND[rd] <= KIND[dt(x)]


def inplace_arith(name: str, x, other, alpha=None) -> Expect:
    """The new value of ``x`` after ``x.<name>_(other[, alpha])``: the out-of-place result,
    which must fit x's dtype (PyTorch refuses float results into integer tensors)."""
    if not (is_t(other) or is_num(other)):
        return anything()
    if alpha is not None and not is_num(alpha):
        return anything()
    d = dt(x)
    if is_t(other) and bshape(x, other) != x.shape:
        rd = promote(x, other, kind="div" if name == "truediv" else "arith")
        frac = alpha is not None and d in ("int64", "bool") and not float(alpha).is_integer()
        if d == "bool" or not _self_dtype_ok(x, rd) or frac:
            return raises(note="both the shape and the dtype are wrong")
        return raises(ValueError, note="the operand broadcasts beyond the tensor")
    if alpha is not None and d in ("int64", "bool") and not float(alpha).is_integer():
        return raises(TypeError, ValueError, note="a fractional alpha for an integer tensor")
    if alpha is not None and d in ("int64", "bool") and not math.isfinite(float(alpha)):
        return raises(TypeError, ValueError)
    al = None if alpha is None else (int(alpha) if d in ("int64", "bool") else alpha)
    exp = arith_expect(name, x, other, alpha=al)
    if exp.kind != "value":
        return exp
    rd = exp.value.dtypes[0]
    if d == "bool":
        return anything(note="in-place arithmetic on a bool tensor")
    if not _self_dtype_ok(x, rd):
        return raises(TypeError, ValueError, note=f"{rd} result cannot be written into {d}")
    exp.value = tv(exp.value.arr, d, amb=exp.value.amb)
    return exp


for _n, _base in (("add_", "add"), ("sub_", "sub"), ("mul_", "mul"), ("div_", "truediv")):

    def _ref(a, kw, base=_base):
        alpha = a[2] if len(a) > 2 else kw.get("alpha")
        return inplace_arith(base, a[0], a[1], alpha)

    op(_n, "inplace")(_ref)


@op("fill_", "inplace")
def _ref_fill_(a, kw):
    x, v = a[0], a[1]
    if is_t(v) and v.ndim != 0:
        return raises(ValueError, TypeError, note="fill_ with a non-0-d tensor")
    if not (is_num(v) or is_t(v)):
        return anything()
    d = dt(x)
    cv, amb = cast_scalar_to(v, d)
    if amb:
        return anything(note="value does not fit the dtype")
    if d == "float32" and is_num(v) and math.isfinite(float(v)) and not np.isfinite(cv):
        return value(tv(np.full(x.shape, cv), d), either=True, note="overflow to inf")
    return value(tv(np.full(x.shape, cv), d))


@op("zero_", "inplace")
def _ref_zero_(a, kw):
    x = a[0]
    return value(tv(np.zeros(x.shape, dtype=x.dtype), dt(x)))


@op("clamp_", "inplace")
def _ref_clamp_(a, kw):
    x = a[0]
    lo = a[1] if len(a) > 1 else kw.get("min")
    hi = a[2] if len(a) > 2 else kw.get("max")
    exp = _ref_clamp([x, lo, hi], {})
    if exp.kind != "value":
        return exp
    d = dt(x)
    if d in ("int64", "bool"):
        bounds = [b for b in (lo, hi) if b is not None]
        if any(isinstance(b, float) and not (math.isfinite(b) and b.is_integer()) for b in bounds):
            return raises(TypeError, ValueError, note="a fractional bound for an integer tensor")
        if d == "bool":
            return anything()
        # ferrograd's clamp of an integer tensor gives float32, so refusing is consistent
        return value(tv(exp.value.arr, d), either=True, note="clamp_ of an integer tensor")
    return value(tv(exp.value.arr, d))


@op("copy_", "inplace")
def _ref_copy_(a, kw):
    x, src = a[0], a[1]
    if not is_t(src):
        return anything()
    if bshape(x, src) != x.shape:
        return raises(ValueError, note="the source broadcasts beyond the tensor")
    d = dt(x)
    if d == "int64" and src.dtype.kind == "f":
        v = f64(src)
        amb = ~np.isfinite(v) | (np.abs(v) >= 2.0**63)
        with np.errstate(all="ignore"):
            res = np.broadcast_to(np.where(amb, 0, np.trunc(v)).astype(np.int64), x.shape)
        return value(tv(res, d, amb=np.broadcast_to(amb, x.shape)))
    if d == "bool":
        return value(tv(np.broadcast_to(truth(src), x.shape), d))
    with np.errstate(all="ignore"):
        res = np.broadcast_to(src.astype(x.dtype), x.shape)
    return value(tv(res, d))


@op("masked_fill_", "inplace")
def _ref_masked_fill_(a, kw):
    return masked_fill_expect(a[0], a[1], a[2])


# ---------------------------------------------------------------------------- conversions


def py_of(x: np.ndarray):
    """A NumPy scalar as the Python type a tensor's item() should give."""
    v = x.reshape(()).item()
    return v


def _one(x) -> bool:
    return x.size == 1


@op("numpy")
def _ref_numpy(a, kw):
    x = a[0]
    return value(tv(x, dt(x), rtol=0.0, atol=0.0, ndarray=True))


@op("asarray", "builtin", "np.asarray")
def _ref_asarray(a, kw):
    return _ref_numpy(a, kw)


def _pytype(x) -> tuple:
    return {"bool": (bool,), "int64": (int,)}.get(dt(x), (float,))


@op("tolist")
def _ref_tolist(a, kw):
    x = a[0]
    return value(PV(x.tolist(), _pytype(x)))


@op("item")
def _ref_item(a, kw):
    x = a[0]
    if not _one(x):
        return raises(ValueError, IndexError, note="item of a tensor without exactly one element")
    return value(PV(py_of(x), _pytype(x)))


@op("repr", "builtin", "repr")
def _ref_repr(a, kw):
    return value(PV(None, (str,), anyvalue=True))


op("str", "builtin", "str")(_ref_repr)


@op("format", "builtin", "format")
def _ref_format(a, kw):
    x, spec = a[0], a[1]
    if not spec:
        return value(PV(None, (str,), anyvalue=True))  # format(t, "") is str(t) or str(item)
    if not _one(x) or x.ndim != 0:
        return anything(note="format spec of a non-scalar")
    return value(PV(format(py_of(x), spec), (str,)))


@op("pickle", "builtin", "pickle")
def _ref_pickle(a, kw):
    x = a[0]
    return value(tv(x, dt(x), rtol=0.0, atol=0.0))


op("deepcopy", "builtin", "deepcopy")(_ref_pickle)


@op("py_float", "builtin", "float")
def _ref_py_float(a, kw):
    x = a[0]
    if not _one(x):
        return raises(ValueError, TypeError)
    return value(PV(float(py_of(x)), (float,)))


@op("py_int", "builtin", "int")
def _ref_py_int(a, kw):
    x = a[0]
    if not _one(x):
        return raises(ValueError, TypeError)
    v = py_of(x)
    if isinstance(v, float) and math.isnan(v):
        return raises(ValueError)
    if isinstance(v, float) and math.isinf(v):
        return raises(OverflowError, ValueError)
    return value(PV(int(v), (int,)))


@op("py_bool", "builtin", "bool")
def _ref_py_bool(a, kw):
    x = a[0]
    if not _one(x):
        return raises(ValueError, TypeError)
    return value(PV(bool(py_of(x)), (bool,)))


@op("len", "builtin", "len")
def _ref_len(a, kw):
    x = a[0]
    if x.ndim == 0:
        return raises(TypeError)
    return value(PV(x.shape[0], (int,)))


@op("cpu")
def _ref_cpu(a, kw):
    x = a[0]
    return value(tv(x, dt(x), rtol=0.0, atol=0.0, device="cpu"))


# ---------------------------------------------------------------------------- losses


def _reduce(per: np.ndarray, scale: np.ndarray, reduction, d: str, weights=None, tol_d: str = "") -> Expect:
    """A loss's Expect from per-element terms: ``scale`` bounds each term's rounding;
    ``tol_d`` ("float32" when any input is) sets the tolerances."""
    if reduction not in ("mean", "sum", "none"):
        return raises(ValueError)
    out_d, d = d, tol_d or d
    n = per.size
    with np.errstate(all="ignore"):
        if reduction == "none":
            atol = EPS[d] * scale * 64 + 1e-6
            amb = np.asarray(scale) > FMAX[out_d] / 4  # an intermediate may overflow
            return value(tv(per, out_d, atol=atol, amb=amb, rtol=1e-4 if d == "float32" else 1e-9))
        total = np.sum(per)
        sc = np.sum(scale)
        atol, amb = sum_bounds(sc, n, d)
        atol = atol * 8 + 1e-6
        if reduction == "mean":
            den = n if weights is None else np.sum(weights)
            total = total / den if den else np.nan
            atol = atol / max(den, 1e-30) if den else atol
    return value(
        tv(
            np.asarray(total),
            out_d,
            atol=np.asarray(atol),
            amb=np.asarray(amb),
            rtol=1e-4 if d == "float32" else 1e-9,
        )
    )


def _loss_dtype(x) -> str:
    return fdt(dt(x))


def _tol_dtype(*xs) -> str:
    """float32 when any input is below float64 (its rounding reaches the result)."""
    return "float32" if any(dt(x) != "float64" for x in xs) else "float64"


@op("cross_entropy", "func", "F.cross_entropy")
def _ref_cross_entropy(a, kw):
    x, t = a[0], a[1]
    red = kw.get("reduction", "mean")
    eps = kw.get("label_smoothing", 0.0)
    w = kw.get("weight")
    ign = kw.get("ignore_index", -100)
    if not (is_t(x) and is_t(t)) or x.ndim != 2 or not dt(x).startswith("float"):
        return anything() if not (is_t(x) and is_t(t)) else raises(ValueError, TypeError, IndexError)
    n, c = x.shape
    d = _loss_dtype(x)
    logp, amb = softmax_ref(f64(x), 1, True)
    if np.isinf(f64(x)).any():
        return anything(note="infinite logits")
    if not 0 <= eps <= 1:
        return anything(note="label_smoothing outside [0, 1]")
    if dt(t) == "int64":
        if t.shape != (n,):
            return raises(ValueError)
        keepm = t != ign
        if ((t[keepm] < 0) | (t[keepm] >= c)).any():
            return raises(IndexError, ValueError, note="label out of range")
        if (w is not None or not keepm.all()) and eps:
            return anything(note="label_smoothing with weight or ignored labels")
        if w is not None and (not is_t(w) or w.shape != (c,)):
            return raises(ValueError) if is_t(w) else anything()
        safe = np.where(keepm, t, 0)
        picked = -np.take_along_axis(logp, safe[:, None], 1)[:, 0] if n else np.zeros(0)
        ww = (f64(w)[safe] if w is not None else np.ones(n)) * keepm
        per = np.where(keepm, picked * ww, 0.0)  # an ignored row adds 0, even a NaN one
        if eps:
            per = (1 - eps) * picked + eps * -logp.mean(1) if c else per
        scale = (
            np.abs(per) + np.sum(np.abs(np.where(np.isfinite(logp), logp, 0)), axis=1) if c else np.abs(per)
        )
        wts = ww if (w is not None or not keepm.all()) else None
        return _reduce(per, scale, red, d, weights=wts, tol_d=_tol_dtype(x, *([w] if w is not None else [])))
    if dt(t).startswith("float"):
        if t.shape != x.shape:
            return raises(ValueError)
        if w is not None:
            return anything()
        tt = f64(t) * (1 - eps) + eps / c if c else f64(t)
        with np.errstate(all="ignore"):
            per = -np.sum(tt * logp, axis=1)
            scale = np.sum(np.abs(tt) * np.abs(np.where(np.isfinite(logp), logp, 0)), axis=1)
            # a log-probability beyond the float range makes 0 * -inf (NaN) possible, as in PyTorch
            scale = np.where(np.max(np.abs(logp), axis=1, initial=0) > FMAX[d] / 4, np.inf, scale)
        return _reduce(per, scale, red, d, tol_d=_tol_dtype(x, t))
    return raises(TypeError, ValueError)


@op("nll_loss", "func", "F.nll_loss")
def _ref_nll_loss(a, kw):
    x, t = a[0], a[1]
    red = kw.get("reduction", "mean")
    w = kw.get("weight")
    ign = kw.get("ignore_index", -100)
    if not (is_t(x) and is_t(t)):
        return anything()
    if x.ndim != 2 or t.shape != (x.shape[0],):
        return raises(ValueError)
    if dt(t) != "int64" or not dt(x).startswith("float"):
        return raises(TypeError, ValueError)
    n, c = x.shape
    keepm = t != ign
    if ((t[keepm] < 0) | (t[keepm] >= c)).any():
        return raises(IndexError, ValueError)
    if w is not None and (not is_t(w) or w.shape != (c,)):
        return raises(ValueError) if is_t(w) else anything()
    safe = np.where(keepm, t, 0)
    v = f64(x)
    with np.errstate(all="ignore"):
        picked = -np.take_along_axis(v, safe[:, None], 1)[:, 0] if n else np.zeros(0)
        ww = (f64(w)[safe] if w is not None else np.ones(n)) * keepm
        per = np.where(keepm, picked * ww, 0.0)
    if np.isinf(v).any():
        return anything(note="infinite inputs (0 * inf for ignored rows)")
    return _reduce(per, np.abs(per), red, _loss_dtype(x), weights=ww)


def _pair(a, kw, what):
    x, t = a[0], a[1]
    if not (is_t(x) and is_t(t)):
        raise Bad(anything())
    if x.shape != t.shape:
        if what == "mse":
            try:
                np.broadcast_shapes(x.shape, t.shape)
            except ValueError:
                raise Bad(raises(ValueError)) from None
            raise Bad(anything(note="broadcastable but different shapes"))
        raise Bad(raises(ValueError))
    return x, t, kw.get("reduction", "mean")


@op("mse_loss", "func", "F.mse_loss")
def _ref_mse_loss(a, kw):
    x, t, red = _pair(a, kw, "mse")
    if not dt(x).startswith("float"):
        return anything(note="integer prediction")
    with np.errstate(all="ignore"):
        diff = f64(x) - f64(t)
        per = diff**2
        scale = (finite_abs(x) + finite_abs(t)) ** 2
    exp = _reduce(per, scale, red, _loss_dtype(x), tol_d=_tol_dtype(x, t))
    if exp.kind == "value":
        exp.value.dtypes = tuple({_loss_dtype(x), fdt(promote(x, t))})
        exp.value.amb = np.asarray(scale > FMAX["float32"] / 4) if red == "none" else exp.value.amb
    return exp


@op("binary_cross_entropy", "func", "F.binary_cross_entropy")
def _ref_bce(a, kw):
    x, t, red = _pair(a, kw, "bce")
    if not dt(x).startswith("float") or not dt(t).startswith("float"):
        return anything()
    v = f64(x)
    if not ((v >= 0) & (v <= 1)).all():
        return anything(note="probabilities outside [0, 1]")
    tt = f64(t)
    with np.errstate(all="ignore"):
        lp = np.maximum(np.log(v), -100.0)
        lq = np.maximum(np.log(1.0 - v), -100.0)
        per = -(tt * lp + (1 - tt) * lq)
        scale = np.abs(tt) * 100 + np.abs(1 - tt) * 100
    exp = _reduce(per, scale * 0.01 + np.abs(per), red, _loss_dtype(x), tol_d=_tol_dtype(x, t))
    if exp.kind == "value":
        exp.value.dtypes = (_loss_dtype(x), fdt(promote(x, t)))
    return exp


@op("binary_cross_entropy_with_logits", "func", "F.binary_cross_entropy_with_logits")
def _ref_bce_logits(a, kw):
    x, t, red = _pair(a, kw, "bcel")
    if not dt(x).startswith("float"):
        return anything()
    v, tt = f64(x), f64(t)
    if np.isinf(v).any() or np.isinf(tt).any():
        return anything(note="infinite logits or targets")
    with np.errstate(all="ignore"):
        per = np.maximum(v, 0) - v * tt + np.log1p(np.exp(-np.abs(v)))
        scale = np.abs(v) * (1 + np.abs(tt)) + 1
    exp = _reduce(per, scale, red, _loss_dtype(x), tol_d=_tol_dtype(x, t))
    if exp.kind == "value":
        exp.value.dtypes = (_loss_dtype(x), fdt(promote(x, t)))
    return exp
