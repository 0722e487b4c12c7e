"""ferrograd: tensors, reverse-mode autograd and feed-forward networks, with a Rust engine.

>>> import ferrograd as fg
>>> x = fg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
tensor([[2., 4.],
        [6., 8.]])
"""

from __future__ import annotations

import builtins
import importlib
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._core import (
    DeviceError,
    DTypeError,
    GradFn,
    InternalError,
    ShapeError,
    Tensor,
    get_num_threads,
    is_grad_enabled,
    manual_seed,
    set_num_threads,
)
from ._core import dtype as dtype
from .autograd import enable_grad, inference_mode, no_grad, set_grad_enabled

float32 = _core.dtype.float32
float64 = _core.dtype.float64
int64 = _core.dtype.int64
bool_ = _core.dtype.bool
float = float32  # noqa: A001  (PyTorch's aliases)
double = float64
long = int64

__version__ = "0.1.0"

_NP_OF = {
    float32: np.float32,
    float64: np.float64,
    int64: np.int64,
    bool_: np.bool_,
}


def _from_np_dtype(d: np.dtype):
    if d == np.bool_:
        return bool_
    if np.issubdtype(d, np.integer):
        return int64
    if d == np.float64:
        return float64
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
        raise ValueError("tensor: NaN or infinity cannot be converted to int64")
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
    t = _place(_core.from_numpy(_as_array(data, dtype)), device)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(a: np.ndarray) -> Tensor:
    """A tensor copied from a NumPy array (its dtype kept where ferrograd has it)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(a).__name__}")
    return _core.from_numpy(_as_array(a, None))


def _check_device(device) -> None:
    if device is None or device == "cpu":
        return
    Tensor.to(_core.zeros([], None), device)  # raises DeviceError with the reason


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
        raise ValueError(f"linspace: steps must be an int >= 0, got {steps!r}")
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


def is_tensor(obj) -> bool:
    """Whether `obj` is a ferrograd tensor."""
    return isinstance(obj, Tensor)


def numel(t: Tensor) -> int:
    """The number of elements of `t`."""
    return t.numel()


def allclose(
    a: Tensor, b, rtol: builtins.float = 1e-5, atol: builtins.float = 1e-8, equal_nan: bool = False
) -> bool:
    """Whether every element of `a` is within ``atol + rtol * |b|`` of `b` (NumPy's rule)."""
    bv = b.numpy() if isinstance(b, Tensor) else b
    return builtins.bool(np.allclose(a.numpy(), bv, rtol=rtol, atol=atol, equal_nan=equal_nan))


def equal(a: Tensor, b: Tensor) -> bool:
    """Whether `a` and `b` have the same shape and the same values."""
    return tuple(a.shape) == tuple(b.shape) and builtins.bool(np.array_equal(a.numpy(), b.numpy()))


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """The n x m identity matrix."""
    return _finish(_place(_core.eye(n, n if m is None else m, dtype), device), requires_grad)


def rand(*size, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """Uniform samples in [0, 1) from the global generator (see `manual_seed`)."""
    return _finish(_place(_core.rand(_size("rand", size), dtype), device), requires_grad)


def randn(*size, dtype=None, requires_grad: bool = False, device: str = "cpu") -> Tensor:
    """Standard normal samples from the global generator (see `manual_seed`)."""
    return _finish(_place(_core.randn(_size("randn", size), dtype), device), requires_grad)


def randint(low: int, high: int | None = None, size=(), device: str = "cpu") -> Tensor:
    """int64 samples uniform in [low, high)."""
    _check_device(device)  # int64 results live on the cpu (the gpu backend is float32)
    if high is None:
        low, high = 0, low
    size = [size] if isinstance(size, numbers.Integral) else list(size)
    return _core.randint(int(low), int(high), _size("randint", size))


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


# ---- functional forms of the tensor methods -------------------------------------------


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules (1-D, 2-D, batched with broadcasting)."""
    return a @ b


def linear(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    activation: str | None = None,
    alpha: builtins.float | None = None,
) -> Tensor:
    """`x @ weight.T + bias` with weight of shape (out_features, in_features), then
    `activation` if given: "relu", "selu", "tanh", "sigmoid", "elu" (alpha, default 1) or
    "leaky_relu" (alpha is the slope, default 0.01), fused into the matrix product's GPU
    kernel."""
    return _core.linear(x, weight, bias, activation, alpha)


def maximum(a, b) -> Tensor:
    """Elementwise maximum with broadcasting (NaN propagates)."""
    a = _t(a, b if isinstance(b, Tensor) else None)
    return a.maximum(b)


def minimum(a, b) -> Tensor:
    """Elementwise minimum with broadcasting (NaN propagates)."""
    a = _t(a, b if isinstance(b, Tensor) else None)
    return a.minimum(b)


def where(cond: Tensor, a, b) -> Tensor:
    """`a` where `cond` is true, else `b` (numbers are allowed for `a` and `b`)."""
    like = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else None
    return _core.where(_t(cond), _t(a, like), _t(b, like))


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Joins tensors along an existing dim."""
    return _core.cat(list(tensors), dim)


concatenate = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Joins same-shaped tensors along a new dim."""
    return _core.stack(list(tensors), dim)


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """Entries `index` (int64, 1-D) of `x` along `dim`."""
    return x.index_select(dim, index)


def one_hot(labels: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding (int64) of int64 labels."""
    return _core.one_hot(labels, num_classes)


def exp(x: Tensor) -> Tensor:
    """e ** x."""
    return x.exp()


def log(x: Tensor) -> Tensor:
    """Natural logarithm."""
    return x.log()


def sqrt(x: Tensor) -> Tensor:
    """Square root."""
    return x.sqrt()


def abs(x: Tensor) -> Tensor:  # noqa: A001
    """Absolute value."""
    return x.abs()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return x.tanh()


def sigmoid(x: Tensor) -> Tensor:
    """Logistic sigmoid."""
    return x.sigmoid()


def relu(x: Tensor) -> Tensor:
    """max(x, 0)."""
    return x.relu()


def selu(x: Tensor) -> Tensor:
    """Scaled exponential linear unit."""
    return x.selu()


def elu(x: Tensor, alpha: builtins.float = 1.0) -> Tensor:
    """Exponential linear unit."""
    return x.elu(alpha)


def leaky_relu(x: Tensor, negative_slope: builtins.float = 0.01) -> Tensor:
    """Leaky ReLU."""
    return x.leaky_relu(negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit (exact, or `approximate="tanh"`)."""
    return x.gelu(approximate)


def clamp(x: Tensor, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:  # noqa: A002
    """Clamps into [min, max]."""
    return x.clamp(min, max)


clip = clamp  # PyTorch's alias


def neg(x: Tensor) -> Tensor:
    """-x."""
    return -x


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Sum over `dim` (all dims when None)."""
    return x.sum(dim, keepdim)


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over `dim`."""
    return x.mean(dim, keepdim)


def var(x: Tensor, dim=None, correction: builtins.float = 1, keepdim: bool = False) -> Tensor:
    """Variance over `dim` (correction=1: unbiased)."""
    return x.var(dim, correction, keepdim)


def max(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """As ``torch.max``: the maximum of all elements; with an int `dim`, the named tuple
    ``(values, indices)`` along it (``return_types.max``); with a tuple of dims, the values
    over them; with a tensor in place of `dim`, the elementwise ``maximum``."""
    if isinstance(dim, Tensor):
        return maximum(x, dim)
    return x.max(dim, keepdim)


def min(x: Tensor, dim=None, keepdim: bool = False):  # noqa: A001
    """As ``torch.min``: see ``max``."""
    if isinstance(dim, Tensor):
        return minimum(x, dim)
    return x.min(dim, keepdim)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """`(values, indices)` of `x` sorted along `dim` (``return_types.sort``); stable."""
    return x.sort(dim, descending, stable)


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The indices (int64) that sort `x` along `dim`; stable."""
    return x.argsort(dim, descending, stable)


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """`(values, indices)` of the `k` largest (smallest with `largest=False`) entries of `x`
    along `dim` (``return_types.topk``)."""
    return x.topk(k, dim, largest, sorted)


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """PyTorch's `gather`: the entries of `x` at `index` along `dim` (differentiable)."""
    return x.gather(dim, index)


def take_along_dim(x: Tensor, indices: Tensor, dim: int) -> Tensor:
    """The entries of `x` at `indices` along `dim` (differentiable)."""
    return x.take_along_dim(indices, dim)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices of the maxima (int64)."""
    return x.argmax(dim, keepdim)


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices of the minima (int64)."""
    return x.argmin(dim, keepdim)


def any(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether any element over `dim` (all dims when None) is true (nonzero): a bool tensor."""
    return x.any(dim, keepdim)


def all(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element over `dim` (all dims when None) is true (nonzero): a bool tensor."""
    return x.all(dim, keepdim)


def reshape(x: Tensor, *shape) -> Tensor:
    """`x.reshape(shape)`: a view when possible."""
    return x.reshape(*shape)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Flattens dims start_dim..end_dim into one."""
    return x.flatten(start_dim, end_dim)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swaps two dims (a view)."""
    return x.transpose(dim0, dim1)


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorders the dims (a view)."""
    return x.permute(*dims)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    """Inserts a size-1 dim."""
    return x.unsqueeze(dim)


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    """Removes size-1 dims (all, or just `dim`)."""
    return x.squeeze(dim)


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix (0-D and 1-D tensors come back as they are)."""
    return x.t()


def isnan(x: Tensor) -> Tensor:
    """Whether each element is NaN: a bool tensor."""
    return x.isnan()


def isinf(x: Tensor) -> Tensor:
    """Whether each element is +-infinity: a bool tensor."""
    return x.isinf()


def isfinite(x: Tensor) -> Tensor:
    """Whether each element is finite: a bool tensor."""
    return x.isfinite()


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 by each element's sign (NaN stays NaN); not differentiable."""
    return x.sign()


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Views of `split_size` entries along `dim` (the last may be shorter), or of the sizes
    in a list."""
    return x.split(split_size_or_sections, dim)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most `chunks` equal views along `dim` (the last may be shorter)."""
    return x.chunk(chunks, dim)


def unbind(x: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices along `dim`, each without that dim."""
    return x.unbind(dim)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Matrix times matrix (both 2-D)."""
    return a.mm(b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Batched matrix product of (b, n, k) and (b, k, m)."""
    return a.bmm(b)


def mv(a: Tensor, v: Tensor) -> Tensor:
    """Matrix times vector."""
    return a.mv(v)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Inner product of two 1-D tensors (a 0-dim tensor)."""
    return a.dot(b)


def outer(a: Tensor, b: Tensor) -> Tensor:
    """Outer product of two 1-D tensors."""
    return a.outer(b)


def logical_and(a: Tensor, b) -> Tensor:
    """Elementwise `a and b` of truth values (nonzero is true): a bool tensor."""
    return _t(a, b if isinstance(b, Tensor) else None).logical_and(b)


def logical_or(a: Tensor, b) -> Tensor:
    """Elementwise `a or b` of truth values: a bool tensor."""
    return _t(a, b if isinstance(b, Tensor) else None).logical_or(b)


def logical_xor(a: Tensor, b) -> Tensor:
    """Elementwise `a xor b` of truth values: a bool tensor."""
    return _t(a, b if isinstance(b, Tensor) else None).logical_xor(b)


def logical_not(x: Tensor) -> Tensor:
    """Elementwise `not x` (zero is true): a bool tensor."""
    return _t(x).logical_not()


def logsumexp(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) computed stably."""
    return x.logsumexp(dim, keepdim)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Softmax along `dim`."""
    return x.softmax(dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along `dim`."""
    return x.log_softmax(dim)


def devices() -> list[dict]:
    """The compute devices: the CPU, then each GPU adapter wgpu finds.

    >>> fg.devices()[0]
    {'name': 'cpu', 'backend': 'cpu', 'type': 'Cpu'}
    """
    return [{"name": n, "backend": b, "type": t} for n, b, t in _core.devices()]


class device(str):  # noqa: N801  (PyTorch's name)
    """A device, as `torch.device`: a string equal to its canonical name ("cpu" or "gpu"),
    so it goes wherever a device name does (`.to(dev)`, `device=dev`, `t.device == dev`),
    with PyTorch's `type` (the name as written: "cuda" for "cuda:0") and `index` (None
    unless written). "cuda", "cuda:0" and "gpu:0" name the one GPU; a GPU name raises
    DeviceError where there is none.

    >>> dev = fg.device("cuda" if fg.cuda.is_available() else "cpu")
    """

    type: str
    # PyTorch's attribute; it hides str.index (a search method no device code needs)
    index: int | None  # type: ignore[assignment]

    def __new__(cls, name: str, index: int | None = None) -> device:
        if not isinstance(name, str):
            raise TypeError(f"device: expected a device name, got {type(name).__name__}")
        _check_device(name)  # unknown names and absent GPUs raise here
        kind, _, idx = name.partition(":")
        self = super().__new__(cls, "cpu" if kind == "cpu" else "gpu")
        self.type = kind
        self.index = int(idx) if idx else index
        return self

    def __repr__(self) -> str:
        return f"device(type={self.type!r}" + ("" if self.index is None else f", index={self.index}") + ")"


def gpu_available() -> bool:
    """Whether tensors can be placed on "gpu" on this machine (``fg.gpu.is_available()``)."""
    return gpu.is_available()


def get_rng_state() -> tuple[int, int]:
    """The global generator's state (seed, offset), for exact resumption."""
    return _core.get_rng_state()


def set_rng_state(state: tuple[int, int]) -> None:
    """Restores a state from `get_rng_state()`."""
    ok = isinstance(state, (tuple, list)) and len(state) == 2
    ok = ok and builtins.all(isinstance(v, numbers.Integral) and 0 <= v < 2**64 for v in state)
    if not ok:
        raise ValueError(f"set_rng_state: expected (seed, offset) from get_rng_state(), got {state!r:.80}")
    _core.set_rng_state((int(state[0]), int(state[1])))


# The layer API; imported last because these modules use the names above.
from . import autograd, callbacks, gpu, io, losses, models, nn, optim, return_types, train, utils  # noqa: E402
from . import gpu as cuda  # noqa: E402  (PyTorch's name for the GPU controls: fg.cuda.is_available())
from .io import load, save  # noqa: E402

data = importlib.import_module(".data", __name__)  # the module; `tensor(data)` shadows the name

__all__ = [
    "Tensor",
    "GradFn",
    "dtype",
    "float32",
    "float64",
    "int64",
    "bool_",
    "ShapeError",
    "DTypeError",
    "DeviceError",
    "InternalError",
    "tensor",
    "from_numpy",
    "zeros",
    "ones",
    "full",
    "arange",
    "eye",
    "rand",
    "randn",
    "randint",
    "randperm",
    "zeros_like",
    "ones_like",
    "full_like",
    "rand_like",
    "randn_like",
    "manual_seed",
    "matmul",
    "linear",
    "maximum",
    "minimum",
    "where",
    "cat",
    "stack",
    "index_select",
    "one_hot",
    "exp",
    "log",
    "sqrt",
    "abs",
    "tanh",
    "sigmoid",
    "relu",
    "selu",
    "elu",
    "leaky_relu",
    "gelu",
    "clamp",
    "neg",
    "sum",
    "mean",
    "var",
    "max",
    "min",
    "argmax",
    "argmin",
    "any",
    "all",
    "reshape",
    "flatten",
    "transpose",
    "permute",
    "unsqueeze",
    "squeeze",
    "t",
    "isnan",
    "isinf",
    "isfinite",
    "sign",
    "split",
    "chunk",
    "unbind",
    "mm",
    "bmm",
    "mv",
    "dot",
    "outer",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "logsumexp",
    "softmax",
    "log_softmax",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "set_num_threads",
    "get_num_threads",
    "autograd",
    "devices",
    "gpu_available",
    "gpu",
    "cuda",
    "device",
    "linspace",
    "inference_mode",
    "sort",
    "argsort",
    "topk",
    "take_along_dim",
    "gather",
    "clip",
    "empty",
    "empty_like",
    "is_tensor",
    "numel",
    "allclose",
    "equal",
    "get_rng_state",
    "set_rng_state",
    "nn",
    "optim",
    "losses",
    "models",
    "train",
    "callbacks",
    "return_types",
    "utils",
    "data",
    "io",
    "load",
    "save",
]
