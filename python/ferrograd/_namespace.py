"""More of PyTorch's top-level namespace, as scripts copied from PyTorch use it: dtype
queries (`finfo`, `iinfo`, `result_type`, `promote_types`, `can_cast`), `as_tensor`,
`tensordot`, `addmm`/`addmv`/`baddbmm`, the bitwise functions, `broadcast_tensors`,
`tril_indices`/`triu_indices`, `atleast_1d/2d/3d`, `trapezoid`, `compile` (eager: the
model as it is) and small predicates. Composed from ops on both devices; functions as
`fg.<name>`, and those PyTorch has as methods also attached to `Tensor` (stubs in
`_core.pyi`). `fg.norm` is `linalg.torch_norm`."""

from __future__ import annotations

import numpy as np

from . import _core
from ._composite import _method
from ._core import ArgumentError, DTypeError, ShapeError, Tensor
from ._creation import from_numpy, ones_like, tensor, zeros
from ._surface import vstack

__all__ = [
    "finfo",
    "iinfo",
    "result_type",
    "promote_types",
    "can_cast",
    "is_floating_point",
    "is_complex",
    "isreal",
    "is_nonzero",
    "as_tensor",
    "tensordot",
    "addmm",
    "addmv",
    "baddbmm",
    "amin",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "clone",
    "detach",
    "reciprocal",
    "positive",
    "signbit",
    "float_power",
    "take",
    "broadcast_tensors",
    "tril_indices",
    "triu_indices",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    "concat",
    "row_stack",
    "randint_like",
    "trapezoid",
    "cumulative_trapezoid",
    "compile",
]

# functions PyTorch has only as functions (or whose method is the engine's own)
_FUNCTIONS_ONLY = {
    "finfo",
    "iinfo",
    "result_type",
    "promote_types",
    "can_cast",
    "as_tensor",
    "tensordot",
    "amin",
    "clone",
    "detach",
    "reciprocal",
    "broadcast_tensors",
    "tril_indices",
    "triu_indices",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    "concat",
    "row_stack",
    "randint_like",
    "trapezoid",
    "cumulative_trapezoid",
    "compile",
}


class finfo:  # noqa: N801  (PyTorch's name)
    """Machine limits of a float dtype, as ``torch.finfo``: bits, eps, max, min, tiny
    (= smallest_normal), resolution and dtype. ``finfo()`` is float32's."""

    def __init__(self, dtype=None):
        dtype = _core.dtype.float32 if dtype is None else dtype
        if not isinstance(dtype, _core.dtype) or not dtype.is_floating_point:
            raise TypeError(f"finfo: expected a float dtype, got {dtype!r}; use iinfo for integers")
        if dtype == _core.dtype.bfloat16:
            # 8 exponent bits as float32, 7 stored mantissa bits
            self.bits, self.eps, self.max = 16, 2.0**-7, float.fromhex("0x1.fep127")
            self.tiny, self.resolution = 2.0**-126, 0.01
        else:
            np_dt = {
                _core.dtype.float16: np.float16,
                _core.dtype.float32: np.float32,
                _core.dtype.float64: np.float64,
            }[dtype]
            info = np.finfo(np_dt)
            self.bits, self.eps, self.max = info.bits, float(info.eps), float(info.max)
            self.tiny, self.resolution = float(info.tiny), float(info.resolution)
        self.min, self.smallest_normal, self.dtype = -self.max, self.tiny, str(dtype).split(".")[-1]

    def __repr__(self) -> str:
        return (
            f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
            f"smallest_normal={self.tiny:g}, tiny={self.tiny:g}, dtype={self.dtype})"
        )


class iinfo:  # noqa: N801
    """Limits of an integer dtype, as ``torch.iinfo``: bits, min, max and dtype."""

    def __init__(self, dtype):
        np_dt = {_core.dtype.uint8: np.uint8, _core.dtype.int32: np.int32, _core.dtype.int64: np.int64}.get(
            dtype
        )
        if np_dt is None:
            raise TypeError(f"iinfo: expected an integer dtype (uint8, int32, int64), got {dtype!r}")
        info = np.iinfo(np_dt)
        self.bits, self.min, self.max = info.bits, int(info.min), int(info.max)
        self.dtype = str(dtype).split(".")[-1]

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def _dtype_probe(x):
    # an empty stand-in with x's dtype and number of dims, so the engine's promotion (which
    # treats 0-d tensors and numbers as weaker operands) decides; numbers stay numbers
    if isinstance(x, Tensor):
        return zeros(*((0,) * x.ndim), dtype=x.dtype) if x.ndim else zeros((), dtype=x.dtype)
    if isinstance(x, (bool, int, float)):
        return x
    raise TypeError(f"result_type: expected a Tensor or a number, got {type(x).__name__}")


