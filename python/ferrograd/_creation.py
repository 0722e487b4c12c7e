"""Making tensors: `fg.tensor`, `from_numpy`, `zeros`/`ones`/`full`/`arange`/`linspace`/`eye`,
random ones (`rand`, `randn`, `randint`, `randperm`, the `*_like` forms) and the global
generator's state (`get_rng_state`, `set_rng_state`)."""

from __future__ import annotations

import builtins
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._core import ArgumentError, DTypeError, ShapeError, Tensor
from ._device import _check_device
from ._dtypes import bfloat16, bool_, float16, float32, float64, int32, int64, uint8

# NumPy has no bfloat16: its data goes through float32 and is rounded by the cast
_NP_OF = {
    float16: np.float16,
    bfloat16: np.float32,
    float32: np.float32,
    float64: np.float64,
    uint8: np.uint8,
    int32: np.int32,
    int64: np.int64,
    bool_: np.bool_,
}


def _from_np_dtype(d: np.dtype):
    if d == np.bool_:
        return bool_
    if d == np.uint8:
        return uint8
    if d == np.int32:
        return int32
    if np.issubdtype(d, np.integer):
        return int64
    if d == np.float64:
        return float64
    if d == np.float16:
        return float16
    if np.issubdtype(d, np.floating):
        return float32
    raise DTypeError(f"tensor: unsupported data type {d}; expected numbers or booleans")


def _as_array(data: Any, dtype) -> np.ndarray:
    if isinstance(data, Tensor):
        arr = data.numpy()
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
    else:
        try:
            arr = np.asarray(data)
        except ValueError as e:  # ragged nested lists
            raise ShapeError(f"tensor: data is not rectangular ({e})") from None
        if arr.dtype.kind in "uf" and arr.size and np.abs(arr).max() >= 2.0**63 and _has_huge_int(data):
            # NumPy turns ints past int64 into uint64 or float64: refuse, as fg.tensor([2**63])
            raise OverflowError("tensor: an integer in the data does not fit in int64")
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(np.float32)  # Python floats default to float32, as in PyTorch
    if arr.dtype == object:
        if builtins.all(isinstance(v, numbers.Integral) for v in arr.flat):
            raise OverflowError("tensor: an integer in the data does not fit in int64")
        raise DTypeError("tensor: data must be a (nested) sequence of numbers of one shape")
    target = dtype if dtype is not None else _from_np_dtype(arr.dtype)
    if target not in _NP_OF:
        raise DTypeError(f"tensor: unknown dtype {dtype!r}")
    if arr.dtype.kind not in "biuf":
        raise DTypeError(f"tensor: unsupported data type {arr.dtype}")
    want = np.dtype(_NP_OF[target])
    if want == np.int64 and arr.size and arr.dtype.kind in "uf":
        _check_int64_range(arr)
    return np.asarray(arr, dtype=want, order="C")


def _has_huge_int(data: Any) -> bool:
    """Whether nested lists/tuples hold a Python int outside int64."""
    if isinstance(data, (list, tuple)):
        return builtins.any(_has_huge_int(v) for v in data)
    return isinstance(data, int) and not isinstance(data, bool) and not -(2**63) <= data < 2**63


def _check_int64_range(arr: np.ndarray) -> None:
    # NumPy's cast wraps (2**63 as uint64 becomes -2**63) or is undefined (NaN, 1e30):
    # refuse values int64 cannot hold instead of storing a different number
    info = np.iinfo(np.int64)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ArgumentError("tensor: NaN or infinity cannot be converted to int64")
    if arr.dtype.kind == "u":
        out_of_range = arr.max() > info.max
    else:
        out_of_range = arr.max() >= 2.0**63 or arr.min() < -(2.0**63)
    if out_of_range:
        raise OverflowError(
            f"tensor: a value in the data does not fit in int64 (max {arr.max()}, min {arr.min()})"
        )