def result_type(tensor1, tensor2):  # noqa: A002
    """The dtype `tensor1 op tensor2` would have (numbers and 0-d tensors as weaker
    operands), as ``torch.result_type``."""
    a, b = _dtype_probe(tensor1), _dtype_probe(tensor2)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = tensor(a)
    return (a + b).dtype if not (_is_bool(a) and _is_bool(b)) else _core.dtype.bool


def _is_bool(x) -> bool:
    return isinstance(x, bool) or (isinstance(x, Tensor) and x.dtype == _core.dtype.bool)


def promote_types(type1, type2):
    """The dtype two tensors of these dtypes promote to, as ``torch.promote_types``."""
    if type1 == type2:
        return type1
    return result_type(zeros(0, dtype=type1), zeros(0, dtype=type2))


def _category(dt) -> int:
    return 0 if dt == _core.dtype.bool else (2 if dt.is_floating_point else 1)


def can_cast(from_, to) -> bool:
    """Whether PyTorch's casting rules allow `from_` to `to` without lowering the kind
    (bool < integer < float), as ``torch.can_cast``."""
    return _category(from_) <= _category(to)


def is_floating_point(input: Tensor) -> bool:  # noqa: A002
    """Whether the tensor's dtype is a float type, as ``torch.is_floating_point``."""
    return bool(input.dtype.is_floating_point)


def is_complex(input: Tensor) -> bool:  # noqa: A002
    """False: ferrograd has no complex dtypes (``torch.is_complex``)."""
    _tensor_arg("is_complex", input)
    return False


def isreal(input: Tensor) -> Tensor:  # noqa: A002
    """True everywhere (no complex dtypes), as ``torch.isreal``."""
    return ones_like(input, dtype=_core.dtype.bool)


def is_nonzero(input: Tensor) -> bool:  # noqa: A002
    """The truth of a one-element tensor, as ``torch.is_nonzero`` (a RuntimeError otherwise)."""
    if input.numel() != 1:
        raise ArgumentError(
            f"is_nonzero: only a tensor with one element has a truth value, got shape {tuple(input.shape)}"
        )
    return bool(input.item())


def _tensor_arg(name: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(x).__name__}")


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` as a tensor without copying where it can, as ``torch.as_tensor``: a Tensor of
    the asked dtype and device is returned itself (else converted); a writable NumPy array of
    a stored dtype shares its memory (`from_numpy`); anything else is copied."""
    if isinstance(data, Tensor):
        out = data if dtype is None else data.to(dtype)
        return out if device is None else out.to(device)
    if isinstance(data, np.ndarray) and dtype is None and device is None:
        try:
            return from_numpy(data)
        except (TypeError, ValueError):
            pass
    out = tensor(data, dtype=dtype)
    return out if device is None else out.to(device)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Sums over the last `dims` dims of `a` and the first of `b` (or the listed pairs), as
    ``torch.tensordot``: a reshape and one matrix product."""
    if isinstance(dims, int):
        if dims < 0:
            raise ArgumentError(f"tensordot: dims must be non-negative, got {dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        if isinstance(dims, Tensor):
            dims = dims.tolist()
        da, db = (
            ([dims[0]] if isinstance(dims[0], int) else list(dims[0])),
            ([dims[1]] if isinstance(dims[1], int) else list(dims[1])),
        )
        da, db = [d % a.ndim for d in da], [d % b.ndim for d in db]
    if len(da) != len(db):
        raise ShapeError(f"tensordot: {len(da)} dims of a against {len(db)} of b")
    for i, j in zip(da, db):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(
                f"tensordot: dim {i} of a (size {a.shape[i]}) does not match dim {j} of b (size {b.shape[j]})"
            )
    fa = [d for d in range(a.ndim) if d not in da]
    fb = [d for d in range(b.ndim) if d not in db]
    k = int(np.prod([a.shape[d] for d in da], dtype=np.int64))
    am = a.permute(*fa, *da).reshape(-1, k)
    bm = b.permute(*db, *fb).reshape(k, -1)
    return (am @ bm).reshape(*[a.shape[d] for d in fa], *[b.shape[d] for d in fb])


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * (mat1 @ mat2), as ``torch.addmm`` (beta = 0 ignores input,
    NaN included)."""
    return _scaled_sum(input, mat1 @ mat2, beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * (mat @ vec), as ``torch.addmv``."""
    return _scaled_sum(input, mat @ vec, beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:  # noqa: A002
    """beta * input + alpha * (batch1 @ batch2) per batch, as ``torch.baddbmm``."""
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise ShapeError(
            f"baddbmm: expected 3-d batches, got {tuple(batch1.shape)} and {tuple(batch2.shape)}"
        )
    return _scaled_sum(input, batch1 @ batch2, beta, alpha)


def _scaled_sum(input, product, beta, alpha):  # noqa: A002
    p = product if alpha == 1 else product * alpha
    if beta == 0:  # PyTorch: input is then ignored, NaN and inf in it included
        return p + zeros(*input.shape, dtype=p.dtype).to(p.device) if input.shape != p.shape else p
    return p + (input if beta == 1 else input * beta)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:  # noqa: A002
    """The minimum over `dim` (all dims by default), as ``torch.amin``."""
    return input.amin(dim if dim != () else None, keepdim)


def bitwise_and(input, other) -> Tensor:  # noqa: A002
    """Elementwise and of integer or bool tensors, as ``torch.bitwise_and`` (``&``)."""
    return input & other


def bitwise_or(input, other) -> Tensor:  # noqa: A002
    """Elementwise or of integer or bool tensors, as ``torch.bitwise_or`` (``|``)."""
    return input | other


def bitwise_xor(input, other) -> Tensor:  # noqa: A002
    """Elementwise exclusive or of integer or bool tensors, as ``torch.bitwise_xor`` (``^``)."""
    return input ^ other


def clone(input: Tensor, *, memory_format=None) -> Tensor:  # noqa: A002
    """A copy with its own storage whose gradient flows back, as ``torch.clone``."""
    del memory_format  # one layout here
    return input.clone()


def detach(input: Tensor) -> Tensor:  # noqa: A002
    """The same data cut from the graph, as ``torch.detach``."""
    return input.detach()


def reciprocal(input: Tensor) -> Tensor:  # noqa: A002
    """1 / input, as ``torch.reciprocal`` (float32 for integer tensors)."""
    return input.reciprocal()


def positive(input: Tensor) -> Tensor:  # noqa: A002
    """input itself (a bool tensor is refused, as PyTorch's), as ``torch.positive``."""
    if input.dtype == _core.dtype.bool:
        raise DTypeError("positive: not defined for bool tensors (as in PyTorch)")
    return input


def signbit(input: Tensor) -> Tensor:  # noqa: A002
    """Whether the sign bit is set (-0.0 and -nan included), as ``torch.signbit``."""
    if not input.dtype.is_floating_point:
        return input < 0
    bits = input.to(_core.dtype.float32) if input.dtype != _core.dtype.float64 else input
    return tensor(np.signbit(bits.detach().cpu().numpy())).to(input.device)


def float_power(input, exponent) -> Tensor:  # noqa: A002
    """input ** exponent in float64, as ``torch.float_power``."""
    f64 = _core.dtype.float64
    a = input.to(f64) if isinstance(input, Tensor) else float(input)
    b = exponent.to(f64) if isinstance(exponent, Tensor) else float(exponent)
    return a**b if isinstance(a, Tensor) else tensor(a, dtype=f64) ** b


def take(input: Tensor, index: Tensor) -> Tensor:  # noqa: A002
    """The elements of the flattened input at `index` (an int64 tensor of any shape), as
    ``torch.take``."""
    return input.reshape(-1)[index.reshape(-1)].reshape(*index.shape)


def broadcast_tensors(*tensors: Tensor) -> tuple:
    """The tensors expanded to their common broadcast shape (views), as
    ``torch.broadcast_tensors``."""
    shape = np.broadcast_shapes(*[tuple(t.shape) for t in tensors])
    return tuple(t.expand(*shape) for t in tensors)


def _tri_indices(name: str, row: int, col: int, offset: int, upper: bool, dtype, device) -> Tensor:
    if row < 0 or col < 0:
        raise ArgumentError(f"{name}: row and col must be non-negative, got {row} and {col}")
    r, c = (np.triu_indices if upper else np.tril_indices)(row, offset, col)
    out = tensor(np.stack([r, c]).astype(np.int64).reshape(2, -1))
    out = out if dtype is None else out.to(dtype)
    return out if device is None else out.to(device)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the lower triangle of a row x col matrix, as
    ``torch.tril_indices``."""
    return _tri_indices("tril_indices", row, col, offset, False, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of the upper triangle, as ``torch.triu_indices``."""
    return _tri_indices("triu_indices", row, col, offset, True, dtype, device)


def _atleast(n: int, tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = []
    for t in tensors:
        if t.ndim >= n:
            out.append(t)
        elif n == 3 and t.ndim == 2:
            out.append(t.unsqueeze(-1))  # (M, N) -> (M, N, 1), as PyTorch's
        elif n == 3 and t.ndim == 1:
            out.append(t.reshape(1, -1, 1))
        else:
            out.append(t.reshape(*((1,) * (n - max(t.ndim, 1))), *(t.shape or (1,))))
    return out[0] if len(out) == 1 else tuple(out)


def atleast_1d(*tensors):
    """Each tensor with at least 1 dim, as ``torch.atleast_1d``."""
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    """Each tensor with at least 2 dims (new dims in front), as ``torch.atleast_2d``."""
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    """Each tensor with at least 3 dims, as ``torch.atleast_3d`` ((N,) -> (1, N, 1), (M, N)
    -> (M, N, 1))."""
    return _atleast(3, tensors)


def concat(tensors, dim: int = 0) -> Tensor:
    """`cat`, by its NumPy-style alias (``torch.concat``)."""
    return _core.cat(list(tensors), dim)


def row_stack(tensors) -> Tensor:
    """`vstack`, by its older name (``torch.row_stack``)."""
    return vstack(tensors)


def randint_like(input: Tensor, low: int = 0, high: int | None = None, *, dtype=None, device=None) -> Tensor:  # noqa: A002
    """Random integers in [low, high) shaped as `input` (``randint_like(x, high)`` or
    ``(x, low, high)``), as ``torch.randint_like``: the input's dtype unless given."""
    if high is None:
        low, high = 0, low
    out = _core.randint(low, high, tuple(input.shape))
    out = out.to(dtype if dtype is not None else input.dtype)
    return out.to(device if device is not None else input.device)


def trapezoid(y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along `dim`, with sample points `x` or spacing `dx` (1 by
    default), as ``torch.trapezoid``."""
    n = y.shape[dim]
    if n == 0:
        return y.sum(dim)
    left, right = y.narrow(dim, 0, n - 1), y.narrow(dim, 1, n - 1)
    if x is None:
        return (left + right).sum(dim) * ((1.0 if dx is None else dx) / 2)
    d = x.diff(dim=dim if x.ndim == y.ndim else -1)
    return ((left + right) * d).sum(dim) / 2


def cumulative_trapezoid(
    y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1
) -> Tensor:
    """The running trapezoidal rule along `dim` (one fewer entry), as
    ``torch.cumulative_trapezoid``."""
    n = y.shape[dim]
    left, right = y.narrow(dim, 0, max(n - 1, 0)), y.narrow(dim, min(1, n), max(n - 1, 0))
    if x is None:
        return ((left + right) * ((1.0 if dx is None else dx) / 2)).cumsum(dim)
    d = x.diff(dim=dim if x.ndim == y.ndim else -1)
    return ((left + right) * d / 2).cumsum(dim)


def compile(model=None, **kwargs):  # noqa: A001
    """``torch.compile``: ferrograd runs eagerly, so the model or function is returned as it
    is (same results; a script that compiles runs unchanged). As a decorator too."""
    del kwargs  # mode, fullgraph, dynamic, backend: nothing to tune here
    if model is None:
        return lambda m: m
    return model


def _install() -> None:
    for name in __all__:
        if name not in _FUNCTIONS_ONLY and not hasattr(Tensor, name):
            setattr(Tensor, name, _method(globals()[name], name))


_install()