def tensor(data: Any, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """A new tensor holding a copy of `data` (nested lists, scalars or a NumPy array).

    Python floats give float32, ints int64, bools bool; NumPy arrays keep float64.

    >>> fg.tensor([1, 2, 3]).dtype
    ferrograd.int64
    """
    t = _core.from_numpy(_as_array(data, dtype))
    if dtype == bfloat16:
        t = t.bfloat16()
    t = _place(t, device)
    if requires_grad:
        t.requires_grad_(True)
    return t


# the dtypes whose NumPy memory a tensor can use as it is
_SHAREABLE = frozenset(np.dtype(d) for d in ("float16", "float32", "float64", "uint8", "int32", "int64"))


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor over a NumPy array's memory, as ``torch.from_numpy``: a write through either
    side is seen by the other, and the array stays alive while the tensor does. Arrays that
    cannot be shared (read-only, negative strides, or a dtype ferrograd stores differently:
    bool, int16, ...) are copied instead, converted as `tensor` converts them."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
    if a.dtype in _SHAREABLE and a.flags.writeable:
        try:
            shared = _core._from_dlpack_shared(a)
        except BufferError:
            shared = None
        if shared is not None:
            return shared
    return _core.from_numpy(_as_array(a, None))


def from_dlpack(obj) -> Tensor:
    """A tensor over the memory of `obj`: anything with ``__dlpack__`` (a NumPy, PyTorch or
    JAX array on the host, or another ferrograd tensor), as ``torch.from_dlpack``.

    **Sharing.** Host memory is shared, not copied: a write through either side is seen by
    the other, and the producer's memory stays alive as long as any ferrograd view of it
    does (``del`` of the producer's array is safe). The values are copied instead, and
    nothing is shared, when the array is read-only, lives on another device, has negative
    strides, or is of a dtype ferrograd stores differently (bool, int16, ...; these are
    converted as ``from_numpy`` converts them).

    **Autograd.** The result is a leaf that does not require grad. Writes made by the
    other library are invisible to autograd: a tensor saved for a backward pass (an input
    of ``x * w``) and then changed through NumPy gives gradients computed from the new
    values, with no error (PyTorch raises for in-place changes it can see; it cannot see
    these either). Change shared memory between steps, not between a forward pass and its
    backward."""
    if not hasattr(obj, "__dlpack__"):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__, got {type(obj).__name__}")
    if isinstance(obj, Tensor):  # one of ours, on either device: the same storage
        if obj.requires_grad:
            obj.__dlpack__()  # raises what exporting it raises (it requires grad)
        return obj.detach()
    try:
        shared = _core._from_dlpack_shared(obj)
    except BufferError:
        shared = None  # e.g. a read-only NumPy array, which older DLPack cannot flag
    if shared is not None:
        return shared
    return from_numpy(np.array(np.from_dlpack(obj), copy=True))


def _place(t: Tensor, device) -> Tensor:
    return t if device in (None, "cpu") else t.to(device)


def _size(op: str, size: Sequence) -> list[int]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    out = []
    for s in size:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{op}: sizes must be integers, got {s!r}")
        out.append(int(s))
    return out


def _finish(t: Tensor, requires_grad: bool) -> Tensor:
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*size, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """A tensor of zeros: `zeros(2, 3)` or `zeros((2, 3))`."""
    return _finish(_place(_core.zeros(_size("zeros", size), dtype), device), requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """A tensor of ones."""
    return _finish(_place(_core.full(_size("ones", size), 1.0, dtype), device), requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """A tensor of `size` filled with `fill_value` (dtype inferred from it when not given)."""
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = bool_
        elif isinstance(fill_value, numbers.Integral):
            dtype = int64
    size = [size] if isinstance(size, numbers.Integral) else list(size)
    if dtype == int64 and isinstance(fill_value, numbers.Integral):
        # exactly, not through a float (which keeps 53 bits), and OverflowError past int64
        fill = _core.from_numpy(_as_array(fill_value, int64))
        t = _core.zeros(_size("full", size), int64)
        t.copy_(fill)
    else:
        t = _core.full(_size("full", size), builtins.float(fill_value), dtype)
    return _finish(_place(t, device), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """Values from `start` to `end` (exclusive) by `step`; integers give int64.

    >>> fg.arange(3).tolist()
    [0, 1, 2]
    """
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = builtins.all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = int64 if ints else float32
    f = builtins.float
    return _finish(_place(_core.arange(f(start), f(end), f(step), dtype), device), requires_grad)


def linspace(start, end, steps: int, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """`steps` evenly spaced values from `start` to `end`, both included (float32 unless
    `dtype` says otherwise).

    >>> fg.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    if not isinstance(steps, numbers.Integral) or steps < 0:
        raise ArgumentError(f"linspace: steps must be an int >= 0, got {steps!r}")
    if dtype is not None and dtype == bool_:
        raise DTypeError(
            "linspace: bool is not a dtype for evenly spaced values (as in PyTorch); use a number dtype"
        )
    values = np.linspace(builtins.float(start), builtins.float(end), int(steps))
    return tensor(
        values.astype(np.float64), dtype=dtype or float32, requires_grad=requires_grad, device=device
    )


def empty(*size, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """A tensor to be filled in, as PyTorch's `empty` (ferrograd gives zeros: no
    uninitialised memory reaches Python)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad, device=device)


def empty_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """`empty` with `t`'s shape, device (and dtype unless given)."""
    return zeros_like(t, dtype=dtype, requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """The n x m identity matrix."""
    return _finish(_place(_core.eye(n, n if m is None else m, dtype), device), requires_grad)


def rand(*size, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """Uniform samples in [0, 1) from the global generator (see `manual_seed`)."""
    return _finish(_place(_core.rand(_size("rand", size), dtype), device), requires_grad)


def randn(*size, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """Standard normal samples from the global generator (see `manual_seed`)."""
    return _finish(_place(_core.randn(_size("randn", size), dtype), device), requires_grad)


def randint(
    low: int, high: int | Sequence[int] | None = None, size=None, *, dtype=None, device: str = "cpu"
) -> Tensor:
    """int64 samples uniform in [low, high), as `torch.randint`: also `randint(high, size)`
    (low 0); `dtype` casts them."""
    _check_device(device)  # int64 results live on the cpu (the gpu backend is float32)
    if isinstance(high, (tuple, list)) and size is None:  # randint(high, size)
        low, high, size = 0, low, high
    hi = low if high is None else high
    lo = 0 if high is None else low
    if not isinstance(hi, numbers.Integral):
        raise TypeError(f"randint: high must be an int, got {type(hi).__name__}")
    size = () if size is None else [size] if isinstance(size, numbers.Integral) else list(size)
    out = _core.randint(int(lo), int(hi), _size("randint", size))
    return out if dtype is None or dtype == out.dtype else out.to(dtype)


def randperm(n: int) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    return _core.randperm(n)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with `t`'s shape (and dtype unless given)."""
    return zeros(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones with `t`'s shape (and dtype unless given)."""
    return ones(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def full_like(t: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """`fill_value` with `t`'s shape (and dtype unless given)."""
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def rand_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples with `t`'s shape."""
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def randn_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """Normal samples with `t`'s shape."""
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def _t(x, like: Tensor | None = None) -> Tensor:
    """A tensor operand: numbers next to a tensor take its dtype as the bindings' operators
    do (a float next to an integer tensor is float32, an int next to a bool one int64)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, numbers.Number):
        if isinstance(x, bool) or like.dtype.is_floating_point:
            d = like.dtype
        elif isinstance(x, numbers.Integral):
            d = int64
        else:
            d = float32
        return full([], x, dtype=d)
    return tensor(x)


def get_rng_state() -> tuple[int, int]:
    """The global generator's state (seed, offset), for exact resumption."""
    return _core.get_rng_state()


def set_rng_state(state: tuple[int, int]) -> None:
    """Restores a state from `get_rng_state()`."""
    ok = isinstance(state, (tuple, list)) and len(state) == 2
    ok = ok and builtins.all(isinstance(v, numbers.Integral) and 0 <= v < 2**64 for v in state)
    if not ok:
        raise ArgumentError(f"set_rng_state: expected (seed, offset) from get_rng_state(), got {state!r:.80}")
    _core.set_rng_state((int(state[0]), int(state[1])))
